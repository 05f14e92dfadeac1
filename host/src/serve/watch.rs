//! Watching the plugin and workflow directories: changes are debounced (a file being copied
//! in fires many events) and each burst triggers one catalog reload.

use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;

use super::Catalog;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Stops watching when dropped.
pub(super) struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn start(catalog: Arc<Catalog>) -> anyhow::Result<Watcher> {
    let dirs = catalog.dirs();
    let mut targets = Vec::new();
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        targets.push((dir.clone(), RecursiveMode::NonRecursive));
    }
    let watch = if targets.is_empty() {
        None
    } else {
        Some(crate::watch::watch(&targets, |_| true)?)
    };
    let task = tokio::spawn(async move {
        let Some(mut watch) = watch else {
            return;
        };
        while let Some(first) = watch.changes.recv().await {
            // One reload per burst, however many files it touched.
            crate::watch::settle(first, &mut watch.changes, DEBOUNCE).await;
            catalog.reload().await;
        }
    });
    Ok(Watcher { task })
}
