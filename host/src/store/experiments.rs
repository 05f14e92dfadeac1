//! Where experiments live: every `weir eval` is journaled with its summary (for listing)
//! and the whole experiment, cases included (for reading it again, or a dashboard).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An experiment as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExperimentRecord {
    /// Experiment id (a UUIDv7).
    pub id: String,
    /// The workflow whose recorded runs were the cases.
    pub workflow: String,
    /// What ran in place of the recorded version.
    pub candidate: String,
    /// When it was journaled (ms since the Unix epoch).
    pub created_ms: i64,
    /// Its aggregates (the `summary` of `weir eval --json`).
    pub summary: serde_json::Value,
}

/// The experiment journal.
#[async_trait]
pub trait ExperimentJournal: Send + Sync {
    /// Journals an experiment: `record` for listing, `experiment` the whole of it.
    async fn save_experiment(
        &self,
        record: &ExperimentRecord,
        experiment: &serde_json::Value,
    ) -> anyhow::Result<()>;
    /// Experiments, newest first: of `workflow` when given, at most `limit`.
    async fn list_experiments(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ExperimentRecord>>;
    /// One whole experiment, as journaled.
    async fn get_experiment(&self, id: &str) -> anyhow::Result<Option<serde_json::Value>>;
}
