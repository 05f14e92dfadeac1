//! Purging runs' payloads (see `store/purge.rs` for what stays), on a connection of its own:
//! with `secure_delete` on, so the old values are overwritten in the pages that held them
//! rather than left in their free space, and with the WAL truncated afterwards, so no old
//! frame keeps them either. A purged value is gone from the database file.

use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::Value;

use super::rows::EventKeys;
use super::{Durability, open};
use crate::store::purge;

/// Purges up to `limit` ended runs of `workflow` (all when `None`) last changed before
/// `ended_before_ms`, oldest first; returns their ids.
pub(super) fn purge_runs(
    path: &Path,
    durability: Durability,
    workflow: Option<&str>,
    ended_before_ms: i64,
    limit: usize,
) -> anyhow::Result<Vec<String>> {
    let mut conn = open(path, durability)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let runs: Vec<(String, Option<i64>)> = tx
        .prepare(
            "SELECT id, num FROM runs
             WHERE status IN ('succeeded', 'failed', 'cancelled') AND purged_ms IS NULL
               AND updated_ms < ?1 AND (?2 IS NULL OR workflow = ?2)
             ORDER BY updated_ms LIMIT ?3",
        )?
        .query_map(params![ended_before_ms, workflow, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let now = crate::store::now_ms();
    for (id, num) in &runs {
        purge_run(&tx, id, EventKeys::numbered_run(id, *num)?, now)?;
    }
    tx.execute("DELETE FROM model_cache WHERE expires_ms <= ?1", [now])?;
    tx.commit()?;
    // Best effort: a reader in the middle of a long read keeps the WAL; the next purge
    // (or the background checkpoint) gets it.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(runs.into_iter().map(|(id, _)| id).collect())
}

fn purge_run(c: &Connection, id: &str, keys: EventKeys, now: i64) -> anyhow::Result<()> {
    let failure: Option<String> =
        c.query_row("SELECT failure FROM runs WHERE id = ?1", [id], |r| r.get(0))?;
    c.execute(
        "UPDATE runs SET input = 'null', output = NULL, failure = ?2, purged_ms = ?3 WHERE id = ?1",
        params![id, purge::failure_text(failure), now],
    )?;
    rewrite_failures(c, "steps", "step_id", id)?;
    rewrite_failures(c, "attempts", "step_id || '/' || attempt", id)?;
    c.execute("UPDATE steps SET output = NULL WHERE run_id = ?1", [id])?;
    c.execute("UPDATE attempts SET logs = NULL WHERE run_id = ?1", [id])?;
    c.execute("DELETE FROM state WHERE run_id = ?1", [id])?;
    // A shadow's detail holds what the step said, live and in the shadow.
    c.execute(
        "UPDATE shadow_results SET detail = '{\"purged\": true}' WHERE run_id = ?1",
        [id],
    )?;
    c.execute(
        "UPDATE reviews SET reason = '(purged)', data = 'null', note = NULL, before_value = NULL, after_value = NULL WHERE run_id = ?1",
        [id],
    )?;
    c.execute(
        "UPDATE model_calls SET request = 'null', response = NULL, error = NULL WHERE run_id = ?1",
        [id],
    )?;
    let events: Vec<(i64, String, Option<String>)> = c
        .prepare("SELECT key, data, record FROM events WHERE key > ?1 AND key < ?2")?
        .query_map(params![keys.after(), keys.before()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update = c.prepare("UPDATE events SET data = ?2, record = ?3 WHERE key = ?1")?;
    for (key, data, record) in events {
        let data = purge::event_data(&parse(&data));
        let record = record.map(|r| purge::event_record(&parse(&r)).to_string());
        update.execute(params![key, data.to_string(), record])?;
    }
    Ok(())
}

/// Cuts the failures of a run's rows in `table` down to their kinds.
fn rewrite_failures(c: &Connection, table: &str, key: &str, id: &str) -> anyhow::Result<()> {
    let rows: Vec<(String, String)> = c
        .prepare(&format!(
            "SELECT {key}, failure FROM {table} WHERE run_id = ?1 AND failure IS NOT NULL"
        ))?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = c.prepare(&format!(
        "UPDATE {table} SET failure = ?3 WHERE run_id = ?1 AND {key} = ?2"
    ))?;
    for (row, failure) in rows {
        update.execute(params![id, row, purge::failure_text(Some(failure))])?;
    }
    Ok(())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
