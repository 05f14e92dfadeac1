//! File watching for the reload loops (`weir serve`, `weir dev`, `weir build --watch`).
//!
//! Only changes to what a file holds or is called count. On Linux, reading a file is an
//! event too (inotify reports opens and closes), and every one of these loops reads what it
//! watches (hashing plugins, building sources): counting reads would wake the loop forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Stops watching when dropped.
pub struct Watch {
    _watcher: RecommendedWatcher,
    /// Changed paths, as they happen; see [`settle`] to take a burst at once.
    pub changes: mpsc::UnboundedReceiver<PathBuf>,
}

fn changes_content(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Any
            | EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Watches `targets` and reports the changed paths that `keep` accepts.
pub fn watch(
    targets: &[(PathBuf, RecursiveMode)],
    keep: impl Fn(&Path) -> bool + Send + 'static,
) -> anyhow::Result<Watch> {
    let (tx, changes) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if changes_content(&event.kind) => {
                for path in event.paths {
                    if keep(&path) {
                        let _ = tx.send(path);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching files failed"),
        })?;
    for (path, mode) in targets {
        watcher.watch(path, *mode)?;
    }
    Ok(Watch {
        _watcher: watcher,
        changes,
    })
}

/// Waits until no change has arrived for `quiet` (an editor's save or a file being copied
/// in is several events) and returns the burst's paths, `first` included, each once.
pub async fn settle(
    first: PathBuf,
    changes: &mut mpsc::UnboundedReceiver<PathBuf>,
    quiet: Duration,
) -> Vec<PathBuf> {
    let mut burst = vec![first];
    while let Ok(Some(path)) = tokio::time::timeout(quiet, changes.recv()).await {
        if !burst.contains(&path) {
            burst.push(path);
        }
    }
    burst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reading_is_not_a_change_and_writing_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugin.wasm");
        std::fs::write(&file, b"one").unwrap();
        let mut watch = watch(
            &[(dir.path().to_path_buf(), RecursiveMode::NonRecursive)],
            |_| true,
        )
        .unwrap();
        for _ in 0..5 {
            assert_eq!(std::fs::read(&file).unwrap(), b"one");
        }
        let quiet = tokio::time::timeout(Duration::from_millis(300), watch.changes.recv()).await;
        assert!(quiet.is_err(), "a read was reported: {quiet:?}");
        std::fs::write(&file, b"two").unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(5), watch.changes.recv())
            .await
            .expect("a write is reported")
            .unwrap();
        assert!(changed.ends_with("plugin.wasm"), "{}", changed.display());
    }
}
