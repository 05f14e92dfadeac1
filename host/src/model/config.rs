//! The host's model configuration (`weir.toml`): providers, the aliases steps call, default
//! policies and budgets. Steps never see it: they name an alias, the host does the rest.
//!
//! ```toml
//! [providers.openai]
//! base-url = "https://api.openai.com/v1"
//! api-key-env = "OPENAI_API_KEY"
//! timeout = "30s"
//! requests-per-minute = 500
//! tokens-per-minute = 200000
//! breaker = { failures = 5, cooldown = "30s" }
//!
//! [models.smart]
//! provider = "openai"
//! model = "gpt-4o"
//! input-price = 2.50    # US dollars per million prompt tokens
//! output-price = 10.00  # US dollars per million generated tokens
//! fallback = ["fast"]
//!
//! [policy]
//! max-attempts = 3
//! cache-ttl = "1h"
//!
//! [budgets]
//! run = 0.25
//! workflow-daily = 20.0
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::policy::{BudgetTable, CallPolicy, PolicyTable};
use super::{BreakerConfig, ProviderConfig};
use crate::limits::parse_duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    providers: BTreeMap<String, ProviderTable>,
    #[serde(default)]
    models: BTreeMap<String, AliasTable>,
    #[serde(default)]
    policy: PolicyTable,
    #[serde(default)]
    budgets: BudgetTable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ProviderTable {
    base_url: String,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    timeout: Option<String>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
    breaker: Option<BreakerTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerTable {
    failures: u32,
    cooldown: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AliasTable {
    provider: String,
    model: String,
    #[serde(default)]
    input_price: f64,
    #[serde(default)]
    output_price: f64,
    #[serde(default)]
    fallback: Vec<String>,
}

/// A provider, with its shared limits.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Where and how to reach it (the model is filled in per alias).
    pub endpoint: ProviderConfig,
    /// Requests per minute, shared by every run on the host.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt estimate plus `max_tokens`) per minute, shared by every run.
    pub tokens_per_minute: Option<u32>,
    /// When its breaker opens.
    pub breaker: BreakerConfig,
}

/// What an alias stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The provider's name in `[providers]`.
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// US dollars per million prompt tokens.
    pub input_price: f64,
    /// US dollars per million generated tokens.
    pub output_price: f64,
    /// Aliases to try next, in order, when this one fails.
    pub fallback: Vec<String>,
}

impl Alias {
    /// The cost of a call in millionths of a dollar (rounded up: budgets never under-count).
    pub fn cost_micros(&self, prompt_tokens: u64, completion_tokens: u64) -> i64 {
        let dollars_e6 =
            prompt_tokens as f64 * self.input_price + completion_tokens as f64 * self.output_price;
        // price is per 1M tokens, so dollars·1e6 / 1e6 = micro-dollars
        dollars_e6.ceil() as i64
    }
}

/// The resolved model configuration.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderSettings>,
    /// Aliases by name.
    pub aliases: BTreeMap<String, Alias>,
    /// Default call policy.
    pub policy: CallPolicy,
    /// Default budgets.
    pub budgets: BudgetTable,
}

/// The host configuration used when none is named: `./weir.toml`, if present.
pub fn default_config_path() -> Option<PathBuf> {
    let local = PathBuf::from("weir.toml");
    local.is_file().then_some(local)
}

/// A provider's `base-url` must be an absolute `http`/`https` URL: a typo is refused when the
/// host starts, not at the first call of some run.
fn check_base_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!("base-url {text:?} is not a URL ({e}); write it like \"https://api.openai.com/v1\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "base-url {text:?} is not an http:// or https:// URL with a host; write it like \"https://api.openai.com/v1\""
        ));
    }
    Ok(())
}

