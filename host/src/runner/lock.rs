//! One process drives a run at a time: while it does, it holds a lock on one byte of a shared
//! lock file (`runs.lock` in the lock directory), at an offset taken from the run id's
//! sha256. The kernel releases a dead process's locks, so a crashed host never leaves a run
//! locked, and taking a lock costs one `fcntl`, with no file to create or remove per run.
//!
//! On Linux the locks are open-file-description locks (`F_OFD_SETLK`), which belong to this
//! process's one open handle on the file. Elsewhere they are POSIX record locks, which
//! belong to the process: sound while a process has one runner per lock directory, since
//! closing any handle on the file drops all of the process's locks on it. A process never
//! takes one run twice either: the runs it holds are also kept in a set, and a second
//! driver of one of them is refused.

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use sha2::Digest as _;

/// Another process (or another driver in this one) is driving the run.
#[derive(Debug, thiserror::Error)]
#[error("run {0} is being driven by another weir process")]
pub struct Busy(pub String);

/// The locks of one process on the runs it drives.
pub(crate) struct RunLocks {
    dir: PathBuf,
    /// The shared lock file, opened on first use and kept open.
    file: OnceLock<File>,
    /// The runs this process holds.
    held: Mutex<HashSet<String>>,
}

/// A run held by this process until the value is dropped.
pub(crate) struct RunLock {
    locks: Arc<RunLocks>,
    run_id: String,
    offset: i64,
}

impl RunLocks {
    /// Locks kept in `dir` (created when the first run is locked).
    pub(crate) fn new(dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            dir,
            file: OnceLock::new(),
            held: Mutex::default(),
        })
    }

    /// Takes `run_id`, or fails with [`Busy`] when another driver holds it.
    pub(crate) fn acquire(self: &Arc<Self>, run_id: &str) -> anyhow::Result<RunLock> {
        if !self.held().insert(run_id.to_string()) {
            return Err(Busy(run_id.to_string()).into());
        }
        let offset = offset(run_id);
        let taken = self
            .file()
            .and_then(|file| set(file, offset, true).context("failed to lock the run"));
        match taken {
            Ok(true) => Ok(RunLock {
                locks: self.clone(),
                run_id: run_id.to_string(),
                offset,
            }),
            Ok(false) => {
                self.held().remove(run_id);
                Err(Busy(run_id.to_string()).into())
            }
            Err(e) => {
                self.held().remove(run_id);
                Err(e)
            }
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().expect("run lock set poisoned")
    }

    fn file(&self) -> anyhow::Result<&File> {
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("failed to create the lock directory {:?}", self.dir))?;
        let path = self.dir.join("runs.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open the lock file {path:?}"))?;
        // Another thread may have opened it meanwhile: one handle is kept, the other closed
        // before it ever held a lock.
        Ok(self.file.get_or_init(|| file))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(file) = self.locks.file.get()
            && let Err(e) = set(file, self.offset, false)
        {
            tracing::warn!(run_id = %self.run_id, error = %e, "could not release a run lock; it goes when this process exits");
        }
        self.locks.held().remove(&self.run_id);
    }
}

/// The byte a run's lock covers: 62 bits of its id's sha256, so two runs in flight share
/// one only by a hash collision (which makes one wait for the other, never both run).
fn offset(run_id: &str) -> i64 {
    let digest = sha2::Sha256::digest(run_id.as_bytes());
    let bytes: [u8; 8] = digest[..8].try_into().expect("a sha256 has 32 bytes");
    (u64::from_le_bytes(bytes) >> 2) as i64
}

/// Takes (`lock`) or releases the write lock on byte `offset` without waiting; false when
/// another holder has it.
fn set(file: &File, offset: i64, lock: bool) -> std::io::Result<bool> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let range = libc::flock {
        l_type: if lock { libc::F_WRLCK } else { libc::F_UNLCK } as _,
        l_whence: libc::SEEK_SET as _,
        l_start: offset as _,
        l_len: 1,
        l_pid: 0,
    };
    #[cfg(target_os = "linux")]
    let command = FcntlArg::F_OFD_SETLK(&range);
    #[cfg(not(target_os = "linux"))]
    let command = FcntlArg::F_SETLK(&range);
    match fcntl(file, command) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_run_has_one_driver_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let here = RunLocks::new(dir.path().to_path_buf());
        // Another process: a second handle on the same file (locks on Linux belong to it).
        let there = RunLocks::new(dir.path().to_path_buf());

        let held = here.acquire("run-a").unwrap();
        let busy = |locks: &Arc<RunLocks>, id: &str| {
            locks
                .acquire(id)
                .err()
                .and_then(|e| e.downcast::<Busy>().ok())
                .map(|b| b.0)
        };
        assert_eq!(busy(&here, "run-a").as_deref(), Some("run-a"), "twice here");
        assert_eq!(
            busy(&there, "run-a").as_deref(),
            Some("run-a"),
            "from there"
        );
        // Other runs are free.
        let other = there.acquire("run-b").unwrap();
        drop(held);
        // Released: the other side takes it at once.
        let taken = there.acquire("run-a").unwrap();
        assert_eq!(busy(&here, "run-b").as_deref(), Some("run-b"));
        drop((other, taken));
        here.acquire("run-b").unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            ["runs.lock"],
            "one file, whatever the number of runs"
        );
    }
}
