//! Which steps of a run can go next, and what each receives, decided from the journal.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::store::{StepRecord, StepStatus};
use crate::workflow::{StepDef, Workflow};

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

/// Whether `record` failed in a way its step's fallback rule covers: then the fallback step
/// runs in its place and the run goes on.
pub(crate) fn handled(def: &StepDef, record: &StepRecord) -> bool {
    let (Some(rule), StepStatus::Failed, Some(failure)) =
        (&def.fallback, record.status, &record.failure)
    else {
        return false;
    };
    let kind = failure
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let model_error = failure.get("error").and_then(Value::as_str);
    rule.on.iter().any(|on| match on.split_once('.') {
        Some(("model", sub)) => kind == "model" && model_error == Some(sub),
        _ => on == kind,
    })
}

/// The records as the rest of the workflow sees them: a step whose failure its fallback
/// covers takes its fallback step's record (status, output, confidence, route).
pub(crate) fn effective<'r>(wf: &Workflow, records: &'r [StepRecord]) -> Cow<'r, [StepRecord]> {
    // The common case, no step failed over to a fallback: the records as they are, uncopied.
    if !records
        .iter()
        .any(|r| wf.step(&r.step_id).is_some_and(|def| handled(def, r)))
    {
        return Cow::Borrowed(records);
    }
    records
        .iter()
        .map(|r| {
            let stand_in = wf
                .step(&r.step_id)
                .filter(|def| handled(def, r))
                .and_then(|def| def.fallback.as_ref())
                .and_then(|rule| records.iter().find(|o| o.step_id == rule.step));
            match stand_in {
                Some(b) => StepRecord {
                    step_id: r.step_id.clone(),
                    ..b.clone()
                },
                None => r.clone(),
            }
        })
        .collect::<Vec<_>>()
        .into()
}

/// Decisions for every step that is not finished, not in flight, and whose dependencies
/// have all finished. A step journaled as `running` that is not in flight is one whose
/// attempt was interrupted by a crash: it runs again.
pub(crate) fn ready(
    wf: &Workflow,
    raw: &[StepRecord],
    input: &Value,
    in_flight: &HashSet<String>,
) -> Vec<Decision> {
    let all = effective(wf, raw);
    let records: HashMap<&str, &StepRecord> = all.iter().map(|r| (r.step_id.as_str(), r)).collect();
    let raw_by_id: HashMap<&str, &StepRecord> =
        raw.iter().map(|r| (r.step_id.as_str(), r)).collect();
    // Built on first use: most steps have neither a condition nor an input mapping.
    let view = std::cell::OnceCell::new();
    let view = || view.get_or_init(|| steps_view(&all));
    let mut decisions = Vec::new();
    for step in &wf.steps {
        let Some(record) = raw_by_id.get(step.id.as_str()) else {
            continue;
        };
        if !matches!(record.status, StepStatus::Pending | StepStatus::Running)
            || in_flight.contains(&step.id)
        {
            continue;
        }
        let skip = |reason: String| Decision::Skip {
            step: step.id.clone(),
            reason,
        };
        // A fallback step waits for the step it stands in for, and runs only if that one
        // failed in a way its rule covers.
        let mut stands_in = None;
        if let Some(owner) = &step.stands_in_for {
            let (Some(owner_def), Some(owner_rec)) =
                (wf.step(owner), raw_by_id.get(owner.as_str()))
            else {
                continue;
            };
            match owner_rec.status {
                StepStatus::Succeeded | StepStatus::Skipped => {
                    decisions.push(skip(format!(
                        "fallback not needed: `{owner}` {}",
                        owner_rec.status.as_str()
                    )));
                    continue;
                }
                StepStatus::Failed if handled(owner_def, owner_rec) => stands_in = Some(owner_def),
                _ => continue,
            }
        }
        let deps: Vec<&StepRecord> = step
            .after
            .iter()
            .filter(|d| step.stands_in_for.as_ref() != Some(*d))
            .filter_map(|d| records.get(d.as_str()).copied())
            .collect();
        if !deps
            .iter()
            .all(|d| matches!(d.status, StepStatus::Succeeded | StepStatus::Skipped))
        {
            continue;
        }
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
            match when.eval_bool(input, view()) {
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
        // Without its own mapping, a fallback step receives what the step it stands in for
        // received.
        let source = match (stands_in, &step.input) {
            (Some(owner), None) => owner,
            _ => step,
        };
        decisions.push(Decision::Run {
            step: step.id.clone(),
            input: step_input(source, input, view, &records),
        });
    }
    decisions
}

/// What `step` receives: its `input` mapping, else the run input (no dependencies) or its
/// only dependency's output.
fn step_input<'v>(
    step: &StepDef,
    input: &Value,
    view: impl FnOnce() -> &'v Map<String, Value>,
    records: &HashMap<&str, &StepRecord>,
) -> Result<Value, String> {
    match (&step.input, step.after.as_slice()) {
        (Some(mapping), _) => mapping
            .eval(input, view())
            .map_err(|e| format!("`input` {e}")),
        (None, []) => Ok(input.clone()),
        (None, [only]) => Ok(records
            .get(only.as_str())
            .and_then(|r| r.output.clone())
            .unwrap_or(Value::Null)),
        // Resolution rejects several dependencies without an `input` mapping.
        (None, _) => Err("several dependencies and no `input` mapping".to_string()),
    }
}
