//! One step's attempt inside a run, once its start is journaled: check the input against the
//! step's schema, run the plugin, check the output, and hand back the result to journal.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::Progress;
use crate::attempt::{AttemptContext, StepOutput, TimeLimit};
use crate::capabilities::model::ModelAccess;
use crate::capabilities::state::StateScope;
use crate::engine::Host;
use crate::failure::StepFailure;
use crate::model::{CallScope, Models};
use crate::plugin::Plugin;
use crate::redaction::{Redaction, Redactor};

/// How long before a run's deadline its steps' model calls are cut: time for the step to
/// report the cut call as its failure before the deadline stops the step itself.
const MODEL_CALL_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);
use crate::schema::Schema;
use crate::store::{AttemptOutcome, AttemptResult, Store};
use crate::workflow::{StepDef, Workflow};

pub(crate) struct Job {
    pub(crate) host: Host,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) models: Models,
    pub(crate) workflow: Arc<Workflow>,
    pub(crate) run_id: String,
    pub(crate) deadline: Option<Instant>,
    pub(crate) attempt: u32,
    pub(crate) def: StepDef,
    pub(crate) plugin: Plugin,
    pub(crate) input: Result<Value, String>,
    /// On a replay: the recorded run the attempt answers from.
    pub(crate) replay: Option<Arc<crate::replay::Recorded>>,
    /// Whether to keep a replay tape of the attempt.
    pub(crate) tapes: bool,
    /// Whether to count the result into its step's profile.
    pub(crate) profiles: bool,
    /// On a rerun from a step: results restored instead of run.
    pub(crate) restore: Option<Arc<crate::replay::Restore>>,
}

/// An attempt that ran: the result to journal and the progress to report once it is.
pub(crate) struct Finished {
    pub(crate) result: AttemptResult,
    pub(crate) event: Progress,
    /// What the result adds to its step's profile: live attempts only (a replay or a result
    /// restored from another run observes nothing new).
    pub(crate) profile: Option<crate::store::StepProfile>,
}

impl Job {
    /// Runs the attempt.
    pub(crate) async fn run(mut self) -> anyhow::Result<Finished> {
        if let Some(restore) = self.restore.clone() {
            if let Some(outcome) = restore.outcomes.get(&self.def.id) {
                return Ok(self.restored(outcome.clone(), &restore.source_run));
            }
            if let Some((step, input)) = &restore.input
                && step == &self.def.id
            {
                self.input = Ok(input.clone());
            }
        }
        let deck = match &self.replay {
            Some(recorded) => recorded.deck(&self.def.id, self.attempt),
            None if self.tapes => crate::replay::Deck::record(crate::limits::REPLAY_TAPE_BYTES),
            None => crate::replay::Deck::default(),
        };
        let (outcome, usage, logs) = match self.checked_input() {
            Err(failure) => (Err(failure), None, Value::Null),
            Ok(input) => {
                let ctx = AttemptContext {
                    run_id: self.run_id.clone(),
                    step_id: self.def.id.clone(),
                    attempt: self.attempt,
                    state: StateScope::Journal {
                        store: self.store.clone(),
                        run_id: self.run_id.clone(),
                    },
                    model: self.model_access(),
                    deadline: self.deadline,
                    deck: deck.clone(),
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
                    "denials_dropped": report.denials_dropped,
                });
                let outcome = match report.outcome {
                    Ok(output) => self.check_output(output, report.time).await,
                    Err(failure) => Err(failure),
                };
                (outcome, Some(report.usage), logs)
            }
        };

