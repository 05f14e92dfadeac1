//! Rerun from a step: a new run of the recorded run's workflow version and input, in the real
//! journal, where every step the chosen one does not lead to keeps its recorded result (no
//! plugin runs, no model is called) and the chosen step and everything after it run again,
//! the chosen step optionally on another input. How a fixed step or a corrected input is
//! tried on a production run without paying again for what came before it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::strict::ReplayError;
use crate::engine::Host;
use crate::runner::Runner;
use crate::store::{AttemptOutcome, RunRecord, StepStatus, Store};
use crate::workflow::Workflow;

/// What a rerun keeps and changes.
#[derive(Debug, Default)]
pub struct Restore {
    /// The run the results come from.
    pub source_run: String,
    /// Results restored instead of run, by step.
    pub outcomes: HashMap<String, AttemptOutcome>,
    /// The step that runs again first, and the input it gets instead of its own.
    pub input: Option<(String, Value)>,
}

/// Reruns `run_id` from `step` (with `input` in place of its own, when given) as a new run,
/// driven by `runner`; returns the new run as it ended.
pub async fn rerun_from_step(
    host: &Host,
    runner: &Runner,
    run_id: &str,
    step: &str,
    input: Option<Value>,
) -> Result<RunRecord, ReplayError> {
    let store: &Arc<dyn Store> = runner.store();
    let run = super::strict::ended_run(store.as_ref(), run_id).await?;
    let refuse = |reason: String| ReplayError::NotReplayable {
        run: run_id.to_string(),
        reason,
    };
    let steps = store.steps(run_id).await?;
    let loaded = super::strict::loaded_as_run(host, store.as_ref(), &run, &steps).await?;
    if loaded.workflow.step(step).is_none() {
        return Err(refuse(format!(
            "rerun from step {step}: {}@{} has no such step (its steps: {})",
            run.workflow,
            run.version,
            loaded.workflow.step_ids(", ")
        )));
    }
    let again = leads_to(&loaded.workflow, step);
    let mut outcomes = HashMap::new();
    for record in &steps {
        if again.contains(&record.step_id) {
            continue;
        }
        let outcome = match record.status {
            StepStatus::Succeeded => AttemptOutcome::Succeeded {
                output: record.output.clone().unwrap_or(Value::Null),
                confidence: record.confidence,
                route: record.route.clone(),
            },
            StepStatus::Failed => {
                AttemptOutcome::Failed(record.failure.clone().unwrap_or(Value::Null))
            }
            // Skipped (or never reached): the new run decides again, from the same results.
            _ => continue,
        };
        outcomes.insert(record.step_id.clone(), outcome);
    }
    let restore = Restore {
        source_run: run.id.clone(),
        outcomes,
        input: input.map(|i| (step.to_string(), i)),
    };
    let runner = runner.clone().restoring(Arc::new(restore));
    runner
        .submit_and_execute(&loaded, run.input.clone(), None, |_, _| {})
        .await
        .map_err(|e| ReplayError::Failed(anyhow::anyhow!("the rerun could not run: {e}")))
}

/// `step` and every step that waits for it, directly or not, fallbacks included.
fn leads_to(workflow: &Workflow, step: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::from([step.to_string()]);
    loop {
        let before = found.len();
        for def in &workflow.steps {
            let waits = def.after.iter().any(|a| found.contains(a));
            let stands_in = def
                .stands_in_for
                .as_ref()
                .is_some_and(|s| found.contains(s));
            if waits || stands_in {
                found.insert(def.id.clone());
            }
        }
        if found.len() == before {
            return found;
        }
    }
}
