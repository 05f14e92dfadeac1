//! Workflows: versioned TOML definitions of steps, their order (a DAG: `after`, `when`,
//! `on-route`), their inputs and the run's output.
//!
//! A file goes through two stages: the authored form (serde types), strict at the
//! edge, and the resolved [`Workflow`] that the runner sees, with every reference checked,
//! every expression compiled, limits parsed and paths made absolute. Every problem found is
//! reported with its line and column, all at once.

mod authored;
pub(crate) mod cel_json;
pub(crate) use cel_json::as_double;
pub mod diagnostic;
pub mod expr;
mod models;
mod monitoring;
mod parse;
mod protection;
mod resolve;
mod review;
pub mod shadow;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use expr::Expr;

use crate::attempt::StepSpec;

/// Steps of one run that may execute at the same time, unless the workflow says otherwise.
pub const DEFAULT_MAX_PARALLEL: usize = 4;

/// A checked, resolved workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The workflow's name.
    pub name: String,
    /// Its semantic version.
    pub version: semver::Version,
    /// One line for humans.
    pub description: String,
    /// JSON Schema every run input must satisfy.
    pub input_schema: Option<crate::schema::Schema>,
    /// The run's output.
    pub output: OutputDecl,
    /// Steps of one run that may execute at once.
    pub max_parallel: usize,
    /// The steps, in a topological order (every step after its dependencies).
    pub steps: Vec<StepDef>,
    /// The file's text, exactly as it was read (it is what a run is pinned to).
    pub source: String,
    /// The directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    /// The run-wide latency budget: every step sees what is left of it, and no step or
    /// model call runs past it.
    pub deadline: Option<std::time::Duration>,
    /// The workflow's model policy (over the host's defaults).
    pub model_policy: crate::model::PolicyTable,
    /// The workflow's budgets (over the host's defaults).
    pub budgets: crate::model::BudgetTable,
    /// Prompt templates by id.
    pub prompts: std::sync::Arc<BTreeMap<String, crate::model::prompt::Prompt>>,
    /// What `[redact]` takes out of every run before it is journaled or sent to a model.
    pub redactor: Option<std::sync::Arc<crate::redaction::Redactor>>,
    /// How long a finished run keeps its payloads (`[retention] payloads`).
    pub retention: Option<std::time::Duration>,
    /// How the steps' profiles are windowed and judged (`[monitor]`).
    pub monitor: crate::monitor::drift::Settings,
}

/// Where the run's output comes from.
#[derive(Debug, Clone)]
pub enum OutputDecl {
    /// The output of one step.
    Step(String),
    /// A CEL expression over `input` and `steps`.
    Expr(Expr),
}

/// Where a step's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A component file (absolute once resolved).
    Path(PathBuf),
    /// A plugin registered earlier, by the name and version its `describe()` reports.
    Registry {
        /// The plugin's name.
        name: String,
        /// The plugin's version.
        version: String,
    },
}

/// One step, resolved.
#[derive(Debug, Clone)]
pub struct StepDef {
    /// The step id (a CEL identifier).
    pub id: String,
    /// The plugin it runs.
    pub plugin: PluginRef,
    /// Where `plugin = …` is written, for errors found when the plugin is loaded.
    pub plugin_span: Range<usize>,
    /// Limits, config table and grants.
    pub spec: StepSpec,
    /// Every step this one waits for: `after`, plus the steps named in `on-route`.
    pub after: Vec<String>,
    /// Runs only when this holds.
    pub when: Option<Expr>,
    /// Runs only when the named steps chose one of the listed routes.
    pub on_route: BTreeMap<String, Vec<String>>,
    /// What the step receives; `None` means the run input (no dependencies) or the output of
    /// its only dependency.
    pub input: Option<Expr>,
    /// When its result goes to a person before the run goes on.
    pub review: Option<ReviewPolicy>,
    /// The step's model policy (over the workflow's).
    pub model_policy: crate::model::PolicyTable,
    /// The step that runs in this one's place when it fails with one of the named kinds.
    pub fallback: Option<Fallback>,
    /// Set on a fallback step: the step it stands in for. It runs only when that step fails
    /// with a kind its rule names, and is skipped otherwise.
    pub stands_in_for: Option<String>,
    /// A candidate plugin run beside it on a share of runs, compared and never passed on.
    pub shadow: Option<shadow::Shadow>,
    /// Features its profile counts beside the automatic ones (`[steps.monitor.features]`).
    pub features: Vec<crate::monitor::features::Declared>,
}

/// A step-level fallback rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The step that runs instead.
    pub step: String,
    /// Failure kinds it covers: `timeout`, `fatal`, `model` (any model failure),
    /// `model.unavailable`, `model.budget_exceeded`, ...
    pub on: Vec<String>,
}

/// A step's review policy (`review = { when, timeout, default }`).
#[derive(Debug, Clone)]
pub struct ReviewPolicy {
    /// The confidence gate: park the run for review when this holds after the step
    /// succeeds (it sees the step's own output). A step that returns `needs-review` is
    /// always reviewed.
    pub when: Option<Expr>,
    /// How long a review may wait.
    pub timeout: Option<std::time::Duration>,
    /// What happens when it waited that long.
    pub default: Option<crate::store::DefaultAction>,
}

impl Workflow {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The step ids in order, joined by `separator`: for messages that list them.
    pub fn step_ids(&self, separator: &str) -> String {
        let ids: Vec<&str> = self.steps.iter().map(|s| s.id.as_str()).collect();
        ids.join(separator)
    }
}

/// Reads and resolves a workflow file; every problem found is in the error.
pub fn load_file(path: &Path) -> Result<Workflow, Diagnostics> {
    let source = std::fs::read_to_string(path).map_err(|e| Diagnostics {
        file: path.display().to_string(),
        source: String::new(),
        items: vec![Diagnostic::whole_file(format!(
            "cannot read the workflow file: {e}"
        ))],
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base_dir
    };
    from_source(&path.display().to_string(), source, &base_dir)
}

/// Resolves workflow text; `file` names it in diagnostics, `base_dir` anchors relative paths.
pub fn from_source(file: &str, source: String, base_dir: &Path) -> Result<Workflow, Diagnostics> {
    from_source_pinned(file, source, base_dir, None)
}

/// Like [`from_source`], with the text of every prompt template given (as pinned when the
/// version was registered) instead of read from its file.
pub fn from_source_pinned(
    file: &str,
    source: String,
    base_dir: &Path,
    prompts: Option<&BTreeMap<String, String>>,
) -> Result<Workflow, Diagnostics> {
    let base_dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    resolve::resolve(source, &base_dir, prompts).map_err(|(source, items)| Diagnostics {
        file: file.to_string(),
        source,
        items,
    })
}
