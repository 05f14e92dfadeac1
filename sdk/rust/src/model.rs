//! Chat completions through the host, by model alias. The host owns the provider, the key
//! and every policy (timeouts, retries, circuit breaker, rate limits, fallback aliases,
//! cache, budgets); the step asks and gets an answer or a typed [`ModelError`].
//!
//! ```no_run
//! # fn f() -> Result<(), weir_sdk::StepError> {
//! use weir_sdk::model::Request;
//! let reply = Request::new("fast")
//!     .system("Answer with one word.")
//!     .prompt("classify", &serde_json::json!({"subject": "Refund please"}))
//!     .max_tokens(16)
//!     .send()?; // a failure becomes StepError::Model, which fallback rules can match
//! weir_sdk::log::info(&format!("{} cost ${}", reply.content, reply.cost_usd));
//! # Ok(()) }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StepError;
use crate::bindings::weir::step::model as wit;

/// A completion request, built with setters and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
}

impl Request {
    /// A request to the model behind `alias` (the step must be granted it).
    pub fn new(alias: impl Into<String>) -> Self {
        Self {
            inner: wit::Request {
                alias: alias.into(),
                messages: Vec::new(),
                prompt: None,
                max_tokens: None,
                temperature: None,
                json: false,
            },
        }
    }

    /// Adds a message with `role` (`system`, `user`, `assistant`).
    pub fn message(mut self, role: &str, content: impl Into<String>) -> Self {
        self.inner.messages.push(wit::Message {
            role: role.to_string(),
            content: content.into(),
        });
        self
    }

    /// Adds a system message.
    pub fn system(self, content: impl Into<String>) -> Self {
        self.message("system", content)
    }

    /// Adds a user message.
    pub fn user(self, content: impl Into<String>) -> Self {
        self.message("user", content)
    }

    /// Appends the workflow's prompt template `id`, rendered by the host with `variables`
    /// (anything that serializes to a JSON object).
    pub fn prompt<V: Serialize>(mut self, id: &str, variables: &V) -> Self {
        self.inner.prompt = Some(wit::PromptRef {
            id: id.to_string(),
            variables: serde_json::to_string(variables).unwrap_or_else(|_| "{}".into()),
        });
        self
    }

    /// The most tokens to generate.
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.inner.max_tokens = Some(n);
        self
    }

    /// Sampling temperature.
    pub fn temperature(mut self, t: f64) -> Self {
        self.inner.temperature = Some(t);
        self
    }

    /// Asks for a JSON object.
    pub fn json(mut self) -> Self {
        self.inner.json = true;
        self
    }

    /// Sends the request.
    pub fn send(self) -> Result<Response, ModelError> {
        wit::complete(&self.inner)
            .map(|r| Response {
                content: r.content,
                alias: r.alias,
                model: r.model,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                cost_usd: r.cost_usd,
                cached: r.cached,
            })
            .map_err(ModelError)
    }
}

/// A completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The text.
    pub content: String,
    /// The alias that answered (a fallback alias when the asked one failed).
    pub alias: String,
    /// The provider's model.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// What the call cost, in US dollars (0 when cached).
    pub cost_usd: f64,
    /// Served from the host's response cache.
    pub cached: bool,
}

impl Response {
    /// The content parsed as JSON (for requests made with [`Request::json`]); a reply that
    /// does not parse is a transient error (another attempt may answer better).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_str(&self.content).map_err(|e| {
            StepError::transient(format!("the model's answer is not the JSON expected: {e}"))
        })
    }
}

/// Why a call failed. Returned as a [`StepError`] (with `?`), it keeps its kind, so the
/// workflow can fall back on it (`fallback = { step = "…", on = ["model.unavailable"] }`).
#[derive(Debug, Clone)]
pub struct ModelError(wit::ModelError);

impl PartialEq for ModelError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.message() == other.message()
    }
}

impl ModelError {
    /// The kind: `denied`, `not_configured`, `unavailable`, `rate_limited`,
    /// `budget_exceeded`, `deadline_exceeded` or `rejected`.
    pub fn kind(&self) -> &'static str {
        use wit::ModelError as E;
        match &self.0 {
            E::Denied(_) => "denied",
            E::NotConfigured(_) => "not_configured",
            E::Unavailable(_) => "unavailable",
            E::RateLimited(_) => "rate_limited",
            E::BudgetExceeded(_) => "budget_exceeded",
            E::DeadlineExceeded(_) => "deadline_exceeded",
            E::Rejected(_) => "rejected",
        }
    }

    /// What the host said.
    pub fn message(&self) -> &str {
        use wit::ModelError as E;
        match &self.0 {
            E::Denied(m)
            | E::NotConfigured(m)
            | E::Unavailable(m)
            | E::RateLimited(m)
            | E::BudgetExceeded(m)
            | E::DeadlineExceeded(m)
            | E::Rejected(m) => m,
        }
    }

    pub(crate) fn into_wit(self) -> wit::ModelError {
        self.0
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model {}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for ModelError {}

impl From<ModelError> for StepError {
    fn from(error: ModelError) -> Self {
        StepError::Model(error)
    }
}
