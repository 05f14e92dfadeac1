//! Step test cases: `tests/*.json` in a step project, each an input (with optional config)
//! and what the step must answer. `weir test` runs them against the built component under
//! the default limits, so a case exercises the real sandbox, not a language's unit harness.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::capabilities::config::StepConfig;
use crate::{AttemptContext, Host, Limits, Plugin, StepSpec};

/// One case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The step input.
    pub input: Value,
    /// The step's config table.
    #[serde(default)]
    pub config: Option<Value>,
    /// What the step must answer.
    pub expect: Expect,
}

/// The expected answer: a payload (with optional route and confidence) or a failure kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exact output payload.
    #[serde(default)]
    pub payload: Option<Value>,
    /// The route label.
    #[serde(default)]
    pub route: Option<String>,
    /// The confidence.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// A failure kind (`invalid_input`, `fatal`, `fuel_exhausted`, ...).
    #[serde(default)]
    pub failure: Option<String>,
    /// Text the failure's message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
}

/// A case's outcome: `None` when it passed, else what differed.
#[derive(Debug)]
pub struct CaseResult {
    /// The case file.
    pub file: PathBuf,
    /// Why it failed, when it did.
    pub mismatch: Option<String>,
}

/// The case files of the project at `dir`, sorted.
pub fn case_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let tests = dir.join("tests");
    if !tests.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a case file, naming the file (and line) in any error.
pub fn read_case(file: &Path) -> anyhow::Result<Case> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let case: Case = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid test case", file.display()))?;
    match (&case.expect.payload, &case.expect.failure) {
        (Some(_), Some(_)) => bail!(
            "{}: expect names both a payload and a failure",
            file.display()
        ),
        (None, None) if case.expect.route.is_none() && case.expect.confidence.is_none() => bail!(
            "{}: expect names nothing to check (payload, route, confidence or failure)",
            file.display()
        ),
        _ => {}
    }
    Ok(case)
}

/// Runs one case against `plugin`.
pub async fn run_case(host: &Host, plugin: &Plugin, file: &Path) -> anyhow::Result<CaseResult> {
    let case = read_case(file)?;
    let config = match case.config {
        Some(value) => StepConfig::from_value(value)
            .map_err(|e| anyhow::anyhow!("{}: config: {e}", file.display()))?,
        None => StepConfig::default(),
    };
    let spec = StepSpec {
        limits: Limits::default(),
        config,
        ..StepSpec::default()
    };
    let report = host
        .run_step(
            plugin,
            &spec,
            &case.input.to_string(),
            AttemptContext::default(),
        )
        .await?;
    let expect = &case.expect;
    let mismatch = match &report.outcome {
        Ok(output) => {
            if let Some(kind) = &expect.failure {
                Some(format!(
                    "expected failure {kind}, got payload {}",
                    output.payload
                ))
            } else if expect
                .payload
                .as_ref()
                .is_some_and(|p| p != &output.payload)
            {
                Some(format!(
                    "payload differs\n  expected: {}\n       got: {}",
                    expect.payload.as_ref().unwrap(),
                    output.payload
                ))
            } else if expect.route.is_some() && expect.route != output.route {
                Some(format!(
                    "expected route {:?}, got {:?}",
                    expect.route, output.route
                ))
            } else if let Some(want) = expect.confidence {
                match output.confidence {
                    Some(got) if (got - want).abs() < 1e-9 => None,
                    got => Some(format!("expected confidence {want}, got {got:?}")),
                }
            } else {
                None
            }
        }
        Err(failure) => {
            let kind = failure.kind().as_str();
            let message = failure.to_string();
            match &expect.failure {
                None => Some(format!("expected success, got {kind}: {message}")),
                Some(want) if want != kind => {
                    Some(format!("expected failure {want}, got {kind}: {message}"))
                }
                Some(_) => match &expect.message_contains {
                    Some(needle) if !message.contains(needle.as_str()) => Some(format!(
                        "the {kind} message does not contain {needle:?}: {message}"
                    )),
                    _ => None,
                },
            }
        }
    };
    Ok(CaseResult {
        file: file.to_path_buf(),
        mismatch,
    })
}
