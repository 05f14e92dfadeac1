//! The workflow file as authored: serde types, strict at the edge (unknown keys are errors),
//! with the span of every value kept so later checks can point at it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// Everything but the steps: the steps are deserialized one by one so that an error in one
/// does not hide errors in the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Header {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub input_schema: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub limits: LimitsTable,
    pub max_parallel: Option<Spanned<u32>>,
    pub output: Option<Spanned<String>>,
    pub deadline: Option<Spanned<String>>,
    pub model: Option<Spanned<crate::model::PolicyTable>>,
    pub budgets: Option<Spanned<crate::model::BudgetTable>>,
    #[serde(default)]
    pub prompts: BTreeMap<String, Spanned<String>>,
    pub redact: Option<Spanned<RedactTable>>,
    pub retention: Option<Spanned<RetentionTable>>,
    pub monitor: Option<Spanned<super::monitoring::MonitorTable>>,
}

/// `[redact]`: what is taken out of every run before it is journaled or sent to a model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RedactTable {
    #[serde(default)]
    pub detectors: Vec<Spanned<String>>,
    #[serde(default)]
    pub fields: Vec<Spanned<String>>,
}

/// `[retention]`: how long a finished run keeps its payloads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RetentionTable {
    pub payloads: Spanned<String>,
}

/// Keys allowed at the top level (for "did you mean" suggestions).
pub(crate) const HEADER_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "input-schema",
    "limits",
    "max-parallel",
    "output",
    "deadline",
    "model",
    "budgets",
    "prompts",
    "redact",
    "retention",
    "monitor",
    "steps",
];

/// Limits, as defaults for every step or for one step.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct LimitsTable {
    pub fuel: Option<Spanned<u64>>,
    pub timeout: Option<Spanned<String>>,
    pub memory: Option<Spanned<String>>,
    pub output: Option<Spanned<String>>,
    pub http_requests: Option<Spanned<u64>>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct StepTable {
    pub id: Spanned<String>,
    pub plugin: Spanned<String>,
    #[serde(default)]
    pub config: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    pub when: Option<Spanned<String>>,
    pub input: Option<Spanned<String>>,
    pub on_route: Option<Spanned<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    pub limits: LimitsTable,
    #[serde(default)]
    pub grants: GrantsTable,
    pub review: Option<Spanned<ReviewTable>>,
    pub model: Option<Spanned<crate::model::PolicyTable>>,
    pub fallback: Option<Spanned<FallbackTable>>,
    pub shadow: Option<Spanned<super::shadow::ShadowTable>>,
    pub monitor: Option<Spanned<super::monitoring::StepMonitorTable>>,
}

/// `fallback = { step = "…", on = ["model.unavailable", …] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FallbackTable {
    pub step: Spanned<String>,
    pub on: Vec<Spanned<String>>,
}

/// When a person reviews a step's result before the run goes on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewTable {
    pub when: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub default: Option<Spanned<String>>,
}

/// What a step may reach.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct GrantsTable {
    #[serde(default)]
    pub dirs: Vec<Spanned<String>>,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
}
