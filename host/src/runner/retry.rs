//! Driving a run again after the journal failed under it. A store that is busy (another
//! process holds the SQLite database past the busy timeout) or briefly unreachable (a
//! PostgreSQL failover) must not leave a run `running` with nobody driving it: the driver
//! backs off, reads the run back from the journal and carries on from there, as a resumed
//! run does. What the journal refused for good (a constraint, a full disk) ends the drive.

use std::sync::Arc;
use std::time::Duration;

use super::{Runner, drive};
use crate::store::{Lease, RunRecord, RunStatus, is_transient};
use crate::workflow::Workflow;

/// The first wait after a transient store error; each further one doubles.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two tries: how late a driver notices that the store is back.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Waits before the next try at driving a run: doubling, capped, with jitter so that the
/// drivers a busy store turned away do not all come back at the same moment.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }

    fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        // Between half and all of the base.
        base / 2 + base.mul_f64(fastrand::f64() / 2.0)
    }
}

impl Runner {
    /// Drives `run` until it ends, waits for review, or this runner drains; `failed` is the
    /// error a driver of it just stopped on, if any. A transient store error is waited out
    /// with backoff and the run, read back, is driven again from the journal; any other
    /// error is returned.
    pub(super) async fn drive_retrying(
        &self,
        run: &RunRecord,
        workflow: Arc<Workflow>,
        lease: Option<Lease>,
        mut failed: Option<anyhow::Error>,
    ) -> anyhow::Result<Option<RunRecord>> {
        let mut backoff = Backoff::new();
        let mut reread: Option<RunRecord> = None;
        loop {
            if let Some(e) = failed.take() {
                if !is_transient(&e) || self.draining() {
                    return Err(e);
                }
                let wait = backoff.wait();
                tracing::warn!(run_id = %run.id, error = %format!("{e:#}"), retry_in_ms = wait.as_millis() as u64, "the journal failed under the run's driver; driving it again from the journal");
                tokio::time::sleep(wait).await;
                match self.store.get_run(&run.id).await {
                    Ok(Some(now))
                        if now.status.is_final() || now.status == RunStatus::AwaitingReview =>
                    {
                        return Ok(Some(now));
                    }
                    Ok(Some(now)) => reread = Some(now),
                    Ok(None) => anyhow::bail!("no run {}", run.id),
                    Err(e) => {
                        failed = Some(e);
                        continue;
                    }
                }
            }
            let current = reread.as_ref().unwrap_or(run);
            let driven =
                match drive::Drive::new(self, current, workflow.clone(), lease.clone()).await {
                    Ok(drive) => drive.run().await,
                    Err(e) => Err(e),
                };
            match driven {
                Ok(ended) => return Ok(ended),
                Err(e) => failed = Some(e),
            }
        }
    }
}
