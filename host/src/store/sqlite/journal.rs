//! The journal's writes, as SQL over one connection inside the writer's transaction: a run's
//! status, attempts starting and finishing, skips, and [`advance`], which applies them
//! together. A step's changes are events (see [`fold`](super::fold)); only a run's own
//! status is a row that changes.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::Digest as _;

use super::fold::{Change, step_state};
use super::now_ms;
use super::rows::{
    EventKeys, KnownKeys, RUN_COLUMNS, append_event, get_run, insert_event, last_seq, run_row,
};
use crate::store::{
    Advance, Advanced, AttemptResult, NewRun, RunRecord, RunStatus, StepStatus, idempotency,
};

/// Appends to one run's log at known sequence numbers: an advance reads where the log ends
/// once, not once per event it appends.
struct Log<'c> {
    c: &'c Connection,
    run_id: &'c str,
    keys: EventKeys,
    last: i64,
    /// `last` is the driver's word, not read back: an event already at the next number
    /// means someone else wrote to the run, and the append fails with [`Stale`].
    optimistic: bool,
}

/// The run's log went on past the driver's [`Basis`](crate::store::Basis): nothing of the
/// advance was written, and it must be checked against the journal.
#[derive(Debug, thiserror::Error)]
#[error("the run's log has moved on since its driver's last commit")]
struct Stale;

impl Log<'_> {
    fn append(
        &mut self,
        kind: &str,
        step_id: Option<&str>,
        data: Value,
        attempt: Option<u32>,
        record: Option<&Change>,
    ) -> anyhow::Result<()> {
        self.last += 1;
        let appended = insert_event(
            self.c, self.keys, self.last, kind, step_id, data, attempt, record,
        );
        if self.optimistic
            && let Err(e) = &appended
            && e.downcast_ref::<rusqlite::Error>()
                .and_then(rusqlite::Error::sqlite_error)
                .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        {
            return Err(Stale.into());
        }
        // Only the first append can find its number taken: the rest follow it in the same
        // transaction, which holds the database's write lock.
        self.optimistic = false;
        appended
    }
}

/// An advance that applied nothing, or stopped short.
fn refused(recorded: bool, run_over: bool, lost_lease: bool) -> Advanced {
    Advanced {
        recorded,
        attempts: Vec::new(),
        run_over,
        lost_lease,
        seq: None,
        run: None,
    }
}

/// The run that has an idempotency key, through the index of the runs that have one.
pub(super) const RUN_BY_IDEMPOTENCY_KEY: &str =
    "SELECT id, workflow, version, input_digest FROM runs WHERE idempotency_key = ?1";

/// Creates a run with its steps, or finds the one with its idempotency key; see
/// [`Store::create_run`](crate::store::Store::create_run). A run created `running` (its
/// driver starts it in this same transaction) is journaled as created and then running, as
/// a `pending` one is by its first advance. The keys of its events come back with a run
/// just created, not with one found.
pub(super) fn create(
    c: &Connection,
    run: &NewRun,
    status: RunStatus,
) -> anyhow::Result<(RunRecord, Option<EventKeys>)> {
    let input_text = run.input.to_string();
    let input_digest = hex::encode(sha2::Sha256::digest(input_text.as_bytes()));
    if let Some(key) = &run.idempotency_key {
        idempotency::check_key(key)?;
        let existing = c
            .prepare_cached(RUN_BY_IDEMPOTENCY_KEY)?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        if let Some(existing) = existing {
            let id = idempotency::check_existing(key, existing, run, &input_digest)?;
            return Ok((get_run(c, &id)?.context("run vanished")?, None));
        }
    }
    let id = run
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let now = now_ms();
    // The run's number places its events in the log; the writer's transaction makes it the
    // only run to get it.
    let num: i64 = c
        .prepare_cached("UPDATE run_numbers SET last = last + 1 RETURNING last")?
        .query_row([], |r| r.get(0))?;
    c.prepare_cached(
        "INSERT INTO runs (id, workflow, version, status, input, input_digest, idempotency_key, created_ms, updated_ms, num, source_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
    )?
    .execute(params![id, run.workflow, run.version, status.as_str(), input_text, input_digest, run.idempotency_key, now, num, run.source_run])?;
    let keys = EventKeys::numbered(num);
    // The steps live in the run's first event: a run's creation writes no row per step.
    let steps = Change {
        steps: Some(run.steps.clone()),
        ..Change::default()
    };
    insert_event(
        c,
        keys,
        1,
        "run_created",
        None,
        run.event_data(),
        None,
        Some(&steps),
    )?;
    if status == RunStatus::Running {
        insert_event(c, keys, 2, "run_running", None, Value::Null, None, None)?;
    }
    // The row as just written, not read back.
    Ok((run.record(id, status, now), Some(keys)))
}

