//! One request to an OpenAI-compatible chat completions endpoint, and its failures, typed
//! so the gateway knows which are worth retrying.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A provider: where it is and how to reach it. The API key is read from an environment
/// variable by the host; a step never sees it.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// A name for logs, metrics and errors.
    pub name: String,
    /// The base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// The environment variable holding the API key, if the provider needs one.
    pub api_key_env: Option<String>,
    /// A file holding the API key (a mounted secret), read at each call so it can rotate.
    pub api_key_file: Option<std::path::PathBuf>,
    /// The longest one request may take.
    pub timeout: Duration,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// What a step asks for.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The provider's model to use, when not the provider's default.
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Ask for a JSON object (`response_format: json_object`).
    pub json: bool,
}

/// Token counts, from the provider's `usage` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TokenUsage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

/// A completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The assistant's message.
    pub content: String,
    /// The model that answered.
    pub model: String,
    /// Tokens used.
    pub usage: TokenUsage,
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No answer within the timeout.
    #[error("the provider did not answer within {}", crate::failure::rounded(*.0))]
    Timeout(Duration),
    /// 429.
    #[error("the provider is rate limiting{}", retry_after_text(*.retry_after))]
    RateLimited {
        /// Its `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 5xx.
    #[error("the provider failed with HTTP {status}{}", retry_after_text(*.retry_after))]
    Server {
        /// The status.
        status: u16,
        /// Its `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Could not connect, or the connection broke.
    #[error("cannot reach the provider: {0}")]
    Connection(String),
    /// An answer that is cut short or does not parse as a completion.
    #[error("the provider's answer is not a usable completion: {0}")]
    BadResponse(String),
    /// 4xx other than 429: the request itself is wrong; retrying cannot help.
    #[error("the provider refused the request with HTTP {status}: {message}")]
    Rejected {
        /// The status.
        status: u16,
        /// What the provider said.
        message: String,
    },
    /// The provider's circuit breaker is open: failing fast.
    #[error(
        "provider {provider} is unavailable: its circuit breaker is open after repeated failures{}",
        .after.as_ref().map(|e| format!(" (this call's last attempt: {e}; its retry was not sent)")).unwrap_or_default()
    )]
    Unavailable {
        /// The provider.
        provider: String,
        /// The failure of this call's last attempt, when the breaker opened on a retry.
        after: Option<Box<ModelError>>,
    },
    /// The caller's deadline had passed before an attempt could start.
    #[error("the run's deadline had passed before the call could be made{}",
        .0.as_ref().map(|e| format!(" (this call's last attempt: {e})")).unwrap_or_default())]
    DeadlineExceeded(Option<Box<ModelError>>),
    /// The caller's deadline ran out while an attempt was waiting for its answer.
    #[error("the run's deadline cut the call off after {} of waiting for the provider's answer", crate::failure::rounded(*.0))]
    DeadlineCut(Duration),
    /// The host's own rate limit for the provider would make the call wait past the deadline,
    /// or the call asks for more tokens than the limit allows in a minute.
    #[error("the host's rate limit for provider {provider} {reason}")]
    Throttled {
        /// The provider.
        provider: String,
        /// Why the call could not wait.
        reason: String,
    },
    /// A budget cannot cover the next attempt (the message names the budget and amounts).
    #[error("{0}")]
    OverBudget(String),
    /// The budget could not be checked (the journal failed).
    #[error("the budget could not be checked: {0}")]
    BudgetUnchecked(String),
    /// The API key's environment variable is not set, or its file cannot be read.
    #[error("the API key is missing: {0}")]
    MissingKey(String),
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {})", crate::failure::rounded(d)))
        .unwrap_or_default()
}

