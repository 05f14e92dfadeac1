//! Human review records: a run parked for a person, and the person's decision.

use serde::Serialize;
use serde_json::Value;

status_enum! {
    /// Where a review is: `pending` until someone (or its timeout) decides.
    ReviewStatus ("review status") {
        /// Waiting for a decision.
        Pending = "pending",
        /// The step's output stands; the run goes on.
        Approved = "approved",
        /// The reviewer replaced the step's output; the run goes on with it.
        Edited = "edited",
        /// The run failed on the reviewer's word.
        Rejected = "rejected",
        /// The run ended without a decision (it was cancelled): nothing is left to decide.
        Closed = "closed",
    }
}

/// What happens to a review nobody decides in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// Approve it.
    Approve,
    /// Reject it.
    Reject,
}

impl DefaultAction {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// A review to open when a run parks.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// The step that asked for it (or whose confidence gate fired).
    pub step_id: String,
    /// Why, for the reviewer.
    pub reason: String,
    /// What the reviewer needs: the step's input, its output or failure.
    pub data: Value,
    /// When the default action applies (ms since the Unix epoch), if ever.
    pub expires_ms: Option<i64>,
    /// What happens then.
    pub default_action: Option<DefaultAction>,
}

/// A review as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    /// Review id.
    pub id: String,
    /// The parked run.
    pub run_id: String,
    /// The step under review.
    pub step_id: String,
    /// Why it was opened.
    pub reason: String,
    /// What the reviewer needs.
    pub data: Value,
    /// Where it is.
    pub status: ReviewStatus,
    /// Opened (ms since the Unix epoch).
    pub created_ms: i64,
    /// When the default action applies.
    pub expires_ms: Option<i64>,
    /// `approve` or `reject`, applied on expiry.
    pub default_action: Option<String>,
    /// Who decided (`timeout` when the default action applied).
    pub decided_by: Option<String>,
    /// When.
    pub decided_ms: Option<i64>,
    /// The reviewer's note or rejection reason.
    pub note: Option<String>,
    /// The step's output before the decision.
    pub before: Option<Value>,
    /// The step's output after it.
    pub after: Option<Value>,
}

impl ReviewRecord {
    /// Why a decision on this review (no longer pending) is refused.
    pub fn not_pending(&self) -> String {
        match self.status {
            ReviewStatus::Closed => format!(
                "review {} is closed: {}",
                self.id,
                self.note.as_deref().unwrap_or("its run has ended")
            ),
            status => format!(
                "review {} was already decided: {status} by {}",
                self.id,
                self.decided_by.as_deref().unwrap_or("someone")
            ),
        }
    }
}

/// The note a review closed by its run's end carries: how the run ended, and why.
pub(crate) fn closed_note(status: super::RunStatus, failure: Option<&Value>) -> String {
    let why = failure
        .and_then(|f| f.get("reason").or_else(|| f.pointer("/failure/message")))
        .and_then(Value::as_str);
    match why {
        Some(why) => format!("its run was {status} without a decision ({why})"),
        None => format!("its run was {status} without a decision"),
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone)]
pub enum Decision {
    /// The step's output stands.
    Approve,
    /// Replace the step's output.
    Edit(Value),
    /// Fail the run, with the reason.
    Reject(String),
}

impl Decision {
    /// What the decision does to the run, the same on every backend: a rejection fails it
    /// (with the failure to record); otherwise it goes back to `running` once no review of
    /// it is pending (`still_pending`).
    pub(crate) fn run_change(
        &self,
        step_id: &str,
        by: &str,
        still_pending: i64,
    ) -> Option<(super::RunStatus, Option<Value>)> {
        match self {
            Decision::Reject(reason) => Some((
                super::RunStatus::Failed,
                Some(
                    serde_json::json!({"step": step_id, "failure": {"kind": "review_rejected", "message": format!("rejected by {by}: {reason}")}}),
                ),
            )),
            _ if still_pending == 0 => Some((super::RunStatus::Running, None)),
            _ => None,
        }
    }
}

/// Who decided, and their note.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The reviewer (a user name, a token's owner, `timeout`).
    pub by: String,
    /// A note, kept in the audit record.
    pub note: Option<String>,
}
