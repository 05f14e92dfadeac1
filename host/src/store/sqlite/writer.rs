//! The writer side of the SQLite store: opening connections, migrating the schema, and the
//! group-commit loop that runs every queued write of a batch in one transaction.

use std::path::Path;
use std::sync::mpsc;

use anyhow::Context as _;
use rusqlite::{Connection, params};

use super::{Durability, Job, MAX_BATCH, now_ms};
use crate::store::migrations::MIGRATIONS;

pub(super) fn open(path: &Path, durability: Durability) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open the database {path:?}"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        if durability == Durability::Full {
            "FULL"
        } else {
            "NORMAL"
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // Room for every statement the journal uses, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(super) fn write_loop(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let commit = match conn.transaction() {
            Ok(mut txn) => {
                for job in batch {
                    replies.push(job(&mut txn));
                }
                txn.commit().map_err(|e| e.to_string())
            }
            Err(e) => {
                let message = e.to_string();
                for _job in batch {
                    replies.push(Box::new(|_| {}));
                }
                Err(message)
            }
        };
        for reply in replies {
            reply(commit.clone());
        }
    }
}

pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")?;
    // IMMEDIATE: two processes opening a new database together must not both migrate it.
    let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = txn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        txn.execute_batch(sql)
            .with_context(|| format!("migration {version} failed"))?;
        txn.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrading_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("old.db"), Durability::Normal).unwrap();
        // A database at version 2, with a run in it.
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
            .unwrap();
        for (version, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [version])
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO runs VALUES ('r1', 'wf', '1.0.0', 'running', '{}', 'd', NULL, NULL, NULL, 1, 1);
             INSERT INTO steps VALUES ('r1', 'a', 0, 'p', 'succeeded', '{\"x\":1}', 0.5, 'ok', NULL, NULL, 1);
             INSERT INTO attempts VALUES ('r1', 'a', 1, 'i', 'succeeded', NULL, 1, 2, 3, NULL, 4, '{}');
             INSERT INTO events VALUES ('r1', 1, 1, 'run_created', NULL, '{}');
             INSERT INTO state VALUES ('r1', 'k', 'v');",
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let count = |table: &str| -> i64 {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE run_id = 'r1'"),
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        for table in ["steps", "attempts", "events", "state"] {
            assert_eq!(count(table), 1, "{table} kept its row");
        }
        let output: String = conn
            .query_row(
                "SELECT output FROM steps WHERE run_id = 'r1' AND step_id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(output, "{\"x\":1}");
        let without_rowid: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('steps', 'attempts', 'events', 'state') AND sql LIKE '%WITHOUT ROWID%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without_rowid, 4);
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, MIGRATIONS.last().unwrap().0);
    }
}
