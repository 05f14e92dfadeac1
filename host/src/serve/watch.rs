//! Watching the plugin and workflow directories: changes are debounced (a file being copied
//! in fires many events) and each burst triggers one catalog reload.

use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{Debouncer, new_debouncer};

use super::Catalog;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Stops watching when dropped.
pub(super) struct Watcher {
    _debouncer: Option<Debouncer<notify::RecommendedWatcher>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn start(catalog: Arc<Catalog>) -> anyhow::Result<Watcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let dirs = catalog.dirs();
    let debouncer = if dirs.is_empty() {
        None
    } else {
        let mut debouncer = new_debouncer(
            DEBOUNCE,
            move |events: notify_debouncer_mini::DebounceEventResult| match events {
                Ok(_) => {
                    let _ = tx.send(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching the plugin and workflow directories failed");
                }
            },
        )?;
        for dir in &dirs {
            std::fs::create_dir_all(dir)?;
            debouncer
                .watcher()
                .watch(dir, RecursiveMode::NonRecursive)?;
        }
        Some(debouncer)
    };
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Coalesce bursts that arrived while the last reload ran.
            while rx.try_recv().is_ok() {}
            catalog.reload().await;
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
        task,
    })
}
