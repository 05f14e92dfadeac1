//! The `model` capability: chat completions by alias, through the host's model service.
//!
//! Deny by default: a step calls only the aliases its workflow grants it
//! (`grants.models`), and a refused alias is recorded as a denial like a refused host. The
//! provider, its URL and its key stay on the host side.

use tracing::Instrument as _;

use crate::attempt::AttemptState;
use crate::bindings::weir::step::model::{self as wit, Host};
use crate::capabilities::record_denial;
use crate::model::{CallScope, Message, ModelCall, ModelFailure, Models};

/// What an attempt needs to call models: the host's service and the call's scope.
#[derive(Clone)]
pub struct ModelAccess {
    /// The host's model service.
    pub models: Models,
    /// The run, step, grants, policies, budgets and prompts that apply.
    pub scope: CallScope,
}

impl std::fmt::Debug for ModelAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelAccess")
            .field("granted", &self.scope.granted)
            .finish_non_exhaustive()
    }
}

/// The WIT error as the host's typed failure.
pub(crate) fn from_wit(error: wit::ModelError) -> ModelFailure {
    use wit::ModelError as E;
    match error {
        E::Denied(m) => ModelFailure::Denied(m),
        E::NotConfigured(m) => ModelFailure::NotConfigured(m),
        E::Unavailable(m) => ModelFailure::Unavailable(m),
        E::RateLimited(m) => ModelFailure::RateLimited(m),
        E::BudgetExceeded(m) => ModelFailure::BudgetExceeded(m),
        E::DeadlineExceeded(m) => ModelFailure::DeadlineExceeded(m),
        E::Rejected(m) => ModelFailure::Rejected(m),
    }
}

fn to_wit(failure: ModelFailure) -> wit::ModelError {
    use wit::ModelError as E;
    match failure {
        ModelFailure::Denied(m) => E::Denied(m),
        ModelFailure::NotConfigured(m) => E::NotConfigured(m),
        ModelFailure::Unavailable(m) => E::Unavailable(m),
        ModelFailure::RateLimited(m) => E::RateLimited(m),
        ModelFailure::BudgetExceeded(m) => E::BudgetExceeded(m),
        ModelFailure::DeadlineExceeded(m) => E::DeadlineExceeded(m),
        ModelFailure::Rejected(m) => E::Rejected(m),
    }
}

impl Host for AttemptState {
    async fn complete(&mut self, request: wit::Request) -> Result<wit::Response, wit::ModelError> {
        let Some(access) = self.model.clone() else {
            let failure = ModelFailure::Denied(format!(
                "model alias `{}` is not granted: this step has no model grants",
                request.alias
            ));
            record_denial(
                &self.denials,
                "model",
                request.alias.clone(),
                "no model grants",
            );
            return Err(to_wit(failure));
        };
        let prompt = match request.prompt {
            None => None,
            Some(p) => match serde_json::from_str::<serde_json::Value>(&p.variables) {
                Ok(vars) if vars.is_object() => Some((p.id, vars)),
                Ok(_) | Err(_) => {
                    return Err(wit::ModelError::Rejected(format!(
                        "the variables of prompt `{}` must be a JSON object",
                        p.id
                    )));
                }
            },
        };
        let mut scope = access.scope.clone();
        // A call never outlives the attempt, and ends a moment before it (a tenth of the time
        // left, at most 100 ms) so the step can still act on the failure.
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        let margin = (left / 10).min(std::time::Duration::from_millis(100));
        let attempt_end = tokio::time::Instant::from_std(self.deadline - margin);
        scope.deadline = scope.deadline.min(attempt_end);
        let call = ModelCall {
            alias: request.alias.clone(),
            messages: request
                .messages
                .into_iter()
                .map(|m| Message {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
            prompt,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            json: request.json,
        };
        let span = tracing::info_span!("host_call", capability = "model", alias = %request.alias);
        // The call runs as its own task: when the attempt is stopped while the call waits,
        // the call still ends (by its own deadline, before the attempt's) and is journaled
        // and settled, so no reservation is left open and no provider charge goes unbooked.
        let models = access.models.clone();
        let task =
            tokio::spawn(async move { models.complete(&scope, call).await }.instrument(span));
        let result = task.await.unwrap_or_else(|e| {
            Err(ModelFailure::Unavailable(format!(
                "the model call ended without an answer: {e}"
            )))
        });
        match result {
            Ok(reply) => Ok(wit::Response {
                content: reply.content,
                alias: reply.alias,
                model: reply.model,
                prompt_tokens: reply.usage.prompt_tokens,
                completion_tokens: reply.usage.completion_tokens,
                cost_usd: reply.cost_micros as f64 / 1e6,
                cached: reply.cached,
            }),
            Err(failure) => {
                if let ModelFailure::Denied(reason) = &failure {
                    record_denial(&self.denials, "model", request.alias, reason);
                }
                Err(to_wit(failure))
            }
        }
    }
}
