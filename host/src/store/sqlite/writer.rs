//! The writer side of the SQLite store: opening connections, and group commit, which runs
//! every queued write of a batch in one transaction.

use std::path::Path;
use std::sync::{Arc, Mutex, TryLockError};

use anyhow::{Context as _, anyhow};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{Durability, MAX_BATCH};

pub(super) fn open(path: &Path, durability: Durability) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open the database {path:?}"))?;
    // First of all: every statement after this one, the pragmas below included, may find
    // another process holding the database's lock, and must wait for it rather than fail.
    conn.busy_timeout(BUSY_TIMEOUT)?;
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
    // Freed space is zeroed, not left holding the old bytes: a run's row is rewritten as it
    // moves on, and without this each old copy of its input would stay in the page's free
    // space, so that a purged payload (`weir runs purge`) could still be read from the file.
    // The pages written are the same; only their unused bytes change.
    conn.pragma_update(None, "secure_delete", "ON")?;
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
    // Room for every statement the journal uses, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// How long a statement waits for another process's lock on the database before it fails
/// with `database is locked`: bounds how long a commit can stall behind other processes
/// sharing the journal (a `weir run` beside a `weir serve`) before the driver backs off.
pub(super) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The page size of a database Weir creates.
pub const PAGE_SIZE_BYTES: u32 = 2048;

/// Why a batch's transaction did not commit: the same for every write in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(super) struct CommitFailed {
    /// SQLite's code, to tell a lock held by another process from the rest.
    pub(super) code: Option<rusqlite::ErrorCode>,
    message: String,
}

impl From<rusqlite::Error> for CommitFailed {
    fn from(e: rusqlite::Error) -> Self {
        Self {
            code: e.sqlite_error_code(),
            message: e.to_string(),
        }
    }
}

