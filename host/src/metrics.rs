//! Metrics: what Weir counts and measures, under stable names, through the `metrics` facade.
//!
//! Recording is free when no recorder is installed (the CLI); `weir serve` installs a
//! Prometheus recorder and serves it at `/metrics`. Every name is described once in
//! `describe`, so the exposition carries help text and units.

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::{AttemptOutcome, AttemptResult, RunStatus};

/// Step attempt wall-clock time, by workflow, version, step and outcome.
pub const STEP_DURATION: &str = "weir_step_duration_seconds";
/// Fuel a metered attempt consumed.
pub const STEP_FUEL: &str = "weir_step_fuel";
/// Peak linear memory of an attempt.
pub const STEP_MEMORY: &str = "weir_step_memory_peak_bytes";
/// Failed attempts by typed failure kind.
pub const STEP_FAILURES: &str = "weir_step_failures_total";
/// Attempts after the first (a step run again after a crash or a retry).
pub const STEP_RETRIES: &str = "weir_step_retries_total";
/// Runs that ended, by workflow, version and status.
pub const RUNS: &str = "weir_runs_total";
/// Runs admitted and waiting for a worker.
pub const QUEUE_DEPTH: &str = "weir_queue_depth";
/// Runs being driven now.
pub const RUNS_ACTIVE: &str = "weir_runs_active";
/// Submissions refused because the queue was full.
pub const QUEUE_REJECTED: &str = "weir_queue_rejected_total";
/// HTTP requests by route, method and status.
pub const HTTP_REQUESTS: &str = "weir_http_requests_total";
/// HTTP request latency by route and method.
pub const HTTP_DURATION: &str = "weir_http_request_duration_seconds";
/// Plugin or workflow files that failed to load on a reload, by kind.
pub const RELOAD_FAILURES: &str = "weir_reload_failures_total";
/// A provider's circuit breaker: 0 closed, 1 half-open, 2 open.
pub const MODEL_BREAKER: &str = "weir_model_breaker_state";
/// Model call attempts after the first, by provider and failure kind.
pub const MODEL_RETRIES: &str = "weir_model_retries_total";
/// Model calls by provider, alias and outcome.
pub const MODEL_CALLS: &str = "weir_model_calls_total";
/// Model tokens, by provider, alias and direction (`input`, `output`).
pub const MODEL_TOKENS: &str = "weir_model_tokens_total";
/// Model spend in millionths of a US dollar, by provider and alias.
pub const MODEL_COST: &str = "weir_model_cost_microdollars_total";
/// Plugin or workflow versions swapped in by a reload, by kind.
pub const RELOADS: &str = "weir_reloads_total";

/// The candidate's share of new runs, in percent, per workflow and rollout.
pub const ROLLOUT_WEIGHT: &str = "weir_rollout_weight_percent";
/// Rollout transitions and checks, by kind.
pub const ROLLOUT_EVENTS: &str = "weir_rollout_events_total";

/// Shadow steps run, by outcome.
pub const SHADOW_TOTAL: &str = "weir_shadow_total";

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install_prometheus() -> anyhow::Result<PrometheusHandle> {
    // Built and installed inside `get_or_init`, which runs once even when servers start
    // concurrently, so every caller gets the handle of the recorder that is installed.
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0,
                ])
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)
                .map_err(|e| format!("another metrics recorder is already installed: {e}"))?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

