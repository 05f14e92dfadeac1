//! Run-scoped state on SQLite: a step's keys and values, bounded per run.

use anyhow::bail;
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn get(c: &Connection, run_id: &str, key: &str) -> anyhow::Result<Option<String>> {
    Ok(c.query_row(
        "SELECT value FROM state WHERE run_id = ?1 AND key = ?2",
        params![run_id, key],
        |r| r.get(0),
    )
    .optional()?)
}

/// Sets `key` (deletes it when `value` is `None`); fails past `max_keys` keys.
pub(super) fn set(
    c: &Connection,
    run_id: &str,
    key: &str,
    value: Option<&str>,
    max_keys: u64,
) -> anyhow::Result<()> {
    match value {
        None => {
            c.execute(
                "DELETE FROM state WHERE run_id = ?1 AND key = ?2",
                params![run_id, key],
            )?;
        }
        Some(value) => {
            let count: i64 = c.query_row(
                "SELECT COUNT(*) FROM state WHERE run_id = ?1 AND key <> ?2",
                params![run_id, key],
                |r| r.get(0),
            )?;
            if count as u64 >= max_keys {
                bail!("run {run_id} already has {count} state keys, the limit");
            }
            c.execute(
                "INSERT INTO state (run_id, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                params![run_id, key, value],
            )?;
        }
    }
    Ok(())
}
