//! The writer side of the SQLite store: opening connections, migrating the schema, and group
//! commit, which runs every queued write of a batch in one transaction.

use std::path::Path;
use std::sync::{Mutex, TryLockError};

use anyhow::{Context as _, anyhow, bail};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::{Durability, MAX_BATCH, now_ms};
use crate::store::migrations::MIGRATIONS;

pub(super) fn open(path: &Path, durability: Durability) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open the database {path:?}"))?;
    // Small pages for a new database (an existing one keeps its own): a commit writes each
    // page it changed to the WAL whole, and a step's commit changes a few hundred bytes of
    // one or two pages, so 2 KiB pages halve what every commit writes. Measured in
    // `benches/README.md`: faster at every payload size tried, 50 bytes to 8 KiB.
    conn.pragma_update(None, "page_size", PAGE_SIZE_BYTES)?;
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
    // One plan per statement whatever values are bound. Without it, SQLite marks some
    // statements (the event append's subquery among them) to be re-planned whenever a bound
    // value changes, so the statement cache re-parsed them on every use.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // The background pass copies the WAL into the database; see `checkpoint`.
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        super::checkpoint::WRITER_THRESHOLD_PAGES,
    )?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        super::checkpoint::WAL_SIZE_LIMIT_BYTES,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // Room for every statement the journal uses, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The page size of a database Weir creates.
