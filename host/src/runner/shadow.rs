//! Shadow steps: when a run ends, each of its steps with a `shadow` whose live attempt
//! succeeded is, on the shadow's share of runs, run again with the candidate plugin.
//!
//! The shadow is a candidate replay of the ended run (see `replay`): every other step answers
//! from its record, so the candidate sees exactly the input the live step saw; its model
//! calls are answered from the live attempt's record when they ask the same thing, and
//! otherwise follow the shadow's `on-miss` (live calls paid from the shadow's own daily
//! budget, never the workflow's). It runs in a scratch journal, after the run ended, on a
//! task of its own under a small semaphore: a shadow that fails, traps or panics can change
//! nothing of the run, its output or its cost. The outcome is recorded in the journal's
//! shadow results and counted in `weir_shadow_total`.
//!
//! Shadows are best effort: one lost to a crash of the host is not run again.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Runner;
use crate::replay::{Matching, Options, Scratch};
use crate::store::{ShadowResult, StepStatus, now_ms};
use crate::workflow::Workflow;
use crate::workflow::shadow::{Shadow, pin};

/// Shadows one host runs at a time.
pub(super) const SLOTS: usize = 2;

const DAY_MS: i64 = 86_400_000;

/// Starts the shadows of a run that just ended, in the background.
pub(super) fn after_run(runner: &Runner, run_id: &str, version: &str, workflow: &Arc<Workflow>) {
    let shadowed: Vec<(String, Shadow)> = workflow
        .steps
        .iter()
        .filter_map(|s| s.shadow.clone().map(|shadow| (s.id.clone(), shadow)))
        .filter(|(step, shadow)| sampled(run_id, step, shadow.sample))
        .collect();
    if shadowed.is_empty() {
        return;
    }
    let (runner, run_id, version) = (runner.clone(), run_id.to_string(), version.to_string());
    let name = workflow.name.clone();
    tokio::spawn(async move {
        for (step, shadow) in shadowed {
            let Ok(_slot) = runner.shadow_slots.clone().acquire_owned().await else {
                return;
            };
            let base = ShadowResult {
                id: uuid::Uuid::now_v7().to_string(),
                run_id: run_id.clone(),
                workflow: name.clone(),
                version: version.clone(),
                step_id: step.clone(),
                candidate: String::new(),
                outcome: "error".into(),
                detail: Value::Null,
                cost_micros: 0,
                at_ms: 0,
            };
            // On a task of its own: a panic in the shadow is caught here as an error.
            let task = tokio::spawn(shadow_one(runner.clone(), base.clone(), shadow));
            let result = match task.await {
                Ok(Some(result)) => result,
                Ok(None) => continue,
                Err(e) => ShadowResult {
                    detail: json!({"error": format!("the shadow panicked: {e}")}),
                    at_ms: now_ms(),
                    ..base
                },
            };
            crate::metrics::shadow(&result);
            if let Err(e) = runner.store.shadows().record_shadow(&result).await {
                tracing::error!(run_id = %result.run_id, step = %result.step_id, error = %format!("{e:#}"), "recording a shadow result failed");
            }
        }
    });
}

/// Whether the shadow takes this run: by a hash of run and step, so every host and every
/// restart chooses the same runs.
pub(crate) fn sampled(run_id: &str, step: &str, sample: f64) -> bool {
    crate::rollout::assign::position(run_id, step) < sample
}

/// Runs one shadow; `None` when there is nothing to shadow (the live step did not succeed).
async fn shadow_one(runner: Runner, base: ShadowResult, shadow: Shadow) -> Option<ShadowResult> {
    let store = runner.store.clone();
    let step = base.step_id.clone();
    let live = store.steps(&base.run_id).await.ok()?;
    if !live
        .iter()
        .any(|s| s.step_id == step && s.status == StepStatus::Succeeded)
    {
        return None;
    }
    let failed = |base: &ShadowResult, candidate: String, error: String| ShadowResult {
        candidate,
        detail: json!({"error": error}),
        at_ms: now_ms(),
        ..base.clone()
    };
    let digest = match store
        .get_workflow(&base.workflow, Some(&base.version))
        .await
    {
        Ok(Some(v)) => match v.pins.get(&pin(&step)) {
            Some(digest) => digest.clone(),
            None => {
                return Some(failed(
                    &base,
                    String::new(),
                    format!(
                        "{}@{} has no pinned shadow for step {step}",
                        base.workflow, base.version
                    ),
                ));
            }
        },
        Ok(None) => return None,
        Err(e) => return Some(failed(&base, String::new(), format!("{e:#}"))),
    };
    let plugin = match runner
        .plugin(&digest, &format!("{} of {}", pin(&step), base.workflow))
        .await
    {
        Ok(plugin) => plugin,
        Err(e) => return Some(failed(&base, digest, format!("{e:#}"))),
    };
    let now = now_ms();
    let spent = match store
        .shadows()
        .shadow_spend(&base.workflow, &step, now - now.rem_euclid(DAY_MS))
        .await
    {
        Ok(spent) => spent,
        Err(e) => return Some(failed(&base, digest, format!("{e:#}"))),
    };
    let remaining = shadow.budget_usd_day - spent as f64 / 1e6;
    if remaining <= 0.0 {
        return Some(ShadowResult {
            candidate: digest,
            outcome: "skipped".into(),
            detail: json!({"why": format!("the shadow's budget of ${} today is spent", shadow.budget_usd_day)}),
            at_ms: now,
            ..base
        });
    }
    let options = Options {
        matching: Matching::Request(shadow.on_miss),
        steps: HashMap::from([(step.clone(), plugin)]),
        workflow: None,
        budget_usd: Some(remaining),
        fresh_models: false,
    };
    let scratch = match Scratch::new() {
        Ok(scratch) => scratch,
        Err(e) => return Some(failed(&base, digest, format!("{e:#}"))),
    };
    let report = match crate::replay::replay(
        &runner.host,
        &store,
        &runner.models,
        &base.run_id,
        &options,
        &scratch,
    )
    .await
    {
        Ok(report) => report,
        Err(e) => return Some(failed(&base, digest, e.to_string())),
    };
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let cost_micros = scratch
        .store()
        .spend(&format!("workflow:{}:{}", base.workflow, &today[..10]))
        .await
        .map_or(0, |s| s.spent_micros);
    let Some(compared) = report.steps.iter().find(|s| s.step == step) else {
        return Some(failed(
            &base,
            digest,
            format!("the shadow replay has no step {step}"),
        ));
    };
    let (live, shadowed) = (&compared.recorded, &compared.replayed);
    let outcome = if shadowed["status"] != "succeeded" {
        "error"
    } else if live["route"] != shadowed["route"] {
        "route_changed"
    } else if live["output"] != shadowed["output"] {
        "output_changed"
    } else {
        "identical"
    };
    Some(ShadowResult {
        candidate: digest,
        outcome: outcome.into(),
        detail: json!({"live": live, "shadow": shadowed, "calls": report.calls}),
        cost_micros,
        at_ms: now_ms(),
        ..base
    })
}
