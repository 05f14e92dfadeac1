//! Row mapping and small SQL helpers shared by the SQLite store's operations.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::fold::Change;
use super::now_ms;
use crate::store::{RunRecord, WorkflowVersion};

/// Where a run's events are in the log: an event's key is its run's number (`runs.num`)
/// shifted left by [`SEQ_BITS`], plus its sequence number in the run (1, 2, …), so a run's
/// events are the keys of one range, in order (see migration 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventKeys {
    /// The key before the run's first event.
    base: i64,
}

/// The bits of an event's key that hold its sequence number: room for 16,777,215 events
/// in a run.
pub(super) const SEQ_BITS: u32 = 24;

impl EventKeys {
    /// The keys of the run numbered `num`.
    pub(super) fn numbered(num: i64) -> Self {
        Self {
            base: num << SEQ_BITS,
        }
    }

    /// The keys of run `run_id`'s events.
    pub(super) fn of(conn: &Connection, run_id: &str) -> anyhow::Result<Self> {
        Self::find(conn, run_id)?.with_context(|| format!("no run {run_id}"))
    }

    /// The keys of run `run_id`'s events, if there is such a run.
    pub(super) fn find(conn: &Connection, run_id: &str) -> anyhow::Result<Option<Self>> {
        let num: Option<Option<i64>> = conn
            .prepare_cached("SELECT num FROM runs WHERE id = ?1")?
            .query_row([run_id], |r| r.get(0))
            .optional()?;
        num.map(|num| Self::numbered_run(run_id, num)).transpose()
    }

    /// The keys of run `run_id`, from its row's `num`.
    pub(super) fn numbered_run(run_id: &str, num: Option<i64>) -> anyhow::Result<Self> {
        // Every run is numbered, by its creation or by migration 8.
        num.map(Self::numbered)
            .with_context(|| format!("run {run_id} has no number in the journal"))
    }

    /// The key of the run's event `seq`.
    pub(super) fn key(self, seq: i64) -> anyhow::Result<i64> {
        if !(1..1 << SEQ_BITS).contains(&seq) {
            bail!(
                "a run's log holds events 1 to {}: event {seq} cannot be journaled",
                (1i64 << SEQ_BITS) - 1
            );
        }
        Ok(self.base + seq)
    }

    /// The run's events are the keys after this one…
    pub(super) fn after(self) -> i64 {
        self.base
    }

    /// …and before this one.
    pub(super) fn before(self) -> i64 {
        self.base + (1 << SEQ_BITS)
    }
}

/// Where the events of runs this store has written to lately are: a run's number never
/// changes once it is created, so an advance that finds its run here need not read the
/// run's row to learn it. Bounded: when full it starts over, and a run it has forgotten is
/// looked up in the journal again.
#[derive(Debug, Default)]
pub(super) struct KnownKeys(std::sync::Mutex<std::collections::HashMap<String, EventKeys>>);

/// Runs [`KnownKeys`] holds at most.
const KNOWN_KEYS_CAPACITY: usize = 4096;

impl KnownKeys {
    pub(super) fn get(&self, run_id: &str) -> Option<EventKeys> {
        self.0
            .lock()
            .expect("known keys poisoned")
            .get(run_id)
            .copied()
    }

    pub(super) fn remember(&self, run_id: &str, keys: EventKeys) {
        let mut known = self.0.lock().expect("known keys poisoned");
        if known.len() >= KNOWN_KEYS_CAPACITY && !known.contains_key(run_id) {
            known.clear();
        }
        known.insert(run_id.to_string(), keys);
    }

    pub(super) fn forget(&self, run_id: &str) {
        self.0.lock().expect("known keys poisoned").remove(run_id);
    }
}

pub(super) fn append_event(
    conn: &Connection,
    run_id: &str,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
) -> anyhow::Result<()> {
    append_change(conn, run_id, kind, step_id, data, None, None)
}

/// Appends an event after the run's last one. `attempt` is the attempt it concerns, `record`
/// what it changes in its step (see [`fold`](super::fold)), when it changes one.
pub(super) fn append_change(
    conn: &Connection,
    run_id: &str,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
    attempt: Option<u32>,
    record: Option<&Change>,
) -> anyhow::Result<()> {
    let keys = EventKeys::of(conn, run_id)?;
    let seq = last_seq(conn, keys)? + 1;
    insert_event(conn, keys, seq, kind, step_id, data, attempt, record)
}

/// Inserts the run's event `seq`.
#[allow(clippy::too_many_arguments, reason = "the event's columns")]
pub(super) fn insert_event(
    conn: &Connection,
    keys: EventKeys,
    seq: i64,
    kind: &str,
    step_id: Option<&str>,
    data: Value,
    attempt: Option<u32>,
    record: Option<&Change>,
) -> anyhow::Result<()> {
    let record = record.map(serde_json::to_string).transpose()?;
    conn.prepare_cached(
        "INSERT INTO events (key, at_ms, kind, step_id, data, attempt, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        keys.key(seq)?,
        now_ms(),
        kind,
        step_id,
        data.to_string(),
        attempt,
        record
    ])?;
    Ok(())
}

/// The sequence number of a run's last event (0 when it has none).
pub(super) fn last_seq(conn: &Connection, keys: EventKeys) -> anyhow::Result<i64> {
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT key FROM events WHERE key > ?1 AND key < ?2 ORDER BY key DESC LIMIT 1",
        )?
        .query_row([keys.after(), keys.before()], |r| r.get(0))
        .optional()?;
    Ok(last.map_or(0, |key| key - keys.after()))
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

pub(super) const RUN_COLUMNS: &str = "id, workflow, version, status, input, output, failure, idempotency_key, created_ms, updated_ms, source_run";

pub(super) fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        status: parse_status(row.get(3)?)?,
        input: json_col(row.get(4)?).unwrap_or(Value::Null),
        output: json_col(row.get(5)?),
        failure: json_col(row.get(6)?),
        review: None,
        idempotency_key: row.get(7)?,
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        source_run: row.get(10)?,
    }
    .parked_review_split())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_keys_hold_its_events_and_no_others() {
        let (one, two) = (EventKeys::numbered(1), EventKeys::numbered(2));
        assert_eq!(one.key(1).unwrap(), (1 << SEQ_BITS) + 1);
        assert_eq!(one.before(), two.after(), "the ranges meet");
        assert!(one.key((1 << SEQ_BITS) - 1).unwrap() < two.key(1).unwrap());
        for seq in [0, 1 << SEQ_BITS] {
            assert_eq!(
                one.key(seq).unwrap_err().to_string(),
                format!("a run's log holds events 1 to 16777215: event {seq} cannot be journaled")
            );
        }
    }
}
