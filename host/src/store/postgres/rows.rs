//! Row mapping and helpers shared by the PostgreSQL store's operations.

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::store::{RunRecord, WorkflowVersion, now_ms};

/// Appends an event to a run's log. Taking the next number from the run's row also locks
/// that row until the transaction ends, so one run's writes never interleave.
pub(super) async fn append_event(
    c: &mut PgConnection,
    run_id: &str,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
) -> anyhow::Result<()> {
    // One round trip: number the event and insert it in the same statement.
    sqlx::query(
        "WITH next AS (UPDATE runs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq)
         INSERT INTO events (run_id, seq, at_ms, kind, step_id, data)
         SELECT $1, event_seq, $2, $3, $4, $5 FROM next",
    )
    .bind(run_id)
    .bind(now_ms())
    .bind(kind)
    .bind(step_id)
    .bind(data.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) fn json_col(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

pub(super) fn parse<T: std::str::FromStr<Err = String>>(text: String) -> anyhow::Result<T> {
    text.parse().map_err(|e: String| anyhow::anyhow!(e))
}

pub(super) const RUN_COLUMNS: &str = "id, workflow, version, status, input, output, failure, idempotency_key, created_ms, updated_ms, source_run";

pub(super) fn run_row(r: &PgRow) -> anyhow::Result<RunRecord> {
    Ok(RunRecord {
        id: r.try_get(0)?,
        workflow: r.try_get(1)?,
        version: r.try_get(2)?,
        status: parse(r.try_get(3)?)?,
        input: json_col(r.try_get(4)?).unwrap_or(Value::Null),
        output: json_col(r.try_get(5)?),
        failure: json_col(r.try_get(6)?),
        review: None,
        idempotency_key: r.try_get(7)?,
        created_ms: r.try_get(8)?,
        updated_ms: r.try_get(9)?,
        source_run: r.try_get(10)?,
    }
    .parked_review_split())
}

pub(super) async fn get_run(c: &mut PgConnection, id: &str) -> anyhow::Result<Option<RunRecord>> {
    sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(run_row)
        .transpose()
}

pub(super) const WORKFLOW_COLUMNS: &str =
    "name, version, digest, source, base_dir, pins, registered_ms";

pub(super) fn workflow_row(r: &PgRow) -> anyhow::Result<WorkflowVersion> {
    Ok(WorkflowVersion {
        name: r.try_get(0)?,
        version: r.try_get(1)?,
        digest: r.try_get(2)?,
        source: r.try_get(3)?,
        base_dir: r.try_get(4)?,
        pins: json_col(r.try_get(5)?)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        registered_ms: r.try_get(6)?,
    })
}
