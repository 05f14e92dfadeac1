//! Where rollouts live: one row per rollout (its state as a document, with a revision every
//! change bumps) and its event log, changed together in one transaction. A workflow has at
//! most one rollout that is not over, which the schema enforces (a partial unique index), so
//! two hosts starting one at once cannot both succeed.

use async_trait::async_trait;

use crate::rollout::{NewEvent, Rollout, RolloutEvent};

/// The rollout journal.
#[async_trait]
pub trait RolloutJournal: Send + Sync {
    /// Adds a rollout with its first events. `Ok(Err(id))` when the workflow already has a
    /// rollout that is not over: `id` is that one.
    async fn create_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<Result<(), String>>;
    /// Replaces a rollout and appends `events` when its revision is still `rollout.revision
    /// − 1`; false (nothing written) when another writer changed it first.
    async fn update_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<bool>;
    /// One rollout.
    async fn get_rollout(&self, id: &str) -> anyhow::Result<Option<Rollout>>;
    /// Rollouts, newest first: of `workflow` (all when `None`), only those not over when
    /// `active`.
    async fn list_rollouts(
        &self,
        workflow: Option<&str>,
        active: bool,
    ) -> anyhow::Result<Vec<Rollout>>;
    /// The workflow's newest rollout, over or not: the one that decides its new runs.
    async fn latest_rollout(&self, workflow: &str) -> anyhow::Result<Option<Rollout>>;
    /// A rollout's events, in order.
    async fn rollout_events(&self, id: &str) -> anyhow::Result<Vec<RolloutEvent>>;
}

/// The rollout's document as stored.
pub(crate) fn to_doc(rollout: &Rollout) -> anyhow::Result<String> {
    Ok(serde_json::to_string(rollout)?)
}

/// A stored document.
pub(crate) fn from_doc(doc: &str) -> anyhow::Result<Rollout> {
    serde_json::from_str(doc).map_err(|e| anyhow::anyhow!("a stored rollout does not parse: {e}"))
}