/// Whether `cause` is SQLite saying that another connection holds the database (busy or
/// locked, with any extended code), after the busy timeout.
pub(crate) fn is_busy(cause: &(dyn std::error::Error + 'static)) -> bool {
    let code = if let Some(e) = cause.downcast_ref::<rusqlite::Error>() {
        e.sqlite_error_code()
    } else if let Some(e) = cause.downcast_ref::<CommitFailed>() {
        e.code
    } else {
        None
    };
    matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

type Reply = Box<dyn FnOnce(Result<(), CommitFailed>) + Send>;
/// A queued write. It is given its transaction and told whether it shares it with other
/// writes (then it must isolate itself in a savepoint), or given none when the transaction
/// could not begin; it answers whether it failed (a write alone in its transaction that
/// failed has the whole transaction rolled back).
pub(super) type Job = Box<dyn FnOnce(Option<(&Transaction<'_>, bool)>) -> (bool, Reply) + Send>;

/// The job that runs `f` and sends its outcome to `reply` once its transaction has ended.
pub(super) fn job<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    reply: tokio::sync::oneshot::Sender<anyhow::Result<T>>,
) -> Job {
    Box::new(move |txn| {
        // Sharing the transaction, a write takes a savepoint so that if it fails it is
        // rolled back alone, not the batch. Alone, it needs none (the whole transaction is
        // rolled back instead), which saves two statements on every sequential write.
        let outcome = txn.map(|(txn, shared)| if shared { isolated(txn, f) } else { f(txn) });
        let failed = outcome.as_ref().is_some_and(Result::is_err);
        let reply: Reply = Box::new(move |commit: Result<(), CommitFailed>| {
            let _ = reply.send(
                commit
                    .map_err(|e| anyhow::Error::new(e).context("commit failed"))
                    .and_then(|()| {
                        outcome.unwrap_or_else(|| Err(anyhow!("the write did not run")))
                    }),
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
/// committing at that moment, becomes the leader and commits the queue, its own write and
/// any that arrived meanwhile, in one transaction on its own thread. A write that finds a
/// leader at work just waits for its reply; the leader, before it lets go, looks at the
/// queue once more, so no write is left behind. One run after another thus commits on the
/// thread it runs on, with no wake-up of another thread on either side, and many runs at
/// once still share each transaction (and its fsync, with `full` durability).
///
/// A caller leads one batch only. If writes queued up meanwhile, it hands the queue to a
/// thread of its own, which commits until the queue is empty, and returns: under a steady
/// stream of writes the queue may never empty, and a caller that led until it did would
/// keep its task (and the async worker thread under it, with the tasks its commits woke
/// there) from running for as long as the stream lasted.
pub(super) struct Writer {
    conn: Mutex<Connection>,
    queue: Mutex<Vec<Job>>,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Arc<Self> {
        Arc::new(Self {
            conn: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
        })
    }

    /// Queues `job` and commits the queue unless another caller is already doing so.
    pub(super) fn submit(self: &Arc<Self>, job: Job) {
        self.queue.lock().expect("writer queue poisoned").push(job);
        self.lead(Some(1));
    }

    /// Commits queued writes unless another leader holds the connection: at most `batches`
    /// batches before handing what is left to a thread, or until the queue is empty.
    fn lead(self: &Arc<Self>, batches: Option<usize>) {
        loop {
            let mut conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                // The leader holds the connection and checks the queue before releasing it.
                Err(TryLockError::WouldBlock) => return,
                // A write panicked mid-transaction; its transaction was rolled back as it
                // unwound, so the connection is sound.
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            };
            let mut led = 0;
            loop {
                let batch: Vec<Job> = {
                    let mut queue = self.queue.lock().expect("writer queue poisoned");
                    if batches.is_some_and(|most| led >= most) && !queue.is_empty() {
                        drop(queue);
                        drop(conn);
                        let this = self.clone();
                        let spawned = std::thread::Builder::new()
                            .name("weir-sqlite-writer".into())
                            .spawn(move || this.lead(None));
                        if spawned.is_ok() {
                            return;
                        }
                        // No thread to hand over to: lead on here instead.
                        return self.lead(None);
                    }
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                commit_batch(&mut conn, batch);
                led += 1;
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
    // IMMEDIATE: the transaction takes the write lock when it begins, waiting for it under
    // the busy timeout. A deferred one would take it only at its first write, after its
    // reads; if another process committed meanwhile, SQLite cannot upgrade it and fails at
    // once with `database is locked`, without waiting at all.
    let commit = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(txn) => {
            let mut failed_alone = false;
            for job in batch {
                let (failed, reply) = job(Some((&txn, shared)));
                failed_alone = failed && !shared;
                replies.push(reply);
            }
            if failed_alone {
                // The write reports its own error; nothing of it may be committed.
                txn.rollback().map_err(CommitFailed::from)
            } else {
                txn.commit().map_err(CommitFailed::from)
            }
        }
        Err(e) => {
            // The transaction did not begin: every write of the batch is told why.
            for job in batch {
                replies.push(job(None).1);
            }
            Err(CommitFailed::from(e))
        }
    };
    for reply in replies {
        reply(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migrate::migrate;

    fn writer(dir: &tempfile::TempDir) -> Arc<Writer> {
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
    fn a_lock_held_by_another_connection_is_transient_and_a_constraint_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let holder = open(&path, Durability::Normal).unwrap();
        holder
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY); BEGIN IMMEDIATE")
            .unwrap();
        let mut other = open(&path, Durability::Normal).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = other
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map(|_| ())
            .map_err(CommitFailed::from)
            .map_err(|e| anyhow::Error::new(e).context("commit failed"))
            .unwrap_err();
        assert!(crate::store::is_transient(&busy), "{busy:#}");
        holder
            .execute_batch("INSERT INTO t VALUES (1); COMMIT")
            .unwrap();
        let duplicate = other
            .execute("INSERT INTO t VALUES (1)", [])
            .map_err(anyhow::Error::from)
            .unwrap_err();
        assert!(!crate::store::is_transient(&duplicate), "{duplicate:#}");
    }

    /// Writes that keep arriving while a caller commits (here each write queues the next
    /// as it runs, as 32 busy drivers do) do not keep that caller committing: it leads one
    /// batch and returns, and a thread of the writer's commits the rest.
    #[test]
    fn a_caller_leads_one_batch_and_hands_a_busy_queue_over() {
        use std::sync::atomic::{AtomicI64, Ordering};
        const CHAIN: i64 = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let committed = Arc::new(AtomicI64::new(0));
        let (done, finished) = std::sync::mpsc::channel();
        fn link(
            w: Arc<Writer>,
            k: i64,
            committed: Arc<AtomicI64>,
            done: std::sync::mpsc::Sender<()>,
        ) -> Job {
            let (reply, _ignored) = tokio::sync::oneshot::channel();
            job(
                move |c| {
                    c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                    committed.fetch_add(1, Ordering::SeqCst);
                    if k < CHAIN {
                        w.submit(link(w.clone(), k + 1, committed, done));
                    } else {
                        let _ = done.send(());
                    }
                    Ok(k)
                },
                reply,
            )
        }
        w.submit(link(w.clone(), 0, committed.clone(), done));
        let when_returned = committed.load(Ordering::SeqCst);
        assert!(
            when_returned < CHAIN / 2,
            "the caller committed {when_returned} of {CHAIN} writes before it returned"
        );
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the rest was committed");
        assert_eq!(keys(&w).len() as i64, CHAIN + 1);
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
        // A step's latest change: a range of keys bound to new values on every use, with a
        // subquery over bound values, which SQLite would re-plan for every new value unless
        // the plan is pinned.
        let sql = "SELECT kind FROM events
             WHERE key > ?1 + COALESCE((SELECT as_of_seq FROM steps WHERE run_id = ?3 AND step_id = 'a'), 0)
               AND key < ?2 ORDER BY key DESC LIMIT 1";
        for run in 1..=4i64 {
            conn.prepare_cached(sql)
                .unwrap()
                .query([
                    (run << 24).to_string(),
                    ((run + 1) << 24).to_string(),
                    format!("r{run}"),
                ])
                .unwrap()
                .next()
                .unwrap();
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the cached statement was re-parsed"
        );
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
}
