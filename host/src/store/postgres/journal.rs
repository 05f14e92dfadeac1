//! The journal's writes on PostgreSQL: [`advance`] and a run's status, each inside the
//! caller's transaction. The run's row is locked first, so one run's writes are serialized
//! whichever host makes them.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use sqlx::{PgConnection, Row};

use super::rows::append_event;
use crate::store::{Advance, Advanced, AttemptResult, ResultColumns, RunStatus, now_ms};

/// Applies `advance`; see [`Store::advance`](crate::store::Store::advance).
pub(super) async fn advance(c: &mut PgConnection, advance: &Advance) -> anyhow::Result<Advanced> {
    let run_id = advance.run_id.as_str();
    let row =
        sqlx::query("SELECT status, lease_owner, lease_epoch FROM runs WHERE id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_optional(&mut *c)
            .await?
            .with_context(|| format!("no run {run_id}"))?;
    let status: String = row.try_get(0)?;
    // Fencing: a driver whose lease was taken over records nothing.
    if let Some(lease) = &advance.lease {
        let (owner, epoch): (Option<String>, i64) = (row.try_get(1)?, row.try_get(2)?);
        if owner.as_deref() != Some(lease.owner.as_str()) || epoch != lease.epoch {
            return Ok(Advanced {
                recorded: false,
                attempts: Vec::new(),
                run_over: false,
                lost_lease: true,
                seq: None,
                run: None,
            });
        }
    }
    if let Some(result) = &advance.finished
        && !finish_attempt(c, result).await?
    {
        return Ok(Advanced {
            recorded: false,
            attempts: Vec::new(),
            run_over: false,
            lost_lease: false,
            seq: None,
            run: None,
        });
    }
    // With the result it profiles, in its transaction: counted once, or not at all.
    if let (Some(_), Some(profile)) = (&advance.finished, &advance.profile) {
        super::profiles::add(c, profile).await?;
    }
    if matches!(status.as_str(), "succeeded" | "failed" | "cancelled") {
        return Ok(Advanced {
            recorded: true,
            attempts: Vec::new(),
            run_over: true,
            lost_lease: false,
            seq: None,
            run: None,
        });
    }
    if status == "pending" {
        sqlx::query("UPDATE runs SET status = 'running', updated_ms = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
        append_event(c, run_id, "run_running", None, Value::Null).await?;
    }
    for (step_id, reason) in &advance.skipped {
        let changed = sqlx::query("UPDATE steps SET status = 'skipped', skip_reason = $3 WHERE run_id = $1 AND step_id = $2 AND status = 'pending'")
            .bind(run_id)
            .bind(step_id)
            .bind(reason)
            .execute(&mut *c)
            .await?
            .rows_affected();
        if changed == 1 {
            append_event(
                c,
                run_id,
                "step_skipped",
                Some(step_id),
                json!({"reason": reason}),
            )
            .await?;
        }
    }
    let mut attempts = Vec::new();
    for (step_id, digest) in &advance.started {
        attempts.push(start_attempt(c, run_id, step_id, digest).await?);
    }
    if let Some(review) = &advance.review {
        super::reviews::open(c, run_id, review).await?;
    }
    if let Some(end) = &advance.end {
        set_status(
            c,
            run_id,
            end.status,
            end.output.clone(),
            end.failure.clone(),
        )
        .await?;
    }
    Ok(Advanced {
        recorded: true,
        attempts,
        run_over: false,
        lost_lease: false,
        seq: None,
        run: None,
    })
}

/// Moves a run to `status` (with its output or failure) unless it has already ended.
pub(super) async fn set_status(
    c: &mut PgConnection,
    id: &str,
    status: RunStatus,
    output: Option<Value>,
    failure: Option<Value>,
) -> anyhow::Result<()> {
    sqlx::query("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *c)
        .await?;
    let now = now_ms();
    let changed = sqlx::query(
        "UPDATE runs SET status = $2, output = COALESCE($3, output), failure = COALESCE($4, failure), updated_ms = $5
         WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(output.as_ref().map(Value::to_string))
    .bind(failure.as_ref().map(Value::to_string))
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if changed == 0 {
        bail!("run {id} does not exist or has already ended");
    }
    if status.is_final() {
        // Attempts still without a result never get one now: an ended run takes none.
        sqlx::query(
            "UPDATE attempts SET status = 'interrupted', finished_ms = $2
             WHERE run_id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    append_event(
        c,
        id,
        &format!("run_{status}"),
        None,
        failure.clone().unwrap_or(Value::Null),
    )
    .await?;
    if status.is_final() {
        super::reviews::close_pending(c, id, status, failure.as_ref()).await?;
    }
    Ok(())
}

async fn start_attempt(
    c: &mut PgConnection,
    run_id: &str,
    step_id: &str,
    input_digest: &str,
) -> anyhow::Result<u32> {
    // One round trip: take the attempt number, journal the attempt and its event.
    // An earlier attempt still without a result was interrupted (its driver died or lost
    // the run): it can never take one now, so it is closed as of this start.
    let attempt: i64 = sqlx::query_scalar(&format!(
        "WITH step AS (
             UPDATE steps SET status = 'running', attempts = attempts + 1
             WHERE run_id = $1 AND step_id = $2 AND status IN ('pending', 'running') RETURNING attempts),
         interrupted AS (
             UPDATE attempts SET status = 'interrupted', finished_ms = $4
             WHERE run_id = $1 AND step_id = $2 AND status = 'running' AND EXISTS (SELECT 1 FROM step)),
         started AS (
             INSERT INTO attempts (run_id, step_id, attempt, input_digest, status, started_ms)
             SELECT $1, $2, attempts, $3, 'running', $4 FROM step RETURNING attempt),
         {EVENT}
         SELECT attempt FROM started",
        EVENT = event_cte("SELECT $4, 'step_started', $2, json_build_object('attempt', attempts)::text FROM step"),
    ))
    .bind(run_id)
    .bind(step_id)
    .bind(input_digest)
    .bind(now_ms())
    .fetch_optional(&mut *c)
    .await?
    .with_context(|| format!("step {step_id} of run {run_id} cannot start: it does not exist or already has a result"))?;
    Ok(attempt as u32)
}

/// Records an attempt's result; false (recording nothing) when the step already has one.
async fn finish_attempt(c: &mut PgConnection, result: &AttemptResult) -> anyhow::Result<bool> {
    let ResultColumns {
        status,
        output,
        confidence,
        route,
        failure,
    } = result.columns();
    // Exactly-once: only a step still `running` at this attempt takes a result; the attempt
    // row and the event are written in the same statement, only if it did.
    let recorded: i64 = sqlx::query_scalar(&format!(
        "WITH step AS (
             UPDATE steps SET status = $3, output = $4, confidence = $5, route = $6, failure = $7
             WHERE run_id = $1 AND step_id = $2 AND status = 'running' AND attempts = $8 RETURNING 1),
         attempt AS (
             UPDATE attempts SET status = $3, failure = $7, finished_ms = $9, latency_us = $10, fuel = $11, memory_peak = $12, logs = $13, tape = $15
             WHERE run_id = $1 AND step_id = $2 AND attempt = $8 AND EXISTS (SELECT 1 FROM step)),
         {EVENT}
         SELECT COUNT(*) FROM step",
        EVENT = event_cte("SELECT $9, 'step_' || $3, $2, $14 FROM step"),
    ))
    .bind(&result.run_id)
    .bind(&result.step_id)
    .bind(status)
    .bind(output)
    .bind(confidence)
    .bind(route)
    .bind(&failure)
    .bind(result.attempt as i64)
    .bind(now_ms())
    .bind(result.latency_us as i64)
    .bind(result.fuel.map(|f| f as i64))
    .bind(result.memory_peak as i64)
    .bind(result.logs.to_string())
    .bind(result.event_data().to_string())
    .bind(result.tape.as_ref().map(|t| t.to_string()))
    .fetch_one(&mut *c)
    .await?;
    Ok(recorded == 1)
}

/// The `WITH` entries that append one event to run `$1`'s log when `source` (a query of
/// `at_ms, kind, step_id, data` from the statement's `step` entry) has a row: the log's
/// next number is taken and the event written in the statement that made the change, so a
/// change and its event cost one round trip together.
fn event_cte(source: &str) -> String {
    format!(
        "next AS (
             UPDATE runs SET event_seq = event_seq + 1
             WHERE id = $1 AND EXISTS (SELECT 1 FROM step) RETURNING event_seq),
         event AS (
             INSERT INTO events (run_id, seq, at_ms, kind, step_id, data)
             SELECT $1, next.event_seq, source.* FROM next, ({source}) AS source(at_ms, kind, step_id, data))"
    )
}