fn describe() {
    describe_histogram!(STEP_DURATION, Unit::Seconds, "Step attempt wall-clock time");
    describe_histogram!(STEP_FUEL, Unit::Count, "Fuel consumed by a metered attempt");
    describe_histogram!(STEP_MEMORY, Unit::Bytes, "Peak linear memory of an attempt");
    describe_counter!(STEP_FAILURES, "Failed attempts by typed failure kind");
    describe_counter!(STEP_RETRIES, "Attempts after the first");
    describe_counter!(RUNS, "Runs that ended, by status");
    describe_gauge!(QUEUE_DEPTH, "Runs admitted and waiting for a worker");
    describe_gauge!(RUNS_ACTIVE, "Runs being driven");
    describe_counter!(
        QUEUE_REJECTED,
        "Submissions refused because the queue was full"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    describe_counter!(RELOAD_FAILURES, "Files that failed to load on a reload");
    describe_counter!(RELOADS, "Versions swapped in by a reload");
    describe_gauge!(
        MODEL_BREAKER,
        "Circuit breaker per provider: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(MODEL_RETRIES, "Model call attempts after the first");
    describe_counter!(
        MODEL_CALLS,
        "Model calls by provider, alias and outcome (ok, cached, or the failure kind)"
    );
    describe_counter!(
        MODEL_TOKENS,
        "Model tokens by provider, alias and direction"
    );
    describe_counter!(MODEL_COST, "Model spend in millionths of a US dollar");
    describe_counter!(
        SHADOW_TOTAL,
        "Shadow steps run, by workflow, step, candidate and outcome"
    );
    describe_gauge!(
        ROLLOUT_WEIGHT,
        "The candidate's share of new runs under a rollout, in percent"
    );
    describe_counter!(
        ROLLOUT_EVENTS,
        "Rollout changes, by the state they left it in"
    );
}

/// Counts a shadow's result.
pub(crate) fn shadow(result: &crate::store::ShadowResult) {
    let candidate: String = result.candidate.chars().take(12).collect();
    counter!(SHADOW_TOTAL, "workflow" => result.workflow.clone(), "step" => result.step_id.clone(), "candidate" => candidate, "outcome" => result.outcome.clone())
        .increment(1);
}

/// Records a rollout's change.
pub(crate) fn rollout_changed(rollout: &crate::rollout::Rollout) {
    gauge!(ROLLOUT_WEIGHT, "workflow" => rollout.workflow.clone(), "rollout" => rollout.id.clone())
        .set(f64::from(rollout.weight));
    counter!(ROLLOUT_EVENTS, "workflow" => rollout.workflow.clone(), "state" => rollout.state.as_str())
        .increment(1);
}

/// Records a finished attempt.
pub(crate) fn attempt_finished(workflow: &str, version: &str, result: &AttemptResult) {
    let (outcome, kind) = match &result.outcome {
        AttemptOutcome::Succeeded { .. } => ("succeeded", None),
        AttemptOutcome::Failed(failure) => (
            "failed",
            Some(
                failure
                    .get("kind")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
            ),
        ),
    };
    let labels = [
        ("workflow", workflow.to_string()),
        ("version", version.to_string()),
        ("step", result.step_id.clone()),
    ];
    histogram!(
        STEP_DURATION,
        &[&labels[..], &[("outcome", outcome.to_string())]].concat()
    )
    .record(result.latency_us as f64 / 1e6);
    histogram!(STEP_MEMORY, &labels).record(result.memory_peak as f64);
    if let Some(fuel) = result.fuel {
        histogram!(STEP_FUEL, &labels).record(fuel as f64);
    }
    if let Some(kind) = kind {
        counter!(STEP_FAILURES, &[&labels[..], &[("kind", kind)]].concat()).increment(1);
    }
    if result.attempt > 1 {
        counter!(STEP_RETRIES, &labels).increment(1);
    }
}

/// Records a run's end.
pub(crate) fn run_ended(workflow: &str, version: &str, status: RunStatus) {
    counter!(
        RUNS,
        "workflow" => workflow.to_string(),
        "version" => version.to_string(),
        "status" => status.as_str(),
    )
    .increment(1);
}

/// Sets the queue gauges.
pub(crate) fn queue(waiting: usize, active: usize) {
    gauge!(QUEUE_DEPTH).set(waiting as f64);
    gauge!(RUNS_ACTIVE).set(active as f64);
}

/// Records a provider's breaker state.
pub(crate) fn breaker(provider: &str, state: crate::model::BreakerState) {
    let value = match state {
        crate::model::BreakerState::Closed => 0.0,
        crate::model::BreakerState::HalfOpen => 1.0,
        crate::model::BreakerState::Open => 2.0,
    };
    gauge!(MODEL_BREAKER, "provider" => provider.to_string()).set(value);
}

/// Counts a model call retry.
pub(crate) fn model_retry(provider: &str, kind: &'static str) {
    counter!(MODEL_RETRIES, "provider" => provider.to_string(), "kind" => kind).increment(1);
}

pub(crate) fn model_call(
    provider: &str,
    alias: &str,
    outcome: &str,
    usage: crate::model::TokenUsage,
    cost_micros: i64,
) {
    let labels = [
        ("provider", provider.to_string()),
        ("alias", alias.to_string()),
    ];
    counter!(MODEL_CALLS, "provider" => provider.to_string(), "alias" => alias.to_string(), "outcome" => outcome.to_string()).increment(1);
    counter!(MODEL_TOKENS, "provider" => provider.to_string(), "alias" => alias.to_string(), "direction" => "input").increment(usage.prompt_tokens);
    counter!(MODEL_TOKENS, "provider" => provider.to_string(), "alias" => alias.to_string(), "direction" => "output").increment(usage.completion_tokens);
    counter!(MODEL_COST, &labels).increment(cost_micros.max(0) as u64);
}
