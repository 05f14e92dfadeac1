//! Journal records of the model layer: calls, budget scopes and the response cache.

use serde::Serialize;

/// One model call of an attempt, as journaled: what was asked, what came back, what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelCallRecord {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step_id: String,
    /// The attempt.
    pub attempt: u32,
    /// The call's place among the attempt's calls (a fallback alias is a call of its own).
    pub seq: u32,
    /// The workflow name, for cost per workflow version.
    pub workflow: String,
    /// The workflow version.
    pub version: String,
    /// The alias called.
    pub alias: String,
    /// The provider behind it (`None` when the alias is not configured).
    pub provider: Option<String>,
    /// The provider's model name.
    pub model: Option<String>,
    /// The prompt template used, if any.
    pub prompt_id: Option<String>,
    /// sha256 of the template's text: its version.
    pub prompt_hash: Option<String>,
    /// The request as sent (messages rendered, parameters).
    pub request: serde_json::Value,
    /// The response, when there was one.
    pub response: Option<serde_json::Value>,
    /// `ok`, `cached`, or the failure kind (`unavailable`, `budget_exceeded`, ...).
    pub outcome: String,
    /// The failure's message.
    pub error: Option<String>,
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Cost in millionths of a US dollar.
    pub cost_micros: i64,
    /// Wall-clock time of the call, retries and waits included.
    pub latency_us: u64,
    /// Requests sent upstream (0 for a cache hit or a call refused before sending).
    pub upstream_attempts: u32,
    /// When it ended (ms since the Unix epoch).
    pub at_ms: i64,
}

/// A budget a call draws on: a scope key (`run:<id>`, `workflow:<name>:<day>`) and its
/// limit in millionths of a US dollar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetScope {
    /// The key spend is kept under.
    pub key: String,
    /// What it may spend in all.
    pub limit_micros: i64,
}

/// A reservation that did not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "budget {scope} is exhausted: {} spent or reserved of {}, and this call may cost up to {}",
    usd(*.used_micros), usd(*.limit_micros), usd(*.asked_micros)
)]
pub struct BudgetExceeded {
    /// The scope that would overspend.
    pub scope: String,
    /// Its limit.
    pub limit_micros: i64,
    /// What it has spent or reserved already.
    pub used_micros: i64,
    /// What the call asked to reserve.
    pub asked_micros: i64,
}

/// Money for people: `$0.001234`.
pub fn usd(micros: i64) -> String {
    format!("${:.6}", micros as f64 / 1e6)
}

/// What a scope has reserved (calls in flight) and spent (calls settled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Spend {
    /// Reserved by calls not yet settled, in millionths of a dollar.
    pub reserved_micros: i64,
    /// Spent by settled calls, in millionths of a dollar.
    pub spent_micros: i64,
}

/// Releases a reservation and books the real cost, in the same transaction as the call's
/// journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    /// The scopes reserved on.
    pub scopes: Vec<String>,
    /// What was reserved on each.
    pub reserved_micros: i64,
    /// What the call cost.
    pub actual_micros: i64,
}
