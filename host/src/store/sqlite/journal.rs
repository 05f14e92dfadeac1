//! The journal's writes, as SQL over one connection inside the writer's transaction: a run's
//! status, attempts starting and finishing, skips, and [`advance`], which applies them
//! together. A step's changes are events (see [`fold`](super::fold)); only a run's own
//! status is a row that changes.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::fold::{Change, step_state};
use super::now_ms;
use super::rows::{append_change, append_event};
use crate::store::{Advance, Advanced, AttemptResult, RunStatus, StepStatus};

/// Applies `advance`; see [`Store::advance`](crate::store::Store::advance).
pub(super) fn advance(c: &Connection, advance: &Advance) -> anyhow::Result<Advanced> {
    let run_id = advance.run_id.as_str();
    // Fencing: a driver whose lease was taken over records nothing.
    if let Some(lease) = &advance.lease {
        let held: Option<(Option<String>, i64)> = c
            .prepare_cached("SELECT lease_owner, lease_epoch FROM runs WHERE id = ?1")?
            .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if held != Some((Some(lease.owner.clone()), lease.epoch)) {
            return Ok(Advanced {
                recorded: false,
                attempts: Vec::new(),
                run_over: false,
                lost_lease: true,
            });
        }
    }
    if let Some(result) = &advance.finished
        && !finish_attempt(c, result)?
    {
        return Ok(Advanced {
            recorded: false,
            attempts: Vec::new(),
            run_over: false,
            lost_lease: false,
        });
    }
    let status: String = c
        .prepare_cached("SELECT status FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| r.get(0))
        .optional()?
        .with_context(|| format!("no run {run_id}"))?;
    if matches!(status.as_str(), "succeeded" | "failed" | "cancelled") {
        return Ok(Advanced {
            recorded: true,
            attempts: Vec::new(),
            run_over: true,
            lost_lease: false,
        });
    }
    // Only a run's first advance moves it on from `pending`; the others skip the statement.
    if status == "pending" {
        c.prepare_cached(
            "UPDATE runs SET status = 'running', updated_ms = ?2 WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![run_id, now_ms()])?;
        append_event(c, run_id, "run_running", None, Value::Null)?;
    }
    for (step_id, reason) in &advance.skipped {
        skip_step(c, run_id, step_id, reason)?;
    }
    let attempts = advance
        .started
        .iter()
        .map(|(step_id, digest)| start_attempt(c, run_id, step_id, digest))
        .collect::<anyhow::Result<_>>()?;
    if let Some(review) = &advance.review {
        super::reviews::open(c, run_id, review)?;
    }
    if let Some(end) = &advance.end {
        set_status(
            c,
            run_id,
            end.status,
            end.output.clone(),
            end.failure.clone(),
        )?;
    }
    Ok(Advanced {
        recorded: true,
        attempts,
        run_over: false,
        lost_lease: false,
    })
}

/// Moves a run to `status` (with its output or failure) unless it has already ended.
pub(super) fn set_status(
    c: &Connection,
    id: &str,
    status: RunStatus,
    output: Option<Value>,
    failure: Option<Value>,
) -> anyhow::Result<()> {
    let changed = c.prepare_cached("UPDATE runs SET status = ?2, output = COALESCE(?3, output), failure = COALESCE(?4, failure), updated_ms = ?5
         WHERE id = ?1 AND status NOT IN ('succeeded', 'failed', 'cancelled')")?.execute(
                params![id, status.as_str(), output.as_ref().map(Value::to_string), failure.as_ref().map(Value::to_string), now_ms()],
    )?;
    if changed == 0 {
        bail!("run {id} does not exist or has already ended");
    }
    append_event(
        c,
        id,
        &format!("run_{status}"),
        None,
        failure.unwrap_or(Value::Null),
    )
}

fn start_attempt(
    c: &Connection,
    run_id: &str,
    step_id: &str,
    input_digest: &str,
) -> anyhow::Result<u32> {
    let attempt = match step_state(c, run_id, step_id)? {
        Some((StepStatus::Pending | StepStatus::Running, attempts)) => attempts + 1,
        _ => bail!(
            "step {step_id} of run {run_id} cannot start: it does not exist or already has a result"
        ),
    };
    append_change(
        c,
        run_id,
        "step_started",
        Some(step_id),
        json!({"attempt": attempt}),
        Some(attempt),
        Some(&Change {
            input_digest: Some(input_digest.to_string()),
            ..Change::default()
        }),
    )?;
    Ok(attempt)
}

/// Records an attempt's result; false (recording nothing) when the step already has one.
fn finish_attempt(c: &Connection, result: &AttemptResult) -> anyhow::Result<bool> {
    // Exactly-once: only a step still `running` at this attempt takes a result.
    let state = step_state(c, &result.run_id, &result.step_id)?;
    if state != Some((StepStatus::Running, result.attempt)) {
        return Ok(false);
    }
    let status = result.status();
    append_change(
        c,
        &result.run_id,
        &format!("step_{status}"),
        Some(&result.step_id),
        result.event_data(),
        Some(result.attempt),
        Some(&Change::finished(result)),
    )?;
    Ok(true)
}

fn skip_step(c: &Connection, run_id: &str, step_id: &str, reason: &str) -> anyhow::Result<()> {
    if let Some((StepStatus::Pending, _)) = step_state(c, run_id, step_id)? {
        append_change(
            c,
            run_id,
            "step_skipped",
            Some(step_id),
            json!({"reason": reason}),
            None,
            Some(&Change {
                skip_reason: Some(reason.to_string()),
                ..Change::default()
            }),
        )?;
    }
    Ok(())
}
