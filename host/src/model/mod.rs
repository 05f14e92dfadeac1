//! The model gateway: chat completions from OpenAI-compatible providers, made safe by the
//! host rather than by each step. A call goes through the provider's circuit breaker, is
//! retried only on typed transient failures (timeouts, 429, 5xx, connection errors, bodies
//! that do not parse) with exponential backoff and full jitter, honours `Retry-After`, and
//! never starts an attempt or a wait that cannot finish before the caller's deadline.

mod breaker;
mod client;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use client::{ChatRequest, ChatResponse, Message, ModelError, ProviderConfig, TokenUsage};
pub use retry::RetryPolicy;

/// One provider behind its breaker, with its retry policy.
#[derive(Clone)]
pub struct Gateway {
    provider: Arc<ProviderConfig>,
    client: reqwest::Client,
    breaker: Arc<Breaker>,
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
            retry,
        }
    }

    /// The provider's breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Asks for a completion, retrying transient failures within `deadline`.
    pub async fn complete(&self, request: &ChatRequest, deadline: Instant) -> CallReport {
        let started = Instant::now();
        let mut attempts = 0;
        let outcome = loop {
            if !self.breaker.admit() {
                break Err(ModelError::Unavailable {
                    provider: self.provider.name.clone(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(ModelError::DeadlineExceeded);
            }
            attempts += 1;
            // An attempt never outlives the deadline.
            let timeout = self.provider.timeout.min(deadline - now);
            let result = client::call(&self.client, &self.provider, request, timeout).await;
            self.breaker.record(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(ModelError::is_transient),
            );
            crate::metrics::breaker(&self.provider.name, self.breaker.state());
            let error = match result {
                Ok(response) => break Ok(response),
                Err(error) => error,
            };
            if !error.is_transient() || attempts >= self.retry.max_attempts {
                break Err(error);
            }
            let wait = self.retry.delay(attempts, error.retry_after());
            if Instant::now() + wait >= deadline {
                // The retry could not finish in time: do not start it.
                break Err(error);
            }
            crate::metrics::model_retry(&self.provider.name, error.kind());
            tokio::time::sleep(wait).await;
        };
        CallReport {
            outcome,
            attempts,
            elapsed: started.elapsed(),
        }
    }
}
