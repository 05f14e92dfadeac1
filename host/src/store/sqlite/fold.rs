//! A run's steps and attempts, folded from its event log.
//!
//! An advance writes one table: the event log. An event that changes a step (an attempt
//! started or finished, a skip, a reviewer's edit) carries a `record` with what the old
//! `steps` and `attempts` rows held, so a step's state is where the run's creation left it
//! with the later events of the step applied in order. A run created since schema version 7
//! lists its steps (and their plugins) in its `run_created` event and has no `steps` rows;
//! an older run has one row per step in `steps`, a snapshot as of event `as_of_seq` (its
//! creation, or the upgrade to version 6). Attempts journaled before version 6 stay rows of
//! `attempts`; later ones exist only as events.
//!
//! This keeps a step's commit to one b-tree page at the end of the log instead of three
//! pages in three tables, while the journal's rules (exactly one result per step, an attempt
//! journaled before it runs) are checked against the same state in the same transaction.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rows::{EventKeys, json_col, parse_status};
use crate::store::{AttemptOutcome, AttemptRecord, AttemptResult, StepRecord, StepStatus};

/// What an event changes in its step and attempt: the columns the rows used to hold.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Change {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Value>,
    /// The attempt's replay tape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tape: Option<Value>,
    /// On `run_created`: the run's steps in workflow order, each with the digest of the
    /// plugin it is pinned to. (Runs created before schema version 7 have `steps` rows.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<(String, String)>>,
    /// On a result: what it adds to its step's profile (`store::profiles::encode`), moved
    /// into `profile_results` when the run ends or parks (see `sqlite/profiles.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Box<serde_json::value::RawValue>>,
}

impl Change {
    /// The record of an attempt's result.
    pub(super) fn finished(result: &AttemptResult) -> Self {
        let (output, confidence, route, failure) = match &result.outcome {
            AttemptOutcome::Succeeded {
                output,
                confidence,
                route,
            } => (Some(output.clone()), *confidence, route.clone(), None),
            AttemptOutcome::Failed(failure) => (None, None, None, Some(failure.clone())),
        };
        Self {
            output,
            confidence,
            route,
            failure,
            latency_us: Some(result.latency_us),
            fuel: result.fuel,
            memory_peak: Some(result.memory_peak),
            logs: Some(result.logs.clone()),
            tape: result.tape.clone(),
            ..Self::default()
        }
    }
}

/// The kinds of event that move a step from one status to another.
const STEP_KINDS: &str = "('step_started', 'step_succeeded', 'step_failed', 'step_skipped')";

