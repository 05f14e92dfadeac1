//! One step's attempt inside a run: journal the start, check the input against the step's
//! schema, run the plugin, check the output, journal the result.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::Digest as _;

use super::Progress;
use crate::attempt::AttemptContext;
use crate::capabilities::state::StateScope;
use crate::engine::Host;
use crate::failure::StepFailure;
use crate::plugin::Plugin;
use crate::store::{AttemptOutcome, AttemptResult, Store};
use crate::workflow::StepDef;

/// Violations listed at most, so a huge bad document yields a readable error.
const MAX_VIOLATIONS: usize = 20;

/// Every way `value` violates `schema`, each naming its JSON path.
pub(crate) fn schema_violations(schema: &Value, value: &Value) -> anyhow::Result<Vec<String>> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| anyhow::anyhow!("invalid JSON Schema: {e}"))?;
    Ok(validator
        .iter_errors(value)
        .take(MAX_VIOLATIONS)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("at {}: {e}", if path.is_empty() { "/" } else { &path })
        })
        .collect())
}

pub(crate) struct Job {
    pub(crate) host: Host,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) run_id: String,
    pub(crate) def: StepDef,
    pub(crate) plugin: Plugin,
    pub(crate) input: Result<Value, String>,
    pub(crate) progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
}

impl Job {
    fn emit(&self, event: Progress) {
        if let Some(sink) = &self.progress {
            let _ = sink.send(event);
        }
    }

    /// Runs the attempt and journals it; returns the step id.
    pub(crate) async fn run(self) -> anyhow::Result<String> {
        let input_text = self
            .input
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        let input_digest = hex::encode(sha2::Sha256::digest(input_text.as_bytes()));
        let attempt = self
            .store
            .start_attempt(&self.run_id, &self.def.id, &input_digest)
            .await?;
        self.emit(Progress::Started {
            step: self.def.id.clone(),
            attempt,
        });

        let (outcome, usage, logs) = match self.checked_input() {
            Err(failure) => (Err(failure), None, Value::Null),
            Ok(input) => {
                let ctx = AttemptContext {
                    run_id: self.run_id.clone(),
                    step_id: self.def.id.clone(),
                    attempt,
                    state: StateScope::Journal {
                        store: self.store.clone(),
                        run_id: self.run_id.clone(),
                    },
                };
                let report = self
                    .host
                    .run_step(&self.plugin, &self.def.spec, &input.to_string(), ctx)
                    .await?;
                let logs = json!({
                    "logs": report.logs,
                    "logs_dropped": report.logs_dropped,
                    "stdout": report.stdout,
                    "stderr": report.stderr,
                    "denials": report.denials,
                });
                let outcome = report
                    .outcome
                    .clone()
                    .and_then(|output| self.check_output(output));
                (outcome, Some(report.usage), logs)
            }
        };

        let (stored, event) = match &outcome {
            Ok(output) => (
                AttemptOutcome::Succeeded {
                    output: output.payload.clone(),
                    confidence: output.confidence,
                    route: output.route.clone(),
                },
                Progress::Succeeded {
                    step: self.def.id.clone(),
                    elapsed: usage.map(|u| u.elapsed).unwrap_or_default(),
                    route: output.route.clone(),
                    confidence: output.confidence,
                },
            ),
            Err(failure) => {
                let mut json = serde_json::to_value(failure)?;
                json["message"] = Value::String(failure.to_string());
                (
                    AttemptOutcome::Failed(json),
                    Progress::Failed {
                        step: self.def.id.clone(),
                        failure: format!("{} ({})", failure, failure.kind()),
                    },
                )
            }
        };
        let result = AttemptResult {
            run_id: self.run_id.clone(),
            step_id: self.def.id.clone(),
            attempt,
            outcome: stored,
            latency_us: usage.map_or(0, |u| u.elapsed.as_micros() as u64),
            fuel: usage.and_then(|u| u.fuel_consumed),
            memory_peak: usage.map_or(0, |u| u.memory_peak_bytes),
            logs,
        };
        if !self.store.finish_attempt(result).await? {
            tracing::warn!(run_id = %self.run_id, step_id = %self.def.id, attempt, "the step already had a result; this attempt's result was not recorded");
        }
        self.emit(event);
        Ok(self.def.id.clone())
    }

    fn checked_input(&self) -> Result<Value, StepFailure> {
        let input = self
            .input
            .clone()
            .map_err(|message| StepFailure::InvalidInput {
                message: format!("the workflow could not compute this step's input: {message}"),
            })?;
        let schema = self.plugin.meta().input_schema.as_ref();
        check_schema(schema, &input, "input")
            .map_err(|message| StepFailure::InvalidInput { message })?;
        Ok(input)
    }

    fn check_output(
        &self,
        output: crate::attempt::StepOutput,
    ) -> Result<crate::attempt::StepOutput, StepFailure> {
        let schema = self.plugin.meta().output_schema.as_ref();
        check_schema(schema, &output.payload, "output")
            .map_err(|message| StepFailure::InvalidOutput { message })?;
        Ok(output)
    }
}

/// Checks `value` against the step's declared schema for `what` (input or output); the error
/// lists every violation with its JSON path.
fn check_schema(schema: Option<&Value>, value: &Value, what: &str) -> Result<(), String> {
    let Some(schema) = schema else { return Ok(()) };
    let violations = schema_violations(schema, value)
        .map_err(|e| format!("the step declares an {what} schema that is an {e:#}"))?;
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what} does not match the step's {what} schema: {}",
        violations.join("; ")
    ))
}