        let step = self.def.id.clone();
        let (mut stored, mut event) = match outcome {
            Ok(output) => {
                let event = Progress::Succeeded {
                    step: step.clone(),
                    elapsed: usage.map(|u| u.elapsed).unwrap_or_default(),
                    route: output.route.clone(),
                    confidence: output.confidence,
                };
                let stored = AttemptOutcome::Succeeded {
                    output: output.payload,
                    confidence: output.confidence,
                    route: output.route,
                };
                (stored, event)
            }
            Err(failure) => {
                // Schema violations quote the offending values: cut to the bound too.
                let failure = failure.bounded();
                let mut json = serde_json::to_value(&failure)?;
                json["message"] = Value::String(failure.to_string());
                let event = Progress::Failed {
                    step: step.clone(),
                    failure: format!("{} ({})", failure, failure.kind()),
                };
                (AttemptOutcome::Failed(json), event)
            }
        };
        // The workflow's redaction, before anything of the attempt is journaled or shown.
        let mut logs = logs;
        let redacted = match &self.workflow.redactor {
            Some(redactor) => redact_attempt(redactor, &step, &mut stored, &mut logs, &mut event),
            None => Vec::new(),
        };
        let tape = tape_of(&deck, self.workflow.redactor.is_some());
        let latency_us = usage.map_or(0, |u| u.elapsed.as_micros() as u64);
        let profile = self.profile(&stored, latency_us).await;
        let result = AttemptResult {
            run_id: self.run_id,
            step_id: step,
            attempt: self.attempt,
            outcome: stored,
            latency_us,
            fuel: usage.and_then(|u| u.fuel_consumed),
            memory_peak: usage.map_or(0, |u| u.memory_peak_bytes),
            logs,
            redacted,
            tape,
        };
        Ok(Finished {
            result,
            event,
            profile,
        })
    }

    /// What this live attempt's result adds to its step's profile; `None` on a replay. A
    /// step granted models also counts its calls, read back from the journal (they are
    /// journaled as they are made).
    async fn profile(
        &self,
        outcome: &AttemptOutcome,
        latency_us: u64,
    ) -> Option<crate::store::StepProfile> {
        use crate::monitor::profile::{self, ModelUse, Observation, Origin};
        if self.replay.is_some() || !self.profiles || !self.workflow.monitor.profiles {
            return None;
        }
        let model = if self.def.spec.grants.models.is_empty() {
            None
        } else {
            let calls = self
                .store
                .model_calls(&self.run_id)
                .await
                .unwrap_or_default();
            let mine = calls
                .iter()
                .filter(|c| c.step_id == self.def.id && c.attempt == self.attempt);
            Some(mine.fold(ModelUse::default(), |total, call| ModelUse {
                calls: total.calls + 1,
                tokens: total.tokens + call.prompt_tokens + call.completion_tokens,
                cost_micros: total.cost_micros + call.cost_micros,
            }))
        };
        let version = self.workflow.version.to_string();
        let origin = Origin {
            workflow: &self.workflow.name,
            version: &version,
            step_id: &self.def.id,
            at_ms: crate::store::now_ms(),
            window_ms: self.workflow.monitor.window_ms,
        };
        let seen = Observation {
            input: self.input.as_ref().ok(),
            outcome,
            attempt: self.attempt,
            latency_us,
            model,
        };
        let mut counted = profile::observe(origin, &seen);
        if !self.def.features.is_empty() {
            let output = match outcome {
                AttemptOutcome::Succeeded { output, .. } => output,
                AttemptOutcome::Failed(_) => &Value::Null,
            };
            let input = self.input.as_ref().unwrap_or(&Value::Null);
            crate::monitor::features::count(&mut counted, &self.def.features, input, output);
        }
        Some(counted)
    }

    /// The attempt of a rerun that takes its step's result from the source run: nothing runs.
    fn restored(self, outcome: AttemptOutcome, source: &str) -> Finished {
        let step = self.def.id.clone();
        let event = match &outcome {
            AttemptOutcome::Succeeded {
                route, confidence, ..
            } => Progress::Succeeded {
                step: step.clone(),
                elapsed: std::time::Duration::ZERO,
                route: route.clone(),
                confidence: *confidence,
            },
            AttemptOutcome::Failed(failure) => Progress::Failed {
                step: step.clone(),
                failure: failure["message"].as_str().unwrap_or("failed").to_string(),
            },
        };
        let result = AttemptResult {
            run_id: self.run_id,
            step_id: step,
            attempt: self.attempt,
            outcome,
            latency_us: 0,
            fuel: None,
            memory_peak: 0,
            logs: json!({"restored_from": source}),
            redacted: Vec::new(),
            tape: None,
        };
        Finished {
            result,
            event,
            profile: None,
        }
    }

    /// The `model` capability for this attempt, when the step is granted aliases.
    fn model_access(&self) -> Option<ModelAccess> {
        let granted = &self.def.spec.grants.models;
        if granted.is_empty() {
            return None;
        }
        let config = self.models.config();
        // Both layers were checked when the workflow loaded; a layer that fails here (it
        // cannot) would leave the host's defaults in place.
        let policy = config
            .policy
            .with(&self.workflow.model_policy)
            .and_then(|p| p.with(&self.def.model_policy))
            .unwrap_or_else(|_| config.policy.clone());
        let far = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        Some(ModelAccess {
            models: self.models.clone(),
            scope: CallScope {
                store: Some(self.store.clone()),
                run_id: self.run_id.clone(),
                workflow: self.workflow.name.clone(),
                version: self.workflow.version.to_string(),
                step_id: self.def.id.clone(),
                attempt: self.attempt,
                granted: granted.clone(),
                policy,
                // A candidate's live calls pay from the evaluation budget alone (spent in the
                // replay's scratch journal), never from the workflow's.
                budgets: match &self.replay {
                    Some(recorded) => crate::model::BudgetTable {
                        run: None,
                        workflow_daily: recorded.budget_usd,
                    },
                    None => config.budgets.overridden_by(&self.workflow.budgets),
                },
                prompts: self.workflow.prompts.clone(),
                // Calls are cut a little before the attempt's own deadline, so that a step
                // whose call ran out of time can still report it before it is stopped.
                deadline: tokio::time::Instant::from_std(
                    self.deadline
                        .map_or(far, |d| d.checked_sub(MODEL_CALL_MARGIN).unwrap_or(d)),
                ),
                calls: Default::default(),
                redactor: self.workflow.redactor.clone(),
                replay: self.replay.clone(),
            },
        })
    }

    fn checked_input(&self) -> Result<Value, StepFailure> {
        let input = self
            .input
            .clone()
            .map_err(|message| StepFailure::InvalidInput {
                message: format!("the workflow could not compute this step's input: {message}"),
            })?;
        check_schema(self.plugin.input_schema(), &input, "input")
            .map_err(|message| StepFailure::InvalidInput { message })?;
        Ok(input)
    }

    /// Checks the output against the step's declared schema, as part of the step's time: a
    /// check still going when the attempt's time is up makes the attempt a `timeout`. A check
    /// that could be long (by [`Schema::work`]) runs on a blocking thread, so it cannot hold
    /// up the async workers other runs are scheduled on; a small one (microseconds) runs in
    /// place, which saves the hand-off.
    async fn check_output(
        &self,
        output: StepOutput,
        time: TimeLimit,
    ) -> Result<StepOutput, StepFailure> {
        let Some(schema) = self.plugin.output_schema() else {
            return Ok(output);
        };
        if schema.work(output.size) <= INLINE_CHECK_WORK {
            check_schema(Some(schema), &output.payload, "output")
                .map_err(|message| StepFailure::InvalidOutput { message })?;
            if Instant::now() > time.deadline {
                return Err(time.exceeded());
            }
            return Ok(output);
        }
        let schema = schema.clone();
        let check = tokio::task::spawn_blocking(move || {
            let verdict = check_schema(Some(&schema), &output.payload, "output");
            (output, verdict)
        });
        match tokio::time::timeout_at(time.deadline.into(), check).await {
            Err(_) => Err(time.exceeded()),
            Ok(Err(panicked)) => Err(StepFailure::InvalidOutput {
                message: format!("the output schema check failed: {panicked}"),
            }),
            Ok(Ok((_, Err(message)))) => Err(StepFailure::InvalidOutput { message }),
            Ok(Ok((output, Ok(())))) => Ok(output),
        }
    }
}