/// [`advance_with`] by a store that knows no run yet.
#[cfg(test)]
pub(super) fn advance(c: &Connection, advance: &Advance) -> anyhow::Result<Advanced> {
    advance_with(c, advance, &KnownKeys::default())
}

/// Applies `advance`; see [`Store::advance`](crate::store::Store::advance). Where the run's
/// events are comes from `known` when it can, and `known` learns it (or forgets it once the
/// run ends).
///
/// A driver whose [`Basis`](crate::store::Basis) still holds changes the run as it last left
/// it, and most advances are such: for those nothing is read back. The advance appends its
/// result's event at the number after the basis, which the log's primary key refuses if
/// anyone else has written to the run since (every change to a run, its status included,
/// appends an event); only then is the run read and every rule checked. A driver with no
/// lease needs nothing else of the run's row either (fencing is for leases), so when `known`
/// holds its run, its advance reads nothing at all.
pub(super) fn advance_with(
    c: &Connection,
    advance: &Advance,
    known: &KnownKeys,
) -> anyhow::Result<Advanced> {
    let run_id = advance.run_id.as_str();
    // The result's event is the advance's first write, so a refused append leaves nothing
    // behind. (An advance with no result is a run's first or a resumed one: checked.)
    let optimistic = |keys: EventKeys| -> Option<anyhow::Result<Advanced>> {
        let (Some(basis), Some(_)) = (&advance.basis, &advance.finished) else {
            return None;
        };
        match apply(c, advance, Known::optimistic(keys, basis)) {
            Err(e) if e.is::<Stale>() => None,
            applied => Some(remembered(applied, advance, keys, known)),
        }
    };
    let cached = known.get(run_id).filter(|_| advance.lease.is_none());
    if let Some(applied) = cached.and_then(optimistic) {
        return applied;
    }
    // The run's row, read once: its lease, its status, and its number.
    let row: Option<(Option<String>, i64, String, Option<i64>)> = c
        .prepare_cached("SELECT lease_owner, lease_epoch, status, num FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    // Fencing: a driver whose lease was taken over records nothing.
    if let Some(lease) = &advance.lease
        && row.as_ref().is_none_or(|(owner, epoch, _, _)| {
            owner.as_deref() != Some(lease.owner.as_str()) || *epoch != lease.epoch
        })
    {
        return Ok(refused(false, false, true));
    }
    let (_, _, status, num) = row.with_context(|| format!("no run {run_id}"))?;
    let keys = EventKeys::numbered_run(run_id, num)?;
    // An optimistic append just refused above is not tried again.
    if cached.is_none()
        && let Some(applied) = optimistic(keys)
    {
        return applied;
    }
    let last = last_seq(c, keys)?;
    let checked = Known {
        keys,
        status: status.parse().map_err(anyhow::Error::msg)?,
        last,
        // The driver's view stands in for reading the steps back only if no one else has
        // touched the run since its last commit: see `Basis`.
        basis: advance.basis.as_ref().filter(|b| b.seq == last),
        optimistic: false,
    };
    remembered(apply(c, advance, checked), advance, keys, known)
}

/// Tells `known` where the events of `advance`'s run are, or forgets them once it has ended,
/// and passes `applied` on.
pub(super) fn remembered(
    applied: anyhow::Result<Advanced>,
    advance: &Advance,
    keys: EventKeys,
    known: &KnownKeys,
) -> anyhow::Result<Advanced> {
    if let Ok(advanced) = &applied {
        if advanced.run_over || advance.end.is_some() {
            known.forget(&advance.run_id);
        } else {
            known.remember(&advance.run_id, keys);
        }
    }
    applied
}

/// What an advance takes as given about its run.
pub(super) struct Known<'b> {
    /// Where the run's events are.
    pub(super) keys: EventKeys,
    /// The run's status.
    pub(super) status: RunStatus,
    /// The run's last event.
    pub(super) last: i64,
    /// The driver's view of the steps, when it holds.
    pub(super) basis: Option<&'b crate::store::Basis>,
    /// `last` and `status` are the driver's word: see [`Log::optimistic`].
    pub(super) optimistic: bool,
}

