//! Tables and lines that summarize a run for people.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use super::render::{count, size};
use crate::store::{AttemptRecord, RunRecord, StepRecord};

/// Per step: status, attempts, latency, fuel, memory; then the run's totals.
pub(crate) fn table(steps: &[StepRecord], attempts: &[AttemptRecord]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "step",
        "status",
        "attempts",
        "latency",
        "fuel",
        "memory peak",
    ]);
    let (mut total_us, mut total_fuel, mut peak) = (0u64, 0u64, 0u64);
    for step in steps {
        let last = attempts
            .iter()
            .filter(|a| a.step_id == step.step_id)
            .max_by_key(|a| a.attempt);
        let latency = last.and_then(|a| a.latency_us);
        let fuel = last.and_then(|a| a.fuel);
        let memory = last.and_then(|a| a.memory_peak);
        total_us += latency.unwrap_or(0);
        total_fuel += fuel.unwrap_or(0);
        peak = peak.max(memory.unwrap_or(0));
        let status = match &step.skip_reason {
            Some(_) => "skipped".to_string(),
            None => step.status.to_string(),
        };
        table.add_row([
            step.step_id.clone(),
            status,
            step.attempts.to_string(),
            latency.map_or("-".into(), micros),
            fuel.map_or("-".into(), count),
            memory.map_or("-".into(), size),
        ]);
    }
    table.add_row([
        "total".into(),
        String::new(),
        attempts.len().to_string(),
        micros(total_us),
        if total_fuel > 0 {
            count(total_fuel)
        } else {
            "-".into()
        },
        size(peak),
    ]);
    table.to_string()
}

fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else {
        format!("{:.1}ms", us as f64 / 1e3)
    }
}

/// `failed at step x: <failure>` for runs that did not succeed.
pub(crate) fn failure_line(run: &RunRecord) -> String {
    let Some(failure) = &run.failure else {
        return format!("run {} is {}", run.id, run.status);
    };
    let step = failure["step"].as_str().unwrap_or("?");
    let message = failure["failure"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| failure["failure"].to_string());
    let kind = failure["failure"]["kind"].as_str().unwrap_or("?");
    format!(
        "run {} {} at step `{step}` ({kind}): {message}",
        run.id,
        run.status.to_string().replace('_', " ")
    )
}
