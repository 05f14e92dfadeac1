//! Which steps of a run can go next, and what each receives, decided from the journal.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::store::{StepRecord, StepStatus};
use crate::workflow::Workflow;

/// What to do with a step whose dependencies have all finished.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Run it on this input; an `Err` is an expression that failed, recorded as the step's failure.
    Run {
        step: String,
        input: Result<Value, String>,
    },
    /// Record it as skipped.
    Skip { step: String, reason: String },
}

/// The `steps` variable expressions see: id → `{status, output, confidence, route}`.
pub(crate) fn steps_view(records: &[StepRecord]) -> Map<String, Value> {
    records
        .iter()
        .map(|r| {
            let view = json!({"status": r.status.as_str(), "output": r.output, "confidence": r.confidence, "route": r.route});
            (r.step_id.clone(), view)
        })
        .collect()
}

/// Decisions for every step that is not finished, not in flight, and whose dependencies
/// have all finished. A step journaled as `running` that is not in flight is one whose
/// attempt was interrupted by a crash: it runs again.
pub(crate) fn ready(
    wf: &Workflow,
    records: &HashMap<&str, &StepRecord>,
    input: &Value,
    in_flight: &HashSet<String>,
) -> Vec<Decision> {
    let all: Vec<StepRecord> = wf
        .steps
        .iter()
        .filter_map(|s| records.get(s.id.as_str()).map(|r| (*r).clone()))
        .collect();
    let view = steps_view(&all);
    let mut decisions = Vec::new();
    for step in &wf.steps {
        let Some(record) = records.get(step.id.as_str()) else {
            continue;
        };
        if !matches!(record.status, StepStatus::Pending | StepStatus::Running)
            || in_flight.contains(&step.id)
        {
            continue;
        }
        let deps: Vec<&StepRecord> = step
            .after
            .iter()
            .filter_map(|d| records.get(d.as_str()).copied())
            .collect();
        if !deps
            .iter()
            .all(|d| matches!(d.status, StepStatus::Succeeded | StepStatus::Skipped))
        {
            continue;
        }
        let skip = |reason: String| Decision::Skip {
            step: step.id.clone(),
            reason,
        };
        if let Some(dep) = deps.iter().find(|d| d.status == StepStatus::Skipped) {
            decisions.push(skip(format!("dependency `{}` was skipped", dep.step_id)));
            continue;
        }
        if let Some((from, routes)) = step.on_route.iter().find(|(from, routes)| {
            let chosen = records.get(from.as_str()).and_then(|r| r.route.as_deref());
            !chosen.is_some_and(|c| routes.iter().any(|r| r == c))
        }) {
            let chosen = records
                .get(from.as_str())
                .and_then(|r| r.route.clone())
                .map_or("no route".into(), |r| format!("route {r:?}"));
            decisions.push(skip(format!(
                "route not taken: `{from}` chose {chosen}, this step runs on {}",
                routes.join(" or ")
            )));
            continue;
        }
        if let Some(when) = &step.when {
            match when.eval_bool(input, &view) {
                Ok(true) => {}
                Ok(false) => {
                    decisions.push(skip(format!("condition is false: {}", when.source())));
                    continue;
                }
                Err(e) => {
                    decisions.push(Decision::Run {
                        step: step.id.clone(),
                        input: Err(format!("`when` {e}")),
                    });
                    continue;
                }
            }
        }
        let step_input = match (&step.input, step.after.as_slice()) {
            (Some(mapping), _) => mapping
                .eval(input, &view)
                .map_err(|e| format!("`input` {e}")),
            (None, []) => Ok(input.clone()),
            (None, [only]) => Ok(records
                .get(only.as_str())
                .and_then(|r| r.output.clone())
                .unwrap_or(Value::Null)),
            // Resolution rejects several dependencies without an `input` mapping.
            (None, _) => Err("several dependencies and no `input` mapping".to_string()),
        };
        decisions.push(Decision::Run {
            step: step.id.clone(),
            input: step_input,
        });
    }
    decisions
}