impl<'b> Known<'b> {
    /// A running run whose log ends where the driver's `basis` says, on the driver's word.
    fn optimistic(keys: EventKeys, basis: &'b crate::store::Basis) -> Self {
        Self {
            keys,
            status: RunStatus::Running,
            last: basis.seq,
            basis: Some(basis),
            optimistic: true,
        }
    }
}

/// Applies `advance` to a run in the state `known` describes.
pub(super) fn apply(
    c: &Connection,
    advance: &Advance,
    known: Known<'_>,
) -> anyhow::Result<Advanced> {
    let run_id = advance.run_id.as_str();
    let Known {
        keys,
        status,
        last,
        basis,
        optimistic,
    } = known;
    let mut log = Log {
        c,
        run_id,
        keys,
        last,
        optimistic,
    };
    if let Some(result) = &advance.finished
        && !finish_attempt(&mut log, result, advance.profile.as_ref(), basis.is_some())?
    {
        return Ok(refused(false, false, false));
    }
    if status.is_final() {
        // A result recorded after its run ended (an attempt still in flight when the run was
        // cancelled) is counted as the run's other results were.
        if advance.finished.is_some() {
            super::profiles::settle(c, run_id)?;
        }
        return Ok(refused(true, true, false));
    }
    let mut run = None;
    // Only a run's first advance moves it on from `pending`; the others skip the statement.
    if status == RunStatus::Pending {
        log.append("run_running", None, Value::Null, None, None)?;
        run = Some(
            c.prepare_cached(&format!(
                "UPDATE runs SET status = 'running', updated_ms = ?2 WHERE id = ?1 AND status = 'pending' RETURNING {RUN_COLUMNS}"
            ))?
            .query_row(params![run_id, now_ms()], run_row)?,
        );
    }
    for (step_id, reason) in &advance.skipped {
        skip_step(&mut log, step_id, reason)?;
    }
    let attempts = advance
        .started
        .iter()
        .map(|(step_id, digest)| {
            let known = basis.and_then(|b| b.attempts.get(step_id).copied());
            start_attempt(&mut log, step_id, digest, known)
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(review) = &advance.review {
        super::reviews::open(c, run_id, review)?;
        // Opening a review appends to the log too.
        log.last = last_seq(c, keys)?;
    }
    if let Some(end) = &advance.end {
        log.append(
            &format!("run_{}", end.status),
            None,
            end.failure.clone().unwrap_or(Value::Null),
            None,
            None,
        )?;
        run = Some(end_run(
            c,
            run_id,
            end.status,
            end.output.clone(),
            end.failure.clone(),
        )?);
    }
    Ok(Advanced {
        recorded: true,
        attempts,
        run_over: false,
        lost_lease: false,
        seq: Some(log.last),
        run,
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
    end_run(c, id, status, output, failure.clone())?;
    append_event(
        c,
        id,
        &format!("run_{status}"),
        None,
        failure.clone().unwrap_or(Value::Null),
    )?;
    if status.is_final() {
        super::reviews::close_pending(c, id, status, failure.as_ref())?;
    }
    Ok(())
}

/// The run row's side of [`set_status`] (its event is the caller's to append): the row as
/// it now stands.
fn end_run(
    c: &Connection,
    id: &str,
    status: RunStatus,
    output: Option<Value>,
    failure: Option<Value>,
) -> anyhow::Result<RunRecord> {
    let run = c.prepare_cached(&format!("UPDATE runs SET status = ?2, output = COALESCE(?3, output), failure = COALESCE(?4, failure), updated_ms = ?5
         WHERE id = ?1 AND status NOT IN ('succeeded', 'failed', 'cancelled') RETURNING {RUN_COLUMNS}"))?
        .query_row(
            params![id, status.as_str(), output.as_ref().map(Value::to_string), failure.as_ref().map(Value::to_string), now_ms()],
            run_row,
        )
        .optional()?
        .with_context(|| format!("run {id} does not exist or has already ended"))?;
    // A run that stops (ended, or parked for review) has its results' profile counts moved
    // out of its events, in the same transaction.
    if !matches!(status, RunStatus::Pending | RunStatus::Running) {
        super::profiles::settle(c, id)?;
    }
    Ok(run)
}

/// Journals the start of a step's next attempt and returns its number. `known` is the
/// driver's count of the step's attempts, when its [`Basis`](crate::store::Basis) holds; otherwise the journal
/// is asked, and only a step still `pending` or `running` may start.
fn start_attempt(
    log: &mut Log<'_>,
    step_id: &str,
    input_digest: &str,
    known: Option<u32>,
) -> anyhow::Result<u32> {
    let run_id = log.run_id;
    let journaled = || -> anyhow::Result<u32> {
        match step_state(log.c, run_id, log.keys, step_id)? {
            Some((StepStatus::Pending | StepStatus::Running, attempts)) => Ok(attempts + 1),
            _ => bail!(
                "step {step_id} of run {run_id} cannot start: it does not exist or already has a result"
            ),
        }
    };
    let attempt = match known {
        Some(attempts) => {
            // The test suite runs debug builds: every trusted start is checked there.
            debug_assert_eq!(
                journaled().ok(),
                Some(attempts + 1),
                "a driver's basis disagrees with the journal about step {step_id}"
            );
            attempts + 1
        }
        None => journaled()?,
    };
    log.append(
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

/// Records an attempt's result, with what it adds to its step's profile; false (recording
/// nothing) when the step already has one. `trusted`: the driver's basis holds, and it
/// started this attempt itself.
fn finish_attempt(
    log: &mut Log<'_>,
    result: &AttemptResult,
    profile: Option<&crate::store::StepProfile>,
    trusted: bool,
) -> anyhow::Result<bool> {
    // Exactly-once: only a step still `running` at this attempt takes a result.
    let running = || -> anyhow::Result<bool> {
        Ok(
            step_state(log.c, &result.run_id, log.keys, &result.step_id)?
                == Some((StepStatus::Running, result.attempt)),
        )
    };
    if trusted {
        // The test suite runs debug builds: there every trusted result is checked, once it
        // is sure the basis holds (an optimistic append learns that only when it is made).
        #[cfg(debug_assertions)]
        if last_seq(log.c, log.keys)? == log.last {
            assert!(
                running()?,
                "a driver's basis disagrees with the journal about step {}",
                result.step_id
            );
        }
    } else if !running()? {
        return Ok(false);
    }
    let status = result.status();
    log.append(
        &format!("step_{status}"),
        Some(&result.step_id),
        result.event_data(),
        Some(result.attempt),
        Some(&Change {
            // In the result's own event: counting a result writes no page of its own.
            profile: profile.and_then(|p| {
                serde_json::value::RawValue::from_string(crate::store::profiles::encode(p)).ok()
            }),
            ..Change::finished(result)
        }),
    )?;
    Ok(true)
}

/// Skips a step still `pending` (checked against the journal: skips are rare, and a step
/// left `running` by a crash is not skipped).
fn skip_step(log: &mut Log<'_>, step_id: &str, reason: &str) -> anyhow::Result<()> {
    if let Some((StepStatus::Pending, _)) = step_state(log.c, log.run_id, log.keys, step_id)? {
        log.append(
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
