//! The host's model service: what a step's `model.complete` goes through. It checks the
//! grant, renders the prompt, walks the alias's fallback chain, serves from the response
//! cache, reserves budget before a call and settles it after, and journals every call, hit
//! or failure with its attempt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::config::{Alias, ModelConfig};
use super::failure::ModelFailure;
use super::journal::Journal;
use super::policy::{BudgetTable, CallPolicy};
use super::prompt::Prompt;
use super::{ChatRequest, Gateway, Message, RateLimits, RetryPolicy, TokenUsage};
use crate::store::{BudgetScope, Settle, Store, now_ms};

/// The model layer of one host: a gateway (breaker, rate limits) per provider, shared by
/// every run.
#[derive(Clone, Default)]
pub struct Models(Arc<Inner>);

#[derive(Default)]
struct Inner {
    config: ModelConfig,
    gateways: BTreeMap<String, Gateway>,
    flights: super::flight::Flights,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("aliases", &self.0.config.aliases.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Who is calling, and under which rules: the attempt the call is journaled with, the aliases
/// the step was granted, its call policy, the budgets it draws on and the time it has left.
#[derive(Clone)]
pub struct CallScope {
    /// Where calls, spend and cached responses are kept; `None` for a one-off step.
    pub store: Option<Arc<dyn Store>>,
    /// The run.
    pub run_id: String,
    /// The workflow name.
    pub workflow: String,
    /// The workflow version.
    pub version: String,
    /// The step.
    pub step_id: String,
    /// The attempt.
    pub attempt: u32,
    /// Aliases the step may call.
    pub granted: Vec<String>,
    /// The call policy: host defaults, then the workflow's, then the step's.
    pub policy: CallPolicy,
    /// The budgets: host defaults, then the workflow's.
    pub budgets: BudgetTable,
    /// The workflow's prompt templates.
    pub prompts: Arc<BTreeMap<String, Prompt>>,
    /// No call may start or wait past this.
    pub deadline: Instant,
    /// Calls made so far by this attempt.
    pub calls: Arc<AtomicU32>,
    /// The workflow's `[redact]`: applied to every message before it is sent, and to what
    /// is journaled of the call.
    pub redactor: Option<Arc<crate::redaction::Redactor>>,
    /// On a replay: the recorded run, which answers every call instead of a provider.
    pub replay: Option<Arc<crate::replay::Recorded>>,
}

/// One call, as the step asked for it.
#[derive(Debug, Clone, Default)]
pub struct ModelCall {
    /// The alias.
    pub alias: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// A prompt template id and its variables.
    pub prompt: Option<(String, Value)>,
    /// Tokens to generate at most.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// JSON mode.
    pub json: bool,
}

/// A completion, as the step gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// The text.
    pub content: String,
    /// The alias that answered.
    pub alias: String,
    /// The provider's model.
    pub model: String,
    /// Tokens.
    pub usage: TokenUsage,
    /// Cost in millionths of a dollar.
    pub cost_micros: i64,
    /// From the response cache.
    pub cached: bool,
}

impl Models {
    /// The model layer for `config`.
    pub fn new(config: ModelConfig) -> Self {
        let gateways = config
            .providers
            .iter()
            .map(|(name, settings)| {
                let gateway = Gateway::new(
                    settings.endpoint.clone(),
                    config.policy.retry,
                    settings.breaker,
                )
                .with_limits(RateLimits::new(
                    settings.requests_per_minute,
                    settings.tokens_per_minute,
                ));
                (name.clone(), gateway)
            })
            .collect();
        Self(Arc::new(Inner {
            config,
            gateways,
            flights: Default::default(),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.0.config
    }

    /// The gateway of a provider (its breaker state, for reports).
    pub fn gateway(&self, provider: &str) -> Option<&Gateway> {
        self.0.gateways.get(provider)
    }

    /// Makes one call for a step.
    pub async fn complete(
        &self,
        scope: &CallScope,
        call: ModelCall,
    ) -> Result<ModelReply, ModelFailure> {
        if !scope.granted.iter().any(|a| a == &call.alias) {
            return Err(ModelFailure::Denied(format!(
                "model alias `{}` is not granted to step `{}` (granted: {})",
                call.alias,
                scope.step_id,
                if scope.granted.is_empty() {
                    "none".to_string()
                } else {
                    scope.granted.join(", ")
                }
            )));
        }
        let mut messages = call.messages.clone();
        let mut prompt = None;
        if let Some((id, variables)) = &call.prompt {
            let template = scope.prompts.get(id).ok_or_else(|| {
                ModelFailure::Rejected(format!(
                    "prompt `{id}` is not declared in the workflow's [prompts] (declared: {})",
                    scope.prompts.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let text = template.render(variables).map_err(ModelFailure::Rejected)?;
            messages.push(Message {
                role: "user".into(),
                content: text,
            });
            prompt = Some(template.clone());
        }
        if let Some(redactor) = &scope.redactor {
            // The provider never sees what the workflow takes out (nor does the cache key).
            for message in &mut messages {
                message.content = redactor.text(&message.content).0;
            }
        }
        let chain = self.chain(&call.alias, &scope.policy);
        if let Some(recorded) = &scope.replay
            && let Some(answer) =
                crate::replay::model::answer(recorded, scope, &call, &messages, &chain)
        {
            return answer;
        }
        let mut last = None;
        for alias in chain {
            match self
                .call_alias(scope, &call, &alias, &messages, prompt.as_ref())
                .await
            {
                Ok(reply) => return Ok(reply),
                Err(failure) => {
                    let next = failure.falls_through();
                    last = Some(failure);
                    if !next {
                        break;
                    }
                }
            }
        }
        Err(last.expect("the chain holds the asked alias"))
    }

    /// The asked alias, then its fallbacks (the policy's, else the alias's own), each once.
    fn chain(&self, alias: &str, policy: &CallPolicy) -> Vec<String> {
        let fallbacks = policy.fallback.clone().unwrap_or_else(|| {
            self.0
                .config
                .aliases
                .get(alias)
                .map(|a| a.fallback.clone())
                .unwrap_or_default()
        });
        let mut chain = vec![alias.to_string()];
        for next in fallbacks {
            if !chain.contains(&next) {
                chain.push(next);
            }
        }
        chain
    }

    async fn call_alias(
        &self,
        scope: &CallScope,
        call: &ModelCall,
        alias_name: &str,
        messages: &[Message],
        prompt: Option<&Prompt>,
    ) -> Result<ModelReply, ModelFailure> {
        let started = std::time::Instant::now();
        let max_tokens = call.max_tokens.unwrap_or(scope.policy.max_tokens);
        let mut journal = Journal::new(scope, alias_name, prompt);
        let Some((alias, gateway)) = self.resolve(alias_name) else {
            let failure = ModelFailure::NotConfigured(format!(
                "no provider is configured for model alias `{alias_name}` (configured: {})",
                self.configured()
            ));
            journal
                .failed(&failure, started, 0, json!({"messages": messages}))
                .await;
            return Err(failure);
        };
        journal.provider = Some(alias.provider.clone());
        journal.model = Some(alias.model.clone());
        let request = ChatRequest {
            model: Some(alias.model.clone()),
            messages: messages.to_vec(),
            max_tokens: Some(max_tokens),
            temperature: call.temperature,
            json: call.json,
        };
        let request_json = json!({
            "model": alias.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": call.temperature, "json": call.json,
        });
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {}", alias.model),
            gen_ai.operation.name = "chat",
            gen_ai.system = %alias.provider,
            gen_ai.request.model = %alias.model,
            gen_ai.request.max_tokens = max_tokens,
            weir.model.alias = alias_name,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            weir.model.cached = tracing::field::Empty,
        );

        // A response already paid for is served again: a retried or replayed step never pays
        // twice for the same question.
        let cache_key = cache_key(&gateway.provider().base_url, &request_json);
        // The journal keeps the policy the call ran under beside what was sent.
        let mut request_json = request_json;
        request_json["policy"] = json!({
            "max_attempts": scope.policy.retry.max_attempts,
            "backoff_ms": scope.policy.retry.base.as_millis() as u64,
            "backoff_max_ms": scope.policy.retry.max.as_millis() as u64,
            "timeout_ms": scope.policy.timeout.unwrap_or(gateway.provider().timeout).as_millis() as u64,
            "cache_ttl_s": scope.policy.cache_ttl.map(|t| t.as_secs()),
            "deadline_ms": scope.deadline.saturating_duration_since(Instant::now()).as_millis() as u64,
            "budgets": {"run": scope.budgets.run, "workflow_daily": scope.budgets.workflow_daily},
        });
        // With the cache on, an identical request already in flight is waited for, and its
        // answer then comes from the cache (single flight).
        let _flight = match (&scope.store, scope.policy.cache_ttl) {
            (Some(_), Some(_)) => match self.0.flights.join(&cache_key, scope.deadline).await {
                Some(flight) => Some(flight),
                None => {
                    let failure = ModelFailure::DeadlineExceeded(
                        "the run's deadline passed while an identical call in flight was awaited"
                            .into(),
                    );
                    journal.failed(&failure, started, 0, request_json).await;
                    return Err(failure);
                }
            },
            _ => None,
        };
        if let (Some(store), Some(_)) = (&scope.store, scope.policy.cache_ttl)
            && let Ok(Some(text)) = store.cache_get(&cache_key, now_ms()).await
            && let Ok(cached) = serde_json::from_str::<Value>(&text)
        {
            let usage = TokenUsage {
                prompt_tokens: cached["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: cached["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            };
            let reply = ModelReply {
                content: cached["content"].as_str().unwrap_or_default().to_string(),
                alias: alias_name.to_string(),
                model: cached["model"].as_str().unwrap_or(&alias.model).to_string(),
                usage,
                cost_micros: 0,
                cached: true,
            };
            span.record("weir.model.cached", true);
            journal
                .finish(
                    "cached",
                    None,
                    usage,
                    0,
                    started,
                    0,
                    request_json,
                    Some(cached),
                    None,
                )
                .await;
            crate::metrics::model_call(&alias.provider, alias_name, "cached", usage, 0);
            return Ok(reply);
        }

        if Instant::now() >= scope.deadline {
            let failure = ModelFailure::DeadlineExceeded(
                "the run's deadline had passed before the call could be made".into(),
            );
            journal.failed(&failure, started, 0, request_json).await;
            return Err(failure);
        }

        // Each upstream attempt reserves the most it can cost before it is sent, so
        // concurrent runs can never spend past a budget together, retries included.
        let estimate = alias.cost_micros(
            super::tokens_needed(&ChatRequest {
                max_tokens: None,
                ..request.clone()
            }) as u64,
            max_tokens as u64,
        );
        let mut books = Books {
            store: scope.store.as_ref(),
            scopes: budget_scopes(scope),
            alias_name,
            alias,
            estimate,
            reserved: 0,
            charged: 0,
            usage: TokenUsage::default(),
        };
        let retry: RetryPolicy = scope.policy.retry;
        let report = gateway
            .complete_metered(
                &request,
                scope.deadline,
                &retry,
                scope.policy.timeout,
                &mut books,
            )
            .instrument(span.clone())
            .await;
        let (cost, usage, settle) = books.settle();
        match report.outcome {
            Ok(response) => {
                span.record("gen_ai.usage.input_tokens", response.usage.prompt_tokens);
                span.record(
                    "gen_ai.usage.output_tokens",
                    response.usage.completion_tokens,
                );
                span.record("weir.model.cached", false);
                let response_json = json!({
                    "content": response.content, "model": response.model,
                    "usage": {"prompt_tokens": response.usage.prompt_tokens, "completion_tokens": response.usage.completion_tokens},
                });
                // The cache keeps what the journal keeps: the answer with the workflow's
                // redaction applied (a cache hit gives the step that copy).
                let mut cached = response_json.clone();
                if let Some(redactor) = &scope.redactor {
                    redactor.strings("response", &mut cached);
                }
                if let (Some(store), Some(ttl)) = (&scope.store, scope.policy.cache_ttl)
                    && let Err(e) = store
                        .cache_put(
                            &cache_key,
                            &cached.to_string(),
                            now_ms() + ttl.as_millis() as i64,
                        )
                        .await
                {
                    tracing::warn!(error = %e, "a model response could not be cached");
                }
                journal
                    .finish(
                        "ok",
                        None,
                        usage,
                        cost,
                        started,
                        report.attempts,
                        request_json,
                        Some(response_json),
                        settle,
                    )
                    .await;
                crate::metrics::model_call(&alias.provider, alias_name, "ok", usage, cost);
                Ok(ModelReply {
                    content: response.content,
                    alias: alias_name.to_string(),
                    model: if response.model.is_empty() {
                        alias.model.clone()
                    } else {
                        response.model
                    },
                    usage: response.usage,
                    cost_micros: cost,
                    cached: false,
                })
            }
            Err(error) => {
                let failure = ModelFailure::from_gateway(error);
                // A failed call still costs what its attempts served.
                journal
                    .finish(
                        failure.kind(),
                        Some(failure.to_string()),
                        usage,
                        cost,
                        started,
                        report.attempts,
                        request_json,
                        None,
                        settle,
                    )
                    .await;
                crate::metrics::model_call(
                    &alias.provider,
                    alias_name,
                    failure.kind(),
                    usage,
                    cost,
                );
                Err(failure)
            }
        }
    }

    fn resolve(&self, alias: &str) -> Option<(&Alias, &Gateway)> {
        let alias = self.0.config.aliases.get(alias)?;
        Some((alias, self.0.gateways.get(&alias.provider)?))
    }

    fn configured(&self) -> String {
        let names: Vec<&str> = self.0.config.aliases.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none: add [models.<alias>] to the host configuration".into()
        } else {
            names.join(", ")
        }
    }
}

/// A call's books: what its attempts reserved on its budgets, and what they cost. An
/// attempt is charged the provider's count of what it served when the answer carried one,
/// nothing when it was refused, and its whole reservation (the most it could cost) when an
/// answer was generated but its count is unknown (cut, unparseable, timed out): so spend by
/// the provider's count never passes a budget.
struct Books<'a> {
    store: Option<&'a Arc<dyn Store>>,
    scopes: Vec<BudgetScope>,
    alias_name: &'a str,
    alias: &'a Alias,
    /// The most one attempt may cost.
    estimate: i64,
    reserved: i64,
    charged: i64,
    /// Tokens served, by the provider's count, over every attempt.
    usage: TokenUsage,
}

impl Books<'_> {
    /// The call's cost, its tokens, and the settlement of its reservations (none when it
    /// reserved nothing).
    fn settle(self) -> (i64, TokenUsage, Option<Settle>) {
        let settle = (self.reserved > 0).then(|| Settle {
            scopes: self.scopes.iter().map(|s| s.key.clone()).collect(),
            reserved_micros: self.reserved,
            actual_micros: self.charged,
        });
        (self.charged, self.usage, settle)
    }
}

impl super::Meter for Books<'_> {
    async fn reserve(&mut self) -> Result<(), super::ModelError> {
        let Some(store) = self.store.filter(|_| !self.scopes.is_empty()) else {
            return Ok(());
        };
        match store
            .reserve_budget(self.scopes.clone(), self.estimate)
            .await
        {
            Ok(Ok(())) => {
                self.reserved += self.estimate;
                Ok(())
            }
            Ok(Err(exceeded)) => Err(super::ModelError::OverBudget(format!(
                "model alias `{}`: {exceeded}",
                self.alias_name
            ))),
            Err(e) => Err(super::ModelError::BudgetUnchecked(format!("{e:#}"))),
        }
    }

    fn served(&mut self, served: super::Served) {
        match served {
            super::Served::Nothing => {}
            super::Served::Usage(usage) => {
                self.charged += self
                    .alias
                    .cost_micros(usage.prompt_tokens, usage.completion_tokens);
                self.usage.prompt_tokens += usage.prompt_tokens;
                self.usage.completion_tokens += usage.completion_tokens;
            }
            super::Served::Unknown => self.charged += self.estimate,
        }
    }
}

/// The budget scopes a call draws on: the run's and the workflow's for today (UTC).
fn budget_scopes(scope: &CallScope) -> Vec<BudgetScope> {
    let micros = |usd: f64| (usd * 1e6).floor() as i64;
    let mut scopes = Vec::new();
    if let Some(run) = scope.budgets.run {
        scopes.push(BudgetScope {
            key: format!("run:{}", scope.run_id),
            limit_micros: micros(run),
        });
    }
    if let Some(daily) = scope.budgets.workflow_daily {
        let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
        scopes.push(BudgetScope {
            key: format!("workflow:{}:{}", scope.workflow, &today[..10]),
            limit_micros: micros(daily),
        });
    }
    scopes
}

fn cache_key(base_url: &str, request: &Value) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(base_url.as_bytes());
    hasher.update(b"\n");
    hasher.update(request.to_string().as_bytes());
    hex::encode(hasher.finalize())
}
