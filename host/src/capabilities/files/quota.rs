//! The quota of a read-write directory grant: how much one attempt may add to it.
//!
//! WASI writes reach the directory through many calls (streams, `write`, `set-size`, ...),
//! so the quota is not counted per call: the directory's content is measured before the step
//! starts, then every [`QUOTA_CHECK_INTERVAL`] while it runs and once when it ends. Bytes are
//! apparent sizes (a sparse file counts at its full length) and files are every entry (files,
//! directories, links). When an attempt has added more than its quota allows, it is stopped
//! at its next instruction and fails as `denied` (`files`, the guest directory, `quota ...`).
//! What it wrote stays where it is: the host does not undo writes. Between two checks a step
//! can overshoot by what it writes in one interval.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::DirGrant;

/// Bytes an attempt may add to a read-write directory unless its grant says otherwise.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * 1024 * 1024;
/// Files (and directories and links) an attempt may add unless its grant says otherwise.
pub const DEFAULT_QUOTA_FILES: u64 = 1_000;
/// How often a running attempt's writable directories are measured.
pub const QUOTA_CHECK_INTERVAL: Duration = Duration::from_millis(25);
/// Entries one measurement looks at, at most; a directory with more counts as over quota
/// rather than costing the host an unbounded walk.
const MAX_MEASURED_ENTRIES: u64 = 1_000_000;

/// What an attempt may add to one read-write directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes (apparent file sizes).
    pub bytes: u64,
    /// Entries: files, directories and links.
    pub files: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            bytes: DEFAULT_QUOTA_BYTES,
            files: DEFAULT_QUOTA_FILES,
        }
    }
}

/// A directory's measured content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Usage {
    bytes: u64,
    files: u64,
}

/// A quota an attempt went over: the guest directory and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuotaHit {
    pub(crate) guest: String,
    pub(crate) detail: String,
}

struct Watched {
    host: PathBuf,
    guest: String,
    quota: Quota,
    before: Usage,
}

/// The quotas of one attempt's writable grants, and whether one was exceeded.
#[derive(Clone, Default)]
pub(crate) struct QuotaWatch {
    dirs: Arc<Vec<Watched>>,
    exceeded: Arc<AtomicBool>,
    hit: Arc<Mutex<Option<QuotaHit>>>,
}

impl QuotaWatch {
    /// Measures every writable grant as it is before the attempt starts.
    pub(crate) async fn start(grants: &[DirGrant]) -> Self {
        let watched: Vec<(PathBuf, String, Quota)> = grants
            .iter()
            .filter(|g| g.writable)
            .map(|g| (g.host.clone(), g.guest.clone(), g.quota))
            .collect();
        if watched.is_empty() {
            return Self::default();
        }
        let dirs = tokio::task::spawn_blocking(move || {
            watched
                .into_iter()
                .map(|(host, guest, quota)| Watched {
                    before: measure(&host),
                    host,
                    guest,
                    quota,
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        Self {
            dirs: Arc::new(dirs),
            ..Self::default()
        }
    }

    /// Whether any quota was exceeded; cheap enough for every epoch tick.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// The first quota exceeded, if any.
    pub(crate) fn hit(&self) -> Option<QuotaHit> {
        self.hit.lock().expect("quota poisoned").clone()
    }

    /// Measures every writable directory now; records and flags the first one over quota.
    pub(crate) async fn check(&self) {
        if self.dirs.is_empty() || self.exceeded() {
            return;
        }
        let watch = self.clone();
        let _ = tokio::task::spawn_blocking(move || watch.check_blocking()).await;
    }

    fn check_blocking(&self) {
        for dir in self.dirs.iter() {
            let now = measure(&dir.host);
            let added = Usage {
                bytes: now.bytes.saturating_sub(dir.before.bytes),
                files: now.files.saturating_sub(dir.before.files),
            };
            if added.bytes > dir.quota.bytes || added.files > dir.quota.files {
                let detail = format!(
                    "quota exceeded: the step added {} bytes and {} files to {}; its quota is {} bytes and {} files",
                    added.bytes, added.files, dir.guest, dir.quota.bytes, dir.quota.files
                );
                *self.hit.lock().expect("quota poisoned") = Some(QuotaHit {
                    guest: dir.guest.clone(),
                    detail,
                });
                self.exceeded.store(true, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Checks every [`QUOTA_CHECK_INTERVAL`] until dropped (the attempt's end aborts it).
    pub(crate) fn spawn_checks(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.dirs.is_empty() {
            return None;
        }
        let watch = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(QUOTA_CHECK_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                watch.check().await;
                if watch.exceeded() {
                    return;
                }
            }
        }))
    }
}

/// Apparent bytes of regular files and number of entries under `root`, links not followed.
fn measure(root: &Path) -> Usage {
    let mut usage = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            usage.files += 1;
            if usage.files > MAX_MEASURED_ENTRIES {
                return Usage {
                    bytes: u64::MAX,
                    files: u64::MAX,
                };
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(dir: &Path, quota: Quota) -> DirGrant {
        DirGrant {
            host: dir.to_path_buf(),
            guest: "/out".into(),
            writable: true,
            quota,
        }
    }

    #[tokio::test]
    async fn growth_past_the_quota_is_caught_and_what_was_there_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), vec![0u8; 4096]).unwrap();
        let quota = Quota {
            bytes: 1000,
            files: 2,
        };
        let watch = QuotaWatch::start(&[grant(dir.path(), quota)]).await;
        std::fs::write(dir.path().join("a"), vec![0u8; 900]).unwrap();
        watch.check().await;
        assert!(!watch.exceeded());
        // A sparse file counts at its length.
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(1 << 40).unwrap();
        watch.check().await;
        assert!(watch.exceeded());
        let hit = watch.hit().unwrap();
        assert_eq!(hit.guest, "/out");
        assert!(
            hit.detail.starts_with(
                "quota exceeded: the step added 1099511628676 bytes and 2 files to /out"
            ),
            "{}",
            hit.detail
        );
    }

    #[tokio::test]
    async fn too_many_files_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota {
            bytes: 1 << 20,
            files: 3,
        };
        let watch = QuotaWatch::start(&[grant(dir.path(), quota)]).await;
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for i in 0..3 {
            std::fs::write(dir.path().join("d").join(i.to_string()), "x").unwrap();
        }
        watch.check().await;
        assert!(watch.exceeded());
    }
}
