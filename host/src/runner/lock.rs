//! One process drives a run at a time: a lock file per run, held with an OS file lock that
//! the kernel releases when the process dies, so a crashed host never leaves a run locked.

use std::fs::File;
use std::path::Path;

/// Another process is driving the run.
#[derive(Debug, thiserror::Error)]
#[error("run {0} is being driven by another weir process")]
pub struct Busy(pub String);

pub(crate) struct RunLock {
    _file: File,
}

impl RunLock {
    pub(crate) fn acquire(dir: &Path, run_id: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{run_id}.lock")))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Busy(run_id.to_string()).into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }
}
