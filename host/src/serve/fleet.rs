//! Sharing runs with other hosts on one database: each host claims runs that nobody holds
//! and drives them under its lease. Orphans (runs of hosts whose leases ran out because they
//! died or were cut off, or that gave them up draining) are claimed first and go ahead of
//! this host's own queue, however long it is; runs no host has started yet are claimed only
//! as idle workers allow.

use std::sync::Arc;
use std::time::Duration;

use super::queue::Queue;
use crate::runner::Fleet;
use crate::store::Store;

/// Most runs claimed in one scan, so one host does not take a whole backlog at once.
const CLAIM_BATCH: usize = 16;

/// Claims orphaned runs while the queue has room, forever.
pub(super) async fn take_over(store: Arc<dyn Store>, queue: Queue, fleet: Fleet) {
    let lease_ms = fleet.lease.as_millis() as i64;
    // Often enough that a dead host's runs move within about a lease, rarely enough that
    // idle hosts do not load the database.
    let scan = (fleet.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(scan);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Orphans first, busy or not: a dead host's runs were submitted before this host's
        // backlog and have waited a lease already. A batch at a time, once the last one has
        // gone to workers, so claimed runs do not sit on their leases in the lane.
        if queue.orphans_waiting() == 0 {
            let limit = queue.workers().min(CLAIM_BATCH);
            match store.claim_abandoned(&fleet.owner, lease_ms, limit).await {
                Ok(claimed) => {
                    for lease in claimed {
                        tracing::info!(run_id = %lease.run_id, epoch = lease.epoch, "took over a run");
                        queue.enqueue_orphan(lease);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "claiming orphaned runs failed");
                }
            }
        }
        // Only as many as idle workers can start: a claimed run waiting in the queue would
        // let its lease run out and bounce to another host.
        let room = queue.idle_workers().min(CLAIM_BATCH);
        if room == 0 {
            continue;
        }
        let claimed = match store.claim_orphans(&fleet.owner, lease_ms, room, 0).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "claiming runs failed");
                continue;
            }
        };
        for lease in claimed {
            match queue.try_admit() {
                Some(admission) => {
                    tracing::info!(run_id = %lease.run_id, epoch = lease.epoch, "claimed a run");
                    queue.enqueue_leased(admission, lease);
                }
                None => {
                    let _ = store.release_lease(&lease).await;
                }
            }
        }
    }
}
