//! One process drives a run at a time: a lock file per run, held with an OS file lock that
//! the kernel releases when the process dies, so a crashed host never leaves a run locked.
//!
//! The file is removed once the run has ended, so the lock directory holds only the runs
//! still in flight. Removal races with another process opening the file to lock it; that
//! process then checks, after locking, that the path still names the file it locked, and
//! starts over if it does not.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Another process is driving the run.
#[derive(Debug, thiserror::Error)]
#[error("run {0} is being driven by another weir process")]
pub struct Busy(pub String);

pub(crate) struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    pub(crate) fn acquire(dir: &Path, run_id: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{run_id}.lock"));
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Busy(run_id.to_string()).into());
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
            let held = file.metadata()?;
            let current = std::fs::metadata(&path).ok();
            if current.is_some_and(|c| c.dev() == held.dev() && c.ino() == held.ino()) {
                return Ok(Self { file, path });
            }
            // The previous holder removed the file after we opened it: lock the new one.
        }
    }

    /// Removes the lock file, still holding the lock: for a run that has ended, which no
    /// one needs to lock again.
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remove a run lock file");
        }
        drop(self.file);
    }
}
