//! Human review: when a run parks for a person, and how a person's decision (or a review's
//! timeout) sends it on.

use serde_json::{Value, json};

use super::{Runner, schedule};
use crate::store::{
    AttemptOutcome, AttemptResult, Decided, Decision, DefaultAction, NewReview, ReviewRecord,
    ReviewStatus, StepRecord, now_ms,
};
use crate::workflow::StepDef;

/// The review a finished attempt opens, if any: a `needs-review` failure always does; a
/// success does when the step's `review.when` gate holds (it sees the step's own output).
pub(super) fn review_for(
    def: &StepDef,
    input: &Value,
    result: &AttemptResult,
    records: &[StepRecord],
    run_input: &Value,
) -> Option<NewReview> {
    let policy = def.review.as_ref();
    let (reason, data) = match &result.outcome {
        AttemptOutcome::Failed(failure)
            if failure.get("kind").and_then(Value::as_str) == Some("needs_review") =>
        {
            let message = failure
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the step asked for a review");
            (
                message.to_string(),
                json!({"input": input, "failure": failure}),
            )
        }
        AttemptOutcome::Succeeded {
            output,
            confidence,
            route,
        } => {
            let gate = policy?.when.as_ref()?;
            match gate.eval_bool(run_input, &schedule::steps_view(records)) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    tracing::warn!(step_id = %def.id, "the review gate could not be evaluated, so the result goes to review: {e}");
                }
            }
            (
                format!("review gate: {}", gate.source()),
                json!({"input": input, "output": output, "confidence": confidence, "route": route}),
            )
        }
        AttemptOutcome::Failed(_) => return None,
    };
    let timeout = policy.and_then(|p| p.timeout);
    Some(NewReview {
        step_id: def.id.clone(),
        reason,
        data,
        expires_ms: timeout.map(|t| now_ms() + t.as_millis() as i64),
        default_action: policy.and_then(|p| p.default),
    })
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such review.
    #[error("no review {0}")]
    NotFound(String),
    /// It was already decided, or there is nothing to approve.
    #[error("{0}")]
    Conflict(String),
    /// The edited output does not match the step's output schema.
    #[error("the edited output does not match the output schema of step `{step}`: {}", .violations.join("; "))]
    InvalidOutput {
        /// The step.
        step: String,
        /// Every violation, with its JSON path.
        violations: Vec<String>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl Runner {
    /// Applies a reviewer's decision. The run is then ready to be driven on (or has failed,
    /// on a rejection); drive it with [`Runner::execute`].
    pub async fn decide(
        &self,
        review_id: &str,
        decision: Decision,
        decided: Decided,
    ) -> Result<ReviewRecord, ReviewError> {
        let review = self
            .store
            .get_review(review_id)
            .await?
            .ok_or_else(|| ReviewError::NotFound(review_id.to_string()))?;
        if review.status != ReviewStatus::Pending {
            return Err(ReviewError::Conflict(review.not_pending()));
        }
        if let Decision::Edit(output) = &decision {
            let steps = self.store.steps(&review.run_id).await?;
            if let Some(step) = steps.iter().find(|s| s.step_id == review.step_id) {
                let plugin = self
                    .plugin(&step.plugin_digest, &format!("step {}", step.step_id))
                    .await?;
                if let Some(schema) = plugin.output_schema() {
                    let violations = schema.violations(output);
                    if !violations.is_empty() {
                        return Err(ReviewError::InvalidOutput {
                            step: review.step_id,
                            violations,
                        });
                    }
                }
            }
        }
        let mut decision = decision;
        if let Decision::Edit(output) = &mut decision {
            // A reviewer's edit is a step output like any other: the workflow's `[redact]`
            // applies before it is journaled.
            self.redact_edit(&review, output).await?;
        }
        let decided = self
            .store
            .decide_review(review_id, decision, decided)
            .await
            .map_err(|e| {
                let message = format!("{e:#}");
                if message.contains("already decided")
                    || message.contains("is closed")
                    || message.contains("nothing to approve")
                {
                    ReviewError::Conflict(message)
                } else {
                    ReviewError::Store(e)
                }
            })?;
        self.control.changed(&decided.run_id);
        Ok(decided)
    }

    async fn redact_edit(
        &self,
        review: &ReviewRecord,
        output: &mut Value,
    ) -> Result<(), ReviewError> {
        let Some(run) = self.store.get_run(&review.run_id).await? else {
            return Ok(());
        };
        let workflow =
            crate::registry::load_definition(self.store.as_ref(), &run.workflow, &run.version)
                .await
                .map_err(|e| ReviewError::Store(anyhow::anyhow!("{e}")))?;
        if let Some(redactor) = &workflow.redactor {
            redactor.output(&review.step_id, output);
        }
        Ok(())
    }

    /// Applies the default action of every pending review whose time ran out (an `approve`
    /// of a step that has no output to approve becomes a rejection); returns the decided
    /// reviews. Their runs are then ready to be driven on.
    pub async fn expire_reviews(&self) -> anyhow::Result<Vec<ReviewRecord>> {
        let mut decided = Vec::new();
        for review in self.store.expired_reviews(now_ms()).await? {
            let decision = match review.default_action.as_deref() {
                Some("approve") => Decision::Approve,
                _ => Decision::Reject("the review timed out".to_string()),
            };
            let by = Decided {
                by: "timeout".to_string(),
                note: Some(format!(
                    "no decision before the review's timeout; default action: {}",
                    review
                        .default_action
                        .as_deref()
                        .unwrap_or(DefaultAction::Reject.as_str())
                )),
            };
            let result = match self.decide(&review.id, decision, by.clone()).await {
                Err(ReviewError::Conflict(message)) if message.contains("nothing to approve") => {
                    let reason = "the review timed out, and there was no output to approve";
                    self.decide(&review.id, Decision::Reject(reason.to_string()), by)
                        .await
                }
                other => other,
            };
            match result {
                Ok(record) => decided.push(record),
                // Decided by someone else in the meantime.
                Err(ReviewError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(decided)
    }
}