/// The attempt's replay tape, as journaled. A workflow that redacts keeps HTTP response
/// bodies off it (the redactor reads text, and a body on tape is bytes), which makes such an
/// attempt not replayable, and says so.
fn tape_of(deck: &crate::replay::Deck, redacts: bool) -> Option<Value> {
    let mut tape = deck.finish()?;
    if redacts && !tape.http.is_empty() {
        for exchange in &mut tape.http {
            if let Some(response) = exchange.response.as_mut() {
                response.body.clear();
                response.complete = false;
            }
        }
        tape.incomplete.get_or_insert_with(|| {
            "the workflow's [redact] keeps HTTP response bodies off the replay tape".into()
        });
    }
    serde_json::to_value(tape).ok()
}

/// Checks up to this much [`Schema::work`] run on the task that ran the step (a 4 KiB output
/// against a schema of 64 values, say: well under a millisecond).
const INLINE_CHECK_WORK: u64 = 256 * 1024;

/// Checks `value` against the step's declared schema for `what` (input or output); the error
/// lists every violation with its JSON path.
fn check_schema(schema: Option<&Schema>, value: &Value, what: &str) -> Result<(), String> {
    let Some(schema) = schema else { return Ok(()) };
    let violations = schema.violations(value);
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what} does not match the step's {what} schema: {}",
        violations.join("; ")
    ))
}

/// Applies `redactor` to an attempt's output (fields and detectors), failure and logs
/// (detectors), and to the failure shown as progress; lists what it took out.
fn redact_attempt(
    redactor: &Redactor,
    step: &str,
    stored: &mut AttemptOutcome,
    logs: &mut Value,
    event: &mut Progress,
) -> Vec<Redaction> {
    let mut redacted = match stored {
        AttemptOutcome::Succeeded { output, .. } => redactor.output(step, output),
        AttemptOutcome::Failed(failure) => {
            redactor.strings(&format!("steps.{step}.failure"), failure)
        }
    };
    redacted.extend(redactor.strings(&format!("steps.{step}.logs"), logs));
    if let Progress::Failed { failure, .. } = event {
        *failure = redactor.text(failure).0;
    }
    redacted
}
