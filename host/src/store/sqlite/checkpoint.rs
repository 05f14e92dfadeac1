//! Checkpointing the WAL off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that
//! commit copies every page the WAL holds back into the database file and fsyncs both files,
//! which on a virtual disk takes milliseconds, and the step whose result happened to commit
//! then waits for all of it. Here a thread of its own copies the WAL into the database in the
//! background (`PASSIVE`: it never blocks the writer or a reader), so the commits do not pay
//! for it. The writer keeps a high automatic threshold only as a bound on the WAL's size: a
//! WAL can start over from its beginning only after a checkpoint that copied all of it ends
//! before the next write, which a background pass racing a busy writer rarely manages.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use super::Durability;

/// How often the background pass runs. A pass with nothing to copy costs a few µs.
const INTERVAL: Duration = Duration::from_millis(20);

/// WAL pages after which the writer checkpoints inline (4 KiB each: 32 MiB). The background
/// pass normally keeps the WAL copied long before that, so this checkpoint finds little
/// left to do; it is what lets the WAL start over.
pub(super) const WRITER_THRESHOLD_PAGES: u32 = 8192;

/// Once the WAL has started over, its file is truncated back to this size.
pub(super) const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// Stops the background pass when dropped (with the store).
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Starts the background pass over the database at `path`.
pub(super) fn spawn(path: &Path, durability: Durability) -> anyhow::Result<Checkpointer> {
    let conn = super::writer::open(path, durability)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("weir-sqlite-checkpoint".into())
        .spawn(move || run(&conn, &stopped))?;
    Ok(Checkpointer { _stop: stop })
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        // Busy (another process checkpointing) or a failure: the next pass tries again, and
        // the writer's own threshold still bounds the WAL.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "background WAL checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_wal_is_copied_into_the_database_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let conn = super::super::writer::open(&path, Durability::Normal).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        // About 50 pages: far below the writer's own threshold, so without the background
        // pass they would stay in the WAL.
        for k in 0..50 {
            conn.execute("INSERT INTO t VALUES (?1, zeroblob(4000))", [k])
                .unwrap();
        }
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(size() < 50 * 4096, "nothing was checkpointed yet");
        let _background = spawn(&path, Durability::Normal).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while size() < 50 * 4096 {
            assert!(
                Instant::now() < deadline,
                "the database file still has {} bytes",
                size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
