//! The journal entry of one model call: written when the call ends, with the settlement of
//! its budget reservation in the same transaction.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::TokenUsage;
use super::failure::ModelFailure;
use super::prompt::Prompt;
use super::service::CallScope;
use crate::store::{ModelCallRecord, Settle, now_ms};

/// The journal entry of one call, filled in as the call goes.
pub(super) struct Journal<'a> {
    scope: &'a CallScope,
    alias: String,
    pub(super) provider: Option<String>,
    pub(super) model: Option<String>,
    prompt: Option<&'a Prompt>,
}

impl<'a> Journal<'a> {
    pub(super) fn new(scope: &'a CallScope, alias: &str, prompt: Option<&'a Prompt>) -> Self {
        Self {
            scope,
            alias: alias.to_string(),
            provider: None,
            model: None,
            prompt,
        }
    }

    pub(super) async fn failed(
        &mut self,
        failure: &ModelFailure,
        started: std::time::Instant,
        upstream: u32,
        request: Value,
    ) {
        self.finish(
            failure.kind(),
            Some(failure.to_string()),
            TokenUsage::default(),
            0,
            started,
            upstream,
            request,
            None,
            None,
        )
        .await;
    }

    #[allow(clippy::too_many_arguments, reason = "one journal row's fields")]
    pub(super) async fn finish(
        &mut self,
        outcome: &str,
        error: Option<String>,
        usage: TokenUsage,
        cost_micros: i64,
        started: std::time::Instant,
        upstream_attempts: u32,
        request: Value,
        response: Option<Value>,
        settle: Option<Settle>,
    ) {
        let Some(store) = &self.scope.store else {
            return;
        };
        let (mut request, mut response, mut error) = (request, response, error);
        if let Some(redactor) = &self.scope.redactor {
            // The request was redacted before it was sent; the answer may echo or invent
            // personal data, and an error may quote either.
            redactor.strings("request", &mut request);
            if let Some(response) = &mut response {
                redactor.strings("response", response);
            }
            error = error.map(|e| redactor.text(&e).0);
        }
        let record = ModelCallRecord {
            run_id: self.scope.run_id.clone(),
            step_id: self.scope.step_id.clone(),
            attempt: self.scope.attempt,
            seq: self.scope.calls.fetch_add(1, Ordering::Relaxed) + 1,
            workflow: self.scope.workflow.clone(),
            version: self.scope.version.clone(),
            alias: self.alias.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            prompt_id: self.prompt.map(|p| p.id.clone()),
            prompt_hash: self.prompt.map(|p| p.hash.clone()),
            request,
            response,
            outcome: outcome.to_string(),
            error,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_micros,
            latency_us: started.elapsed().as_micros() as u64,
            upstream_attempts,
            at_ms: now_ms(),
        };
        if let Err(e) = store.record_model_call(record, settle).await {
            tracing::error!(error = %e, "a model call could not be journaled");
        }
    }
}