pub const PAGE_SIZE_BYTES: u32 = 2048;

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A queued write. It is told whether it shares its transaction with other writes (then it
/// must isolate itself in a savepoint) and answers whether it failed (a write alone in its
/// transaction that failed has the whole transaction rolled back).
pub(super) type Job = Box<dyn FnOnce(&Transaction<'_>, bool) -> (bool, Reply) + Send>;

/// The job that runs `f` and sends its outcome to `reply` once its transaction has ended.
pub(super) fn job<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    reply: tokio::sync::oneshot::Sender<anyhow::Result<T>>,
) -> Job {
    Box::new(move |txn, shared| {
        // Sharing the transaction, a write takes a savepoint so that if it fails it is
        // rolled back alone, not the batch. Alone, it needs none (the whole transaction is
        // rolled back instead), which saves two statements on every sequential write.
        let outcome = if shared { isolated(txn, f) } else { f(txn) };
        let failed = outcome.is_err();
        let reply: Reply = Box::new(move |commit: Result<(), String>| {
            let _ = reply.send(
                commit
                    .map_err(|e| anyhow!("commit failed: {e}"))
                    .and(outcome),
            );
        });
        (failed, reply)
    })
}

/// Runs `f` inside a savepoint, rolled back if it fails. (`Transaction::savepoint` wants the
/// transaction exclusively; these are the same statements, prepared once.)
fn isolated<T>(
    txn: &Transaction<'_>,
    f: impl FnOnce(&Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    txn.prepare_cached("SAVEPOINT write")?.execute([])?;
    match f(txn) {
        Ok(value) => {
            txn.prepare_cached("RELEASE write")?.execute([])?;
            Ok(value)
        }
        Err(e) => {
            txn.prepare_cached("ROLLBACK TO write")?.execute([])?;
            txn.prepare_cached("RELEASE write")?.execute([])?;
            Err(e)
        }
    }
}

/// The writes waiting to be committed, and the connection that commits them.
///
/// Group commit without a thread hop: a write queues itself and, if no other caller is
/// committing at that moment, becomes the leader and commits everything queued, its own
/// write and any that arrive meanwhile, one transaction per batch, on its own thread. A
/// write that finds a leader at work just waits for its reply; the leader, before it lets
/// go, looks at the queue once more, so no write is left behind. One run after another thus
/// commits on the thread it runs on, with no wake-up of another thread on either side, and
/// many runs at once still share each transaction (and its fsync, with `full` durability).
pub(super) struct Writer {
    conn: Mutex<Connection>,
    queue: Mutex<Vec<Job>>,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
        }
    }

    /// Queues `job` and commits the queue unless another caller is already doing so.
    pub(super) fn submit(&self, job: Job) {
        self.queue.lock().expect("writer queue poisoned").push(job);
        loop {
            let mut conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                // The leader holds the connection and checks the queue before releasing it.
                Err(TryLockError::WouldBlock) => return,
                // A write panicked mid-transaction; its transaction was rolled back as it
                // unwound, so the connection is sound.
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            };
            loop {
                let batch: Vec<Job> = {
                    let mut queue = self.queue.lock().expect("writer queue poisoned");
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                commit_batch(&mut conn, batch);
            }
            drop(conn);
            // A write queued between the last look and the release found the connection
            // taken and left it to the leader: look again.
            if self.queue.lock().expect("writer queue poisoned").is_empty() {
                return;
            }
        }
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<Job>) {
    let mut replies = Vec::with_capacity(batch.len());
    let shared = batch.len() > 1;
    let commit = match conn.transaction() {
        Ok(txn) => {
            let mut failed_alone = false;
            for job in batch {
                let (failed, reply) = job(&txn, shared);
                failed_alone = failed && !shared;
                replies.push(reply);
            }
            if failed_alone {
                // The write reports its own error; nothing of it may be committed.
                txn.rollback().map_err(|e| e.to_string())
            } else {
                txn.commit().map_err(|e| e.to_string())
            }
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

pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")?;
    // A migration that rebuilds a table others reference (drop it, rename its copy in) must
    // run with foreign keys off, which SQLite allows only outside a transaction; they are
    // checked before the migrations commit instead, and back on for every write after.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = apply_migrations(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn apply_migrations(conn: &mut Connection) -> anyhow::Result<()> {
    // IMMEDIATE: two processes opening a new database together must not both migrate it.
    let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = txn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > known {
        // What it wrote may not be what this version reads: refuse rather than misread.
        bail!(
            "the database is at schema version {current}, written by a newer Weir; this Weir knows versions up to {known}: upgrade Weir to open it"
        );
    }
    if current == known {
        return Ok(());
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        txn.execute_batch(sql)
            .with_context(|| format!("migration {version} failed"))?;
        txn.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
    }
    let broken: Option<String> = txn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(table) = broken {
        bail!("migrating left rows of {table} that refer to no row; nothing was changed");
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let conn = open(&dir.path().join("w.db"), Durability::Normal).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap();
        Writer::new(conn)
    }

    fn insert(k: i64, fail: bool) -> impl FnOnce(&Connection) -> anyhow::Result<i64> {
        move |c| {
            c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
            if fail {
                anyhow::bail!("write {k} fails after its insert");
            }
            Ok(k)
        }
    }

    fn keys(w: &Writer) -> Vec<i64> {
        let conn = w.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_failing_write_alone_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let (reply, mut result) = tokio::sync::oneshot::channel();
        w.submit(job(insert(1, true), reply));
        let err = result.try_recv().expect("committed inline").unwrap_err();
        assert!(err.to_string().contains("write 1 fails"), "{err}");
        assert!(keys(&w).is_empty(), "its insert was rolled back");
    }

    #[test]
    fn writes_queued_behind_a_leader_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        // Another caller is committing: these writes queue and return at once.
        let held = w.conn.lock().unwrap();
        let mut results = Vec::new();
        for k in 1..=6 {
            let (reply, result) = tokio::sync::oneshot::channel();
            w.submit(job(insert(k, k == 3), reply));
            results.push(result);
        }
        for result in &mut results {
            assert!(
                result.try_recv().is_err(),
                "nothing commits while the connection is held"
            );
        }
        drop(held);
        // The next write leads: it commits the whole queue, its own write last.
        let (reply, mut last) = tokio::sync::oneshot::channel();
        w.submit(job(insert(7, false), reply));
        assert_eq!(last.try_recv().unwrap().unwrap(), 7);
        for (k, result) in (1..=6).zip(&mut results) {
            let outcome = result.try_recv().expect("answered");
            assert_eq!(outcome.is_err(), k == 3, "write {k}: {outcome:?}");
        }
        assert_eq!(
            keys(&w),
            vec![1, 2, 4, 5, 6, 7],
            "only the failing write was undone"
        );
    }

    #[test]
    fn cached_statements_are_not_parsed_again_for_new_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("q.db"), Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        // The event append: a subquery over the bound run id, which SQLite would re-plan
        // for every new value unless the plan is pinned.
        let sql = "INSERT INTO events (run_id, seq, at_ms, kind, step_id, data)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?1), 0, 'k', NULL, '{}')";
        for run in ["a", "b", "c", "d"] {
            conn.prepare_cached(sql).unwrap().execute([run]).unwrap();
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the cached statement was re-parsed"
        );
    }

    /// The plan SQLite picks for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn runs_are_found_through_their_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("plan.db"), Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        // Unfinished runs, without reading finished ones.
        let unfinished = plan(&conn, super::super::UNFINISHED_RUNS, []);
        assert!(
            unfinished
                .iter()
                .any(|step| step.contains("USING INDEX runs_unfinished")),
            "{unfinished:?}"
        );
        // A run by its idempotency key, through the index of the runs that have one.
        let keyed = plan(&conn, super::super::journal::RUN_BY_IDEMPOTENCY_KEY, ["k"]);
        assert!(
            keyed
                .iter()
                .any(|step| step.contains("USING INDEX runs_by_idempotency_key")),
            "{keyed:?}"
        );
    }

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
        let run: (String, Option<String>, i64) = conn
            .query_row(
                "SELECT status, idempotency_key, lease_epoch FROM runs WHERE id = 'r1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(run, ("running".into(), None, 0), "runs kept its row");
        // Foreign keys are back on once the migrations are done.
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
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
                "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('runs', 'steps', 'attempts', 'events', 'state') AND sql LIKE '%WITHOUT ROWID%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without_rowid, 5);
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, MIGRATIONS.last().unwrap().0);
    }

    #[test]
    fn a_database_from_a_newer_weir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let mut conn = open(&path, Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        let known = MIGRATIONS.last().unwrap().0;
        conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [known + 1])
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the database is at schema version {}, written by a newer Weir; this Weir knows versions up to {known}: upgrade Weir to open it",
                known + 1
            )
        );
        // Opening the store says which file.
        let err = crate::store::SqliteStore::open(&path, Durability::Normal).unwrap_err();
        assert!(format!("{err:#}").contains("new.db"), "{err:#}");
    }

    #[test]
    fn a_new_database_has_small_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |conn: &Connection| -> u32 {
            conn.query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap()
        };
        let mut fresh = open(&dir.path().join("fresh.db"), Durability::Normal).unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(page_size(&fresh), PAGE_SIZE_BYTES);

        let old_path = dir.path().join("old.db");
        let old = Connection::open(&old_path).unwrap();
        old.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER)",
        )
        .unwrap();
        drop(old);
        let reopened = open(&old_path, Durability::Normal).unwrap();
        assert_eq!(page_size(&reopened), 4096);
    }

    #[test]
    fn a_migration_that_would_leave_dangling_rows_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("dangling.db"), Durability::Normal).unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
            .unwrap();
        let before = MIGRATIONS.len() - 1;
        for (version, sql) in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [version])
                .unwrap();
        }
        // A step of a run that is not there (written with foreign keys off).
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO steps (run_id, step_id, position, plugin_digest, status) VALUES ('ghost', 'a', 0, 'p', 'pending');
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "migrating left rows of steps that refer to no row; nothing was changed"
        );
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            version,
            MIGRATIONS[before - 1].0,
            "still at the old version"
        );
    }
}
