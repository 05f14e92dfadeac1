//! The model gateway: chat completions from OpenAI-compatible providers, made safe by the
//! host rather than by each step. A call goes through the provider's circuit breaker, is
//! retried only on typed transient failures (timeouts, 429, 5xx, connection errors, bodies
//! that do not parse) with exponential backoff and full jitter, honours `Retry-After`, and
//! never starts an attempt or a wait that cannot finish before the caller's deadline.

mod breaker;
mod client;
pub mod config;
mod failure;
mod flight;
mod journal;
pub mod policy;
pub mod prompt;
mod rate;
mod retry;
mod service;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use client::{
    ChatRequest, ChatResponse, Message, ModelError, ProviderConfig, Served, TokenUsage,
};
pub use config::{Alias, ModelConfig, ProviderSettings};
pub use failure::ModelFailure;
pub use policy::{BudgetTable, CallPolicy, PolicyTable};
pub use rate::RateLimits;
pub use retry::RetryPolicy;
pub use service::{CallScope, ModelCall, ModelReply, Models};

/// One provider behind its breaker, with its retry policy.
#[derive(Clone)]
pub struct Gateway {
    provider: Arc<ProviderConfig>,
    client: reqwest::Client,
    breaker: Arc<Breaker>,
    limits: Arc<RateLimits>,
    retry: RetryPolicy,
}

/// What one gateway call did: the response, and every upstream attempt it made.
#[derive(Debug)]
pub struct CallReport {
    /// The response, or the last typed failure.
    pub outcome: Result<ChatResponse, ModelError>,
    /// Upstream requests made (0 when the breaker was open or the deadline had passed).
    pub attempts: u32,
    /// Wall-clock time of the whole call, retries and waits included.
    pub elapsed: Duration,
}

impl Gateway {
    /// A gateway to `provider`; the breaker is shared by every clone.
    pub fn new(provider: ProviderConfig, retry: RetryPolicy, breaker: BreakerConfig) -> Self {
        Self {
            provider: Arc::new(provider),
            client: reqwest::Client::new(),
            breaker: Arc::new(Breaker::new(breaker)),
            limits: Arc::default(),
            retry,
        }
    }

    /// The same gateway, with the provider's shared rate limits.
    pub fn with_limits(mut self, limits: RateLimits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// The provider's settings.
    pub fn provider(&self) -> &ProviderConfig {
        &self.provider
    }

    /// The provider's breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Asks for a completion, retrying transient failures within `deadline`.
    pub async fn complete(&self, request: &ChatRequest, deadline: Instant) -> CallReport {
        self.complete_with(request, deadline, &self.retry, None)
            .await
    }

    /// Like [`Gateway::complete`], with a call's own retry policy and request timeout.
    pub async fn complete_with(
        &self,
        request: &ChatRequest,
        deadline: Instant,
        retry: &RetryPolicy,
        timeout: Option<Duration>,
    ) -> CallReport {
        self.complete_metered(request, deadline, retry, timeout, &mut Unmetered)
            .await
    }

    /// Like [`Gateway::complete_with`], with every upstream attempt booked by `meter`: it
    /// reserves before the attempt is sent and is told what the attempt served after.
    pub async fn complete_metered(
        &self,
        request: &ChatRequest,
        deadline: Instant,
        retry: &RetryPolicy,
        timeout: Option<Duration>,
        meter: &mut impl Meter,
    ) -> CallReport {
        let started = Instant::now();
        let mut attempts = 0;
        // The last attempt's failure, while a retry of it is pending.
        let mut last: Option<ModelError> = None;
        let outcome = loop {
            // Before anything else, so that no attempt goes out without its reservation.
            if let Err(refused) = meter.reserve().await {
                break Err(refused);
            }
            if !self.breaker.admit() {
                break Err(ModelError::Unavailable {
                    provider: self.provider.name.clone(),
                    after: last.map(Box::new),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(ModelError::DeadlineExceeded(last.map(Box::new)));
            }
            if let Err(reason) = self.limits.acquire(tokens_needed(request), deadline).await {
                break Err(ModelError::Throttled {
                    provider: self.provider.name.clone(),
                    reason,
                });
            }
            let now = Instant::now();
            if let Some(previous) = &last {
                // Counted only now that the retry is sent.
                crate::metrics::model_retry(&self.provider.name, previous.kind());
            }
            attempts += 1;
            // An attempt never outlives the deadline.
            let wanted = timeout.unwrap_or(self.provider.timeout);
            let cut = deadline - now < wanted;
            let timeout = wanted.min(deadline - now);
            let (result, served) =
                client::call(&self.client, &self.provider, request, timeout).await;
            meter.served(served);
            self.breaker.record(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(ModelError::is_transient),
            );
            crate::metrics::breaker(&self.provider.name, self.breaker.state());
            let error = match result {
                Ok(response) => break Ok(response),
                // Cut short by the deadline, not by the provider's own timeout.
                Err(ModelError::Timeout(_)) if cut => break Err(ModelError::DeadlineCut(timeout)),
                Err(error) => error,
            };
            if !error.is_transient() || attempts >= retry.max_attempts {
                break Err(error);
            }
            let wait = retry.delay(attempts, error.retry_after());
            if Instant::now() + wait >= deadline {
                // The retry could not finish in time: do not start it.
                break Err(error);
            }
            last = Some(error);
            tokio::time::sleep(wait).await;
        };
        CallReport {
            outcome,
            attempts,
            elapsed: started.elapsed(),
        }
    }
}

/// Books a call's upstream attempts: a budget reservation before each is sent, and what
/// each served (by the provider's count when known) after.
pub trait Meter: Send {
    /// Reserves what the next attempt may cost; an error refuses the attempt (and ends the
    /// call with it).
    fn reserve(&mut self) -> impl Future<Output = Result<(), ModelError>> + Send;
    /// What the attempt just made served.
    fn served(&mut self, served: Served);
}

/// No budgets: attempts are not booked.
pub struct Unmetered;

impl Meter for Unmetered {
    async fn reserve(&mut self) -> Result<(), ModelError> {
        Ok(())
    }

    fn served(&mut self, _: Served) {}
}

/// What a request may take from a tokens-per-minute bucket: an estimate of its prompt
/// (about four characters a token, plus a few per message) and all it may generate.
pub fn tokens_needed(request: &ChatRequest) -> u32 {
    let prompt: usize = request
        .messages
        .iter()
        .map(|m| m.content.chars().count().div_ceil(4) + 4)
        .sum();
    (prompt as u32).saturating_add(request.max_tokens.unwrap_or(0))
}
