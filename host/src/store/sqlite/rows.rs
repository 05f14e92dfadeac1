//! Row mapping and small SQL helpers shared by the SQLite store's operations.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::fold::Change;
use super::now_ms;
use crate::store::{RunRecord, WorkflowVersion};

pub(super) fn append_event(
    conn: &Connection,
    run_id: &str,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
) -> anyhow::Result<()> {
    append_change(conn, run_id, kind, step_id, data, None, None)
}

/// Appends an event that changes its step: `attempt` is the attempt it concerns, `record`
/// what it changes (see [`fold`](super::fold)).
pub(super) fn append_change(
    conn: &Connection,
    run_id: &str,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
    attempt: Option<u32>,
    record: Option<&Change>,
) -> anyhow::Result<()> {
    insert_event(conn, run_id, None, kind, step_id, data, attempt, record)
}

/// Inserts an event at `seq`, or after the run's last event when `seq` is `None`.
#[allow(clippy::too_many_arguments, reason = "the event's columns")]
pub(super) fn insert_event(
    conn: &Connection,
    run_id: &str,
    seq: Option<i64>,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
    attempt: Option<u32>,
    record: Option<&Change>,
) -> anyhow::Result<()> {
    let record = record.map(serde_json::to_string).transpose()?;
    let (at, data) = (now_ms(), data.to_string());
    match seq {
        Some(seq) => conn
            .prepare_cached(
                "INSERT INTO events (run_id, seq, at_ms, kind, step_id, data, attempt, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![run_id, seq, at, kind, step_id, data, attempt, record])?,
        None => conn
            .prepare_cached(
                "INSERT INTO events (run_id, seq, at_ms, kind, step_id, data, attempt, record)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![run_id, at, kind, step_id, data, attempt, record])?,
    };
    Ok(())
}

/// The sequence number of a run's last event (0 when it has none).
pub(super) fn last_seq(conn: &Connection, run_id: &str) -> anyhow::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?1")?
        .query_row([run_id], |r| r.get(0))?)
}

pub(super) fn json_col(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

pub(super) fn parse_status<T: std::str::FromStr<Err = String>>(
    text: String,
) -> rusqlite::Result<T> {
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

pub(super) const RUN_COLUMNS: &str = "id, workflow, version, status, input, output, failure, idempotency_key, created_ms, updated_ms";

pub(super) fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        status: parse_status(row.get(3)?)?,
        input: json_col(row.get(4)?).unwrap_or(Value::Null),
        output: json_col(row.get(5)?),
        failure: json_col(row.get(6)?),
        idempotency_key: row.get(7)?,
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
    })
}

pub(super) fn get_run(conn: &Connection, id: &str) -> anyhow::Result<Option<RunRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], run_row)
        .optional()?)
}

pub(super) fn workflow_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkflowVersion> {
    Ok(WorkflowVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        digest: row.get(2)?,
        source: row.get(3)?,
        base_dir: row.get(4)?,
        pins: json_col(row.get(5)?)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        registered_ms: row.get(6)?,
    })
}

pub(super) const WORKFLOW_COLUMNS: &str =
    "name, version, digest, source, base_dir, pins, registered_ms";
