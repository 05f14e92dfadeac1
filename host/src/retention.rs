//! Retention: each workflow's `[retention] payloads` applied to the journal. A run that ended
//! longer ago than its workflow keeps payloads loses them (see [`Store::purge_payloads`]);
//! its metadata and costs stay. `weir serve` applies it at start and then every [`SWEEP`];
//! `weir runs purge` on demand.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::store::{Store, now_ms};

/// How often `weir serve` applies retention.
pub const SWEEP: Duration = Duration::from_secs(15 * 60);

/// Runs purged in one transaction: bounds how long a purge holds the journal's write lock.
const BATCH: usize = 200;

/// Each workflow's retention, by name: the one its highest registered version declares.
pub async fn policies(store: &dyn Store) -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut highest: BTreeMap<String, semver::Version> = BTreeMap::new();
    for wf in store.list_workflows().await? {
        let Ok(version) = semver::Version::parse(&wf.version) else {
            continue;
        };
        let slot = highest.entry(wf.name).or_insert_with(|| version.clone());
        if version > *slot {
            *slot = version;
        }
    }
    let mut policies = BTreeMap::new();
    for (name, version) in highest {
        match crate::registry::load_definition(store, &name, &version.to_string()).await {
            Ok(wf) => {
                if let Some(keep) = wf.retention {
                    policies.insert(name, keep);
                }
            }
            Err(e) => {
                tracing::warn!(workflow = %name, error = %e, "cannot read a workflow's retention");
            }
        }
    }
    Ok(policies)
}

/// Purges every ended run of `workflow` (all when `None`) older than `keep`; returns the
/// runs purged.
pub async fn purge_older_than(
    store: &dyn Store,
    workflow: Option<&str>,
    keep: Duration,
) -> anyhow::Result<Vec<String>> {
    let before = now_ms() - keep.as_millis() as i64;
    let mut purged = Vec::new();
    loop {
        let batch = store.purge_payloads(workflow, before, BATCH).await?;
        let done = batch.len() < BATCH;
        purged.extend(batch);
        if done {
            return Ok(purged);
        }
    }
}

/// Applies every workflow's retention; returns the runs purged per workflow.
pub async fn apply(store: &dyn Store) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    apply_policies(store, &policies(store).await?).await
}

/// Applies `policies` (from [`policies`]); returns the runs purged per workflow.
pub async fn apply_policies(
    store: &dyn Store,
    policies: &BTreeMap<String, Duration>,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut purged = BTreeMap::new();
    for (workflow, &keep) in policies {
        let runs = purge_older_than(store, Some(workflow), keep).await?;
        if !runs.is_empty() {
            purged.insert(workflow.clone(), runs);
        }
    }
    Ok(purged)
}
