//! Controlling runs from outside their driver: cancelling one, draining every driver for a
//! graceful shutdown, and telling watchers (server-sent events, waiting requests) that a run
//! changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::{Notify, broadcast, watch};

use crate::store::{RunRecord, RunStatus, Store};

/// Changes a watcher may miss before it is told it lagged (it then re-reads the journal).
const CHANGE_BACKLOG: usize = 1024;

/// Shared by every clone of a runner.
#[derive(Clone)]
pub(crate) struct Control {
    /// Run ids, each sent after a change to that run is committed.
    changes: broadcast::Sender<String>,
    /// True once draining: drivers start no new attempt and return when theirs finish.
    drain: Arc<watch::Sender<bool>>,
    /// The cancel signal of every run this process is driving.
    cancels: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            drain: Arc::new(watch::channel(false).0),
            cancels: Arc::default(),
        }
    }
}

/// Why a run could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such run.
    #[error("no run {0}")]
    NotFound(String),
    /// The run had already ended.
    #[error("run {id} has already ended: it {status}")]
    Ended {
        /// The run.
        id: String,
        /// How it ended.
        status: RunStatus,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl Control {
    pub(crate) fn changed(&self, run_id: &str) {
        let _ = self.changes.send(run_id.to_string());
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub(crate) fn drain(&self) {
        self.drain.send_replace(true);
    }

    pub(crate) fn draining(&self) -> bool {
        *self.drain.borrow()
    }

    /// Registers the driver of `run_id`; the signal fires when the run is cancelled.
    pub(crate) fn driving(&self, run_id: &str) -> DrivingGuard {
        let notify = Arc::new(Notify::new());
        self.cancels
            .lock()
            .expect("cancel registry poisoned")
            .insert(run_id.to_string(), notify.clone());
        DrivingGuard {
            control: self.clone(),
            run_id: run_id.to_string(),
            notify,
        }
    }

    /// Ends a run as `cancelled` in the journal and stops its driver if it is in this process
    /// (a driver elsewhere stops at its next journal write).
    pub(crate) async fn cancel(
        &self,
        store: &dyn Store,
        run_id: &str,
        reason: &str,
    ) -> Result<RunRecord, CancelError> {
        let run = store
            .get_run(run_id)
            .await?
            .ok_or_else(|| CancelError::NotFound(run_id.to_string()))?;
        if run.status.is_final() {
            return Err(CancelError::Ended {
                id: run.id,
                status: run.status,
            });
        }
        if let Err(e) = store
            .set_run_status(
                run_id,
                RunStatus::Cancelled,
                None,
                Some(json!({"reason": reason})),
            )
            .await
        {
            // It ended between the read and the write.
            let run = store.get_run(run_id).await?.ok_or(CancelError::Store(e))?;
            return Err(CancelError::Ended {
                id: run.id,
                status: run.status,
            });
        }
        if let Some(notify) = self
            .cancels
            .lock()
            .expect("cancel registry poisoned")
            .get(run_id)
        {
            notify.notify_one();
        }
        self.changed(run_id);
        store
            .get_run(run_id)
            .await?
            .ok_or_else(|| CancelError::NotFound(run_id.to_string()))
    }
}

/// Held by a run's driver; unregisters its cancel signal when dropped.
pub(crate) struct DrivingGuard {
    control: Control,
    run_id: String,
    pub(crate) notify: Arc<Notify>,
}

impl Drop for DrivingGuard {
    fn drop(&mut self) {
        self.control
            .cancels
            .lock()
            .expect("cancel registry poisoned")
            .remove(&self.run_id);
    }
}