/// A step's status and journaled attempt count, as of its latest change; `None` when the run
/// has no such step. What the write path checks its rules against.
pub(super) fn step_state(
    c: &Connection,
    run_id: &str,
    keys: EventKeys,
    step_id: &str,
) -> anyhow::Result<Option<(StepStatus, u32)>> {
    // The latest change is found by walking the run's log back from its end (a step's last
    // change is rarely more than a few events old); the step's row only when there is none.
    let latest: Option<(String, Option<u32>)> = c
        .prepare_cached(&format!(
            "SELECT kind, attempt FROM events
             WHERE key > ?3 + COALESCE((SELECT as_of_seq FROM steps WHERE run_id = ?1 AND step_id = ?2), 0)
               AND key < ?4 AND step_id = ?2 AND kind IN {STEP_KINDS}
             ORDER BY key DESC LIMIT 1"
        ))?
        .query_row(
            params![run_id, step_id, keys.after(), keys.before()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((kind, attempt)) = latest {
        let status = match kind.as_str() {
            "step_started" => StepStatus::Running,
            "step_succeeded" => StepStatus::Succeeded,
            "step_failed" => StepStatus::Failed,
            _ => StepStatus::Skipped,
        };
        // A skip carries no attempt number: the step never started.
        return Ok(Some((status, attempt.unwrap_or(0))));
    }
    let snapshot: Option<(String, u32)> = c
        .prepare_cached("SELECT status, attempts FROM steps WHERE run_id = ?1 AND step_id = ?2")?
        .query_row(params![run_id, step_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((status, attempts)) = snapshot {
        return Ok(Some((
            status.parse().map_err(anyhow::Error::msg)?,
            attempts,
        )));
    }
    // A step with no change yet, of a run that lists its steps in `run_created`.
    let listed =
        created_steps(c, keys)?.is_some_and(|steps| steps.iter().any(|(s, _)| s == step_id));
    Ok(listed.then_some((StepStatus::Pending, 0)))
}

/// The steps a run's `run_created` event lists (runs created from schema version 7 on; older
/// runs have rows in `steps` instead). The event is always the run's first.
fn created_steps(c: &Connection, keys: EventKeys) -> anyhow::Result<Option<Vec<(String, String)>>> {
    let record: Option<Option<String>> = c
        .prepare_cached("SELECT record FROM events WHERE key = ?1 AND kind = 'run_created'")?
        .query_row([keys.key(1)?], |r| r.get(0))
        .optional()?;
    let Some(Some(record)) = record else {
        return Ok(None);
    };
    Ok(serde_json::from_str::<Change>(&record)?.steps)
}

/// A run's steps (in workflow order) and, when `with_attempts`, its attempts (by step, then
/// number), as of its last event; none for a run that does not exist.
pub(super) fn fold(
    c: &Connection,
    run_id: &str,
    with_attempts: bool,
) -> anyhow::Result<(Vec<StepRecord>, Vec<AttemptRecord>)> {
    let Some(keys) = EventKeys::find(c, run_id)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut steps: Vec<(StepRecord, i64)> = c
        .prepare_cached(
            "SELECT step_id, plugin_digest, status, output, confidence, route, failure, skip_reason, attempts, as_of_seq
             FROM steps WHERE run_id = ?1 ORDER BY position",
        )?
        .query_map([run_id], |r| {
            Ok((
                StepRecord {
                    step_id: r.get(0)?,
                    plugin_digest: r.get(1)?,
                    status: parse_status(r.get(2)?)?,
                    output: json_col(r.get(3)?),
                    confidence: r.get(4)?,
                    route: r.get(5)?,
                    failure: json_col(r.get(6)?),
                    skip_reason: r.get(7)?,
                    attempts: r.get(8)?,
                },
                r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    if steps.is_empty() {
        // Every step as the run was created, pending, as of its first event (which lists
        // them, and which the scan below need not read again).
        steps = created_steps(c, keys)?
            .unwrap_or_default()
            .into_iter()
            .map(|(step_id, plugin_digest)| (StepRecord::pending(step_id, plugin_digest), 1))
            .collect();
    }
    let mut attempts = if with_attempts {
        legacy_attempts(c, run_id)?
    } else {
        Vec::new()
    };
    let index: HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.step_id.clone(), i))
        .collect();
    let since = steps.iter().map(|(_, seq)| *seq).min().unwrap_or(0);
    let mut changes = c.prepare_cached(
        "SELECT key - ?1, at_ms, kind, step_id, attempt, record FROM events
         WHERE key > ?1 + ?2 AND key < ?3 AND record IS NOT NULL ORDER BY key",
    )?;
    let mut rows = changes.query(params![keys.after(), since, keys.before()])?;
    while let Some(r) = rows.next()? {
        let (seq, at_ms, kind, step_id): (i64, i64, String, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let attempt: Option<u32> = r.get(4)?;
        let record: String = r.get(5)?;
        let Some(&i) = step_id.as_ref().and_then(|id| index.get(id)) else {
            continue;
        };
        let (step, as_of) = &mut steps[i];
        if seq <= *as_of {
            continue;
        }
        let change: Change = serde_json::from_str(&record)?;
        apply(step, &mut attempts, &kind, attempt, at_ms, change);
    }
    attempts.sort_by_key(|a| (index.get(&a.step_id).copied(), a.attempt));
    Ok((steps.into_iter().map(|(s, _)| s).collect(), attempts))
}

fn apply(
    step: &mut StepRecord,
    attempts: &mut Vec<AttemptRecord>,
    kind: &str,
    attempt: Option<u32>,
    at_ms: i64,
    change: Change,
) {
    match (kind, attempt) {
        ("step_started", Some(n)) => {
            step.status = StepStatus::Running;
            step.attempts = n;
            attempts.push(AttemptRecord {
                step_id: step.step_id.clone(),
                attempt: n,
                input_digest: change.input_digest.unwrap_or_default(),
                status: StepStatus::Running,
                failure: None,
                started_ms: at_ms,
                finished_ms: None,
                latency_us: None,
                fuel: None,
                memory_peak: None,
                logs: None,
                tape: None,
            });
        }
        ("step_succeeded" | "step_failed", Some(n)) => {
            let status = if kind == "step_succeeded" {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            // The attempt is almost always among the last ones started.
            if let Some(a) = attempts
                .iter_mut()
                .rev()
                .find(|a| a.step_id == step.step_id && a.attempt == n)
            {
                a.status = status;
                a.failure = change.failure.clone();
                a.finished_ms = Some(at_ms);
                a.latency_us = change.latency_us;
                a.fuel = change.fuel;
                a.memory_peak = change.memory_peak;
                a.logs = change.logs;
                a.tape = change.tape;
            }
            step.status = status;
            step.output = change.output;
            step.confidence = change.confidence;
            step.route = change.route;
            step.failure = change.failure;
        }
        ("step_skipped", _) => {
            step.status = StepStatus::Skipped;
            step.skip_reason = change.skip_reason;
        }
        // A reviewer's edit: the step succeeds with the edited output.
        ("review_decided", _) => {
            step.status = StepStatus::Succeeded;
            step.output = change.output;
            step.failure = None;
        }
        _ => {}
    }
}

/// Closes the attempts a driver left without a result (it died, or lost the run) once the
/// run moved on without them: as `interrupted`, ended when their step started again, or when
/// the run ended (`ended_ms`). Such an attempt can never take a result: a step takes its
/// result only from its latest attempt, and an ended run takes none. `attempts` are in
/// step, then number, order, as [`fold`] returns them.
pub(super) fn close_interrupted(attempts: &mut [AttemptRecord], ended_ms: Option<i64>) {
    for i in 0..attempts.len() {
        if attempts[i].status != StepStatus::Running {
            continue;
        }
        let restarted = attempts
            .get(i + 1)
            .filter(|next| next.step_id == attempts[i].step_id)
            .map(|next| next.started_ms);
        if let Some(at) = restarted.or(ended_ms) {
            attempts[i].status = StepStatus::Interrupted;
            attempts[i].finished_ms = Some(at);
        }
    }
}

/// Attempts journaled as rows, before the event log held them.
fn legacy_attempts(c: &Connection, run_id: &str) -> anyhow::Result<Vec<AttemptRecord>> {
    Ok(c.prepare_cached(
        "SELECT step_id, attempt, input_digest, status, failure, started_ms, finished_ms, latency_us, fuel, memory_peak, logs
         FROM attempts WHERE run_id = ?1",
    )?
    .query_map([run_id], |r| {
        Ok(AttemptRecord {
            step_id: r.get(0)?,
            attempt: r.get(1)?,
            input_digest: r.get(2)?,
            status: parse_status(r.get(3)?)?,
            failure: json_col(r.get(4)?),
            started_ms: r.get(5)?,
            finished_ms: r.get(6)?,
            latency_us: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
            fuel: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
            memory_peak: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
            logs: json_col(r.get(10)?),
            tape: None,
        })
    })?
    .collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;

/// The condition that some step of `runs` took the route at placeholder `p`: a run's steps
/// are folded from its events (keyed `num << 24` + seq), so the route is in the record of a
/// `step_succeeded` event; runs made before schema version 7 also have `steps` rows.
pub(super) fn route_taken(p: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM events e WHERE e.key > (runs.num << 24) AND e.key < ((runs.num + 1) << 24) \
         AND e.kind = 'step_succeeded' AND json_extract(e.record, '$.route') = {p}) OR {})",
        crate::store::run_query::route_in_steps(p)
    )
}
