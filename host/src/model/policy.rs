//! Call policies and budgets: the host's defaults, overridden by a workflow's `[model]` and
//! `[budgets]` tables and by a step's `model` table, each layer naming only what it changes.

use std::time::Duration;

use serde::Deserialize;

use super::RetryPolicy;
use crate::limits::parse_duration;

/// A policy layer as written in TOML; every key is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyTable {
    /// The longest one upstream request may take (overrides the provider's `timeout`).
    pub timeout: Option<String>,
    /// Upstream attempts per call, the first included.
    pub max_attempts: Option<u32>,
    /// The ceiling of the first backoff's jitter.
    pub backoff: Option<String>,
    /// The longest backoff.
    pub backoff_max: Option<String>,
    /// How long a response is served from the cache; `"0s"` turns the cache off.
    pub cache_ttl: Option<String>,
    /// Tokens to generate when the step does not say.
    pub max_tokens: Option<u32>,
    /// Aliases to try, in order, when the asked alias fails (overrides the alias's own).
    pub fallback: Option<Vec<String>>,
}

/// Budgets as written in TOML, in US dollars.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BudgetTable {
    /// What one run may spend.
    pub run: Option<f64>,
    /// What all runs of one workflow may spend per UTC day.
    pub workflow_daily: Option<f64>,
}

impl BudgetTable {
    /// `over`'s keys where it has them, else these.
    pub fn overridden_by(&self, over: &BudgetTable) -> BudgetTable {
        BudgetTable {
            run: over.run.or(self.run),
            workflow_daily: over.workflow_daily.or(self.workflow_daily),
        }
    }

    /// Checks the amounts; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [("run", self.run), ("workflow-daily", self.workflow_daily)] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!(
                    "budget `{key}` must be a non-negative amount of US dollars, got {v}"
                ));
            }
        }
        Ok(())
    }
}

/// A resolved call policy.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPolicy {
    /// Overrides the provider's timeout.
    pub timeout: Option<Duration>,
    /// Retries.
    pub retry: RetryPolicy,
    /// Cache lifetime; `None` turns the cache off.
    pub cache_ttl: Option<Duration>,
    /// Tokens to generate when the step does not say.
    pub max_tokens: u32,
    /// Overrides the alias's fallback chain.
    pub fallback: Option<Vec<String>>,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout: None,
            retry: RetryPolicy::default(),
            cache_ttl: Some(Duration::from_secs(3600)),
            max_tokens: 512,
            fallback: None,
        }
    }
}

impl CallPolicy {
    /// This policy with `table`'s keys applied; the error names the key that is wrong.
    pub fn with(&self, table: &PolicyTable) -> Result<CallPolicy, String> {
        let duration = |key: &str, text: &Option<String>| -> Result<Option<Duration>, String> {
            text.as_deref()
                .map(|t| humantime::parse_duration(t.trim()))
                .transpose()
                .map_err(|e| {
                    format!(
                        "`{key}`: {text:?} is not a duration such as 2s or 500ms: {e}",
                        text = text.as_deref().unwrap_or_default()
                    )
                })
        };
        let mut policy = self.clone();
        if let Some(t) = &table.timeout {
            policy.timeout = Some(parse_duration(t).map_err(|e| format!("`timeout`: {e}"))?);
        }
        if let Some(n) = table.max_attempts {
            if n == 0 {
                return Err("`max-attempts` must be at least 1".into());
            }
            policy.retry.max_attempts = n;
        }
        if let Some(d) = duration("backoff", &table.backoff)? {
            policy.retry.base = d;
        }
        if let Some(d) = duration("backoff-max", &table.backoff_max)? {
            policy.retry.max = d;
        }
        if let Some(d) = duration("cache-ttl", &table.cache_ttl)? {
            policy.cache_ttl = (!d.is_zero()).then_some(d);
        }
        if let Some(n) = table.max_tokens {
            if n == 0 {
                return Err("`max-tokens` must be at least 1".into());
            }
            policy.max_tokens = n;
        }
        if let Some(chain) = &table.fallback {
            policy.fallback = Some(chain.clone());
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_only_what_they_name() {
        let host = CallPolicy::default()
            .with(&PolicyTable {
                max_attempts: Some(5),
                cache_ttl: Some("10m".into()),
                ..Default::default()
            })
            .unwrap();
        let step = host
            .with(&PolicyTable {
                cache_ttl: Some("0s".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(step.retry.max_attempts, 5);
        assert_eq!(step.cache_ttl, None);
        assert_eq!(host.cache_ttl, Some(Duration::from_secs(600)));
        let err = host
            .with(&PolicyTable {
                backoff: Some("soon".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            err.starts_with("`backoff`: \"soon\" is not a duration"),
            "{err}"
        );
        assert!(
            BudgetTable {
                run: Some(-1.0),
                ..Default::default()
            }
            .check()
            .unwrap_err()
            .contains("`run`")
        );
    }
}