impl ModelConfig {
    /// Checks what only the running host can: every provider's API key is there (its
    /// environment variable set and not empty, its file readable), so a missing key is
    /// refused at start instead of failing each call.
    pub fn check_keys(&self) -> anyhow::Result<()> {
        for (name, provider) in &self.providers {
            let endpoint = &provider.endpoint;
            if let Some(var) = &endpoint.api_key_env
                && std::env::var(var).map_or(true, |v| v.trim().is_empty())
            {
                bail!(
                    "[providers.{name}] api-key-env names the environment variable {var}, which is not set (or empty) in this process: export it, or remove the provider"
                );
            }
            if let Some(path) = &endpoint.api_key_file
                && let Err(e) = std::fs::read_to_string(path)
            {
                bail!(
                    "[providers.{name}] api-key-file {} cannot be read: {e}",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Reads and checks a configuration file; the error names the file, and for a syntax
    /// error or an unknown key its line and column.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the host configuration {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in the host configuration {}", path.display()))
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text)?;
        let policy = CallPolicy::default()
            .with(&file.policy)
            .map_err(|e| anyhow::anyhow!("[policy] {e}"))?;
        file.budgets
            .check()
            .map_err(|e| anyhow::anyhow!("[budgets] {e}"))?;
        let mut providers = BTreeMap::new();
        for (name, table) in file.providers {
            let at = |what: &str| format!("[providers.{name}] {what}");
            let timeout = match &table.timeout {
                Some(t) => {
                    parse_duration(t).map_err(|e| anyhow::anyhow!(at(&format!("timeout: {e}"))))?
                }
                None => Duration::from_secs(60),
            };
            let breaker = match &table.breaker {
                Some(b) => BreakerConfig {
                    failure_threshold: b.failures.max(1),
                    cooldown: parse_duration(&b.cooldown)
                        .map_err(|e| anyhow::anyhow!(at(&format!("breaker.cooldown: {e}"))))?,
                },
                None => BreakerConfig::default(),
            };
            if table.api_key_env.is_some() && table.api_key_file.is_some() {
                bail!(at("set api-key-env or api-key-file, not both"));
            }
            for (key, value) in [
                ("requests-per-minute", table.requests_per_minute),
                ("tokens-per-minute", table.tokens_per_minute),
            ] {
                if value == Some(0) {
                    bail!(at(&format!(
                        "{key} must be at least 1 (leave it out for no limit)"
                    )));
                }
            }
            check_base_url(&table.base_url).map_err(|e| anyhow::anyhow!(at(&e)))?;
            let endpoint = ProviderConfig {
                name: name.clone(),
                base_url: table.base_url,
                model: String::new(),
                api_key_env: table.api_key_env,
                api_key_file: table.api_key_file,
                timeout,
            };
            providers.insert(
                name,
                ProviderSettings {
                    endpoint,
                    requests_per_minute: table.requests_per_minute,
                    tokens_per_minute: table.tokens_per_minute,
                    breaker,
                },
            );
        }
        let names: Vec<String> = file.models.keys().cloned().collect();
        let mut aliases = BTreeMap::new();
        for (name, table) in file.models {
            let at = |what: String| anyhow::anyhow!("[models.{name}] {what}");
            if !providers.contains_key(&table.provider) {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                return Err(at(format!(
                    "provider {:?} is not configured (configured: {})",
                    table.provider,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            for (key, price) in [
                ("input-price", table.input_price),
                ("output-price", table.output_price),
            ] {
                if !(price.is_finite() && price >= 0.0) {
                    return Err(at(format!(
                        "{key} must be a non-negative number of dollars per million tokens, got {price}"
                    )));
                }
            }
            if let Some(unknown) = table.fallback.iter().find(|f| !names.contains(f)) {
                return Err(at(format!(
                    "fallback alias {unknown:?} is not configured (aliases: {})",
                    names.join(", ")
                )));
            }
            aliases.insert(
                name,
                Alias {
                    provider: table.provider,
                    model: table.model,
                    input_price: table.input_price,
                    output_price: table.output_price,
                    fallback: table.fallback,
                },
            );
        }
        Ok(Self {
            providers,
            aliases,
            policy,
            budgets: file.budgets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_resolves_and_its_mistakes_are_named() {
        let config = ModelConfig::parse(
            r#"
            [providers.local]
            base-url = "http://127.0.0.1:8080/v1"
            requests-per-minute = 60
            breaker = { failures = 3, cooldown = "10s" }
            [models.fast]
            provider = "local"
            model = "small"
            input-price = 0.5
            output-price = 1.5
            [models.smart]
            provider = "local"
            model = "big"
            fallback = ["fast"]
            [budgets]
            run = 0.01
            "#,
        )
        .unwrap();
        assert_eq!(config.aliases["smart"].fallback, ["fast"]);
        assert_eq!(config.providers["local"].breaker.failure_threshold, 3);
        // 1000 prompt tokens at $0.5/M + 100 at $1.5/M = $0.00065 = 650 µ$.
        assert_eq!(config.aliases["fast"].cost_micros(1000, 100), 650);
        assert_eq!(config.budgets.run, Some(0.01));

        let err = ModelConfig::parse("[models.x]\nprovider = \"nope\"\nmodel = \"m\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "[models.x] provider \"nope\" is not configured (configured: none)"
        );
        let err = ModelConfig::parse("[providers.p]\nbase-url = \"u\"\nbase_url = \"v\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `base_url`") && err.contains("line 3"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_base_url_and_a_missing_key_are_refused_at_start() {
        let err = ModelConfig::parse("[providers.p]\nbase-url = \"not a url\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[providers.p] base-url \"not a url\" is not a URL"),
            "{err}"
        );
        let err = ModelConfig::parse("[providers.p]\nbase-url = \"ftp://x/v1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not an http:// or https:// URL"), "{err}");

        let var = "WEIR_TEST_KEY_THAT_IS_NEVER_SET";
        let config = ModelConfig::parse(&format!(
            "[providers.p]\nbase-url = \"https://example.com/v1\"\napi-key-env = \"{var}\"\n"
        ))
        .unwrap();
        let err = config.check_keys().unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "api-key-env names the environment variable {var}, which is not set"
            )),
            "{err}"
        );
        let config = ModelConfig::parse(
            "[providers.p]\nbase-url = \"https://example.com/v1\"\napi-key-file = \"/no/such/key\"\n",
        )
        .unwrap();
        let err = config.check_keys().unwrap_err().to_string();
        assert!(
            err.contains("api-key-file /no/such/key cannot be read"),
            "{err}"
        );
    }
}
