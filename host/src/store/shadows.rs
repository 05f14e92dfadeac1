//! Where shadow results live: one row per shadowed step of a run, with its outcome, what
//! differed, and what its live model calls cost (which is how a shadow's daily budget is
//! kept: the day's rows are summed before the next shadow runs).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One shadow's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowResult {
    /// Result id (a UUIDv7).
    pub id: String,
    /// The live run.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its version.
    pub version: String,
    /// The shadowed step.
    pub step_id: String,
    /// The candidate plugin's sha256.
    pub candidate: String,
    /// `identical`, `route_changed`, `output_changed`, `error` (the candidate failed, trapped
    /// or could not run), or `skipped` (the day's shadow budget was spent).
    pub outcome: String,
    /// The step live and in the shadow (`{status, output, route, confidence}` each), the
    /// calls answered from the record and made live, and any error.
    pub detail: serde_json::Value,
    /// What the shadow's live model calls cost, in millionths of a dollar.
    pub cost_micros: i64,
    /// When it was recorded (ms since the Unix epoch).
    pub at_ms: i64,
}

/// The shadow journal.
#[async_trait]
pub trait ShadowJournal: Send + Sync {
    /// Records a result.
    async fn record_shadow(&self, result: &ShadowResult) -> anyhow::Result<()>;
    /// Results, newest first: of `workflow` and of `run_id` when given, at most `limit`.
    async fn shadow_results(
        &self,
        workflow: Option<&str>,
        run_id: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ShadowResult>>;
    /// What the shadows of `workflow`'s step `step_id` spent since `since_ms`, in millionths
    /// of a dollar.
    async fn shadow_spend(
        &self,
        workflow: &str,
        step_id: &str,
        since_ms: i64,
    ) -> anyhow::Result<i64>;
}

/// The columns, in the order both backends read them.
pub(crate) const COLUMNS: &str =
    "id, run_id, workflow, version, step_id, candidate, outcome, detail, cost_micros, at_ms";