impl ModelError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_)
                | Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Connection(_)
                | Self::BadResponse(_)
        )
    }

    /// A short stable name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Server { .. } => "server",
            Self::Connection(_) => "connection",
            Self::BadResponse(_) => "bad_response",
            Self::Rejected { .. } => "rejected",
            Self::Unavailable { .. } => "unavailable",
            Self::DeadlineExceeded(_) | Self::DeadlineCut(_) => "deadline_exceeded",
            Self::MissingKey(_) => "missing_key",
            Self::Throttled { .. } => "throttled",
            Self::OverBudget(_) => "budget_exceeded",
            Self::BudgetUnchecked(_) => "budget_unchecked",
        }
    }

    /// The wait the provider asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What one upstream attempt served, as far as the host can tell: what the provider will
/// bill for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Nothing: the request was refused (429, 4xx, 5xx) or never reached the provider.
    Nothing,
    /// The provider's own count, from the answer's `usage` (even when the rest of the
    /// answer is unusable).
    Usage(TokenUsage),
    /// An answer was (or may have been) generated, but its count never arrived: the body
    /// was cut, did not parse, or the wait for it timed out.
    Unknown,
}

/// Sends one request; the outcome, and what the provider served for it.
pub(super) async fn call(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
    timeout: Duration,
) -> (Result<ChatResponse, ModelError>, Served) {
    let mut served = Served::Nothing;
    let result = send(client, provider, request, timeout, &mut served).await;
    if let Ok(response) = &result {
        served = Served::Usage(response.usage);
    }
    (result, served)
}

async fn send(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
    timeout: Duration,
    served: &mut Served,
) -> Result<ChatResponse, ModelError> {
    let model = request.model.as_deref().unwrap_or(&provider.model);
    let mut body = json!({"model": model, "messages": request.messages});
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if request.json {
        body["response_format"] = json!({"type": "json_object"});
    }
    let url = format!(
        "{}/chat/completions",
        provider.base_url.trim_end_matches('/')
    );
    let mut http = client.post(url).json(&body).timeout(timeout);
    if let Some(var) = &provider.api_key_env {
        let key = std::env::var(var).map_err(|_| ModelError::MissingKey(var.clone()))?;
        http = http.bearer_auth(key);
    }
    if let Some(path) = &provider.api_key_file {
        let key = std::fs::read_to_string(path)
            .map_err(|e| ModelError::MissingKey(format!("{} ({e})", path.display())))?;
        http = http.bearer_auth(key.trim());
    }
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            ModelError::Timeout(timeout)
        } else if e.is_body() || e.is_decode() {
            ModelError::BadResponse(e.to_string())
        } else {
            ModelError::Connection(e.to_string())
        }
    };
    let response = http.send().await.map_err(|e| {
        // A request that timed out may still be answered (and billed) upstream.
        if e.is_timeout() {
            *served = Served::Unknown;
        }
        transport(e)
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if (200..=299).contains(&status) {
        // From here on the provider has generated an answer.
        *served = Served::Unknown;
    }
    let text = response.text().await.map_err(transport)?;
    match status {
        200..=299 => parse(&text).inspect_err(|_| {
            if let Some(usage) = usage_of(&text) {
                *served = Served::Usage(usage);
            }
        }),
        429 => Err(ModelError::RateLimited { retry_after }),
        500..=599 => Err(ModelError::Server {
            status,
            retry_after,
        }),
        _ => Err(ModelError::Rejected {
            status,
            message: text.chars().take(500).collect(),
        }),
    }
}

/// The `usage` of an answer that is JSON but not a usable completion, when it has one.
fn usage_of(text: &str) -> Option<TokenUsage> {
    let body: Value = serde_json::from_str(text).ok()?;
    let usage = body.get("usage")?;
    Some(TokenUsage {
        prompt_tokens: usage.get("prompt_tokens")?.as_u64()?,
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
    })
}

fn parse(text: &str) -> Result<ChatResponse, ModelError> {
    let bad = |what: &str| ModelError::BadResponse(what.to_string());
    let body: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| bad("no choices[0].message.content"))?;
    let usage = &body["usage"];
    Ok(ChatResponse {
        content: content.to_string(),
        model: body["model"].as_str().unwrap_or_default().to_string(),
        usage: TokenUsage {
            prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        },
    })
}
