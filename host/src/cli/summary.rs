//! Tables and lines that summarize a run for people.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use super::render::{count, size};
use crate::store::{AttemptRecord, ModelCallRecord, RunRecord, StepRecord, usd};

/// Per step: status, attempts, latency, fuel, memory, and when the run called models, its
/// model calls, tokens and cost; then the run's totals.
pub(crate) fn table(
    steps: &[StepRecord],
    attempts: &[AttemptRecord],
    calls: &[ModelCallRecord],
) -> String {
    let mut table = Table::new();
    let mut header = vec![
        "step",
        "status",
        "attempts",
        "latency",
        "fuel",
        "memory peak",
    ];
    if !calls.is_empty() {
        header.extend(["model calls", "tokens in/out", "cost"]);
    }
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
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
        let mut row = vec![
            step.step_id.clone(),
            status,
            step.attempts.to_string(),
            latency.map_or("-".into(), micros),
            fuel.map_or("-".into(), count),
            memory.map_or("-".into(), size),
        ];
        if !calls.is_empty() {
            let mine: Vec<&ModelCallRecord> =
                calls.iter().filter(|c| c.step_id == step.step_id).collect();
            row.extend(model_cells(&mine));
        }
        table.add_row(row);
    }
    let mut total = vec![
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
    ];
    if !calls.is_empty() {
        total.extend(model_cells(&calls.iter().collect::<Vec<_>>()));
    }
    table.add_row(total);
    table.to_string()
}

/// Calls (with cache hits, upstream retries, fallbacks and refusals), tokens and cost.
fn model_cells(calls: &[&ModelCallRecord]) -> [String; 3] {
    if calls.is_empty() {
        return ["-".into(), "-".into(), "-".into()];
    }
    let cached = calls.iter().filter(|c| c.outcome == "cached").count();
    let retries: u32 = calls
        .iter()
        .map(|c| c.upstream_attempts.saturating_sub(1))
        .sum();
    let failed = calls
        .iter()
        .filter(|c| c.outcome != "ok" && c.outcome != "cached")
        .count();
    let mut notes = Vec::new();
    if cached > 0 {
        notes.push(format!("{cached} cached"));
    }
    if retries > 0 {
        notes.push(format!("{retries} retries"));
    }
    if failed > 0 {
        notes.push(format!("{failed} failed"));
    }
    let calls_cell = if notes.is_empty() {
        calls.len().to_string()
    } else {
        format!("{} ({})", calls.len(), notes.join(", "))
    };
    let tokens_in: u64 = calls.iter().map(|c| c.prompt_tokens).sum();
    let tokens_out: u64 = calls.iter().map(|c| c.completion_tokens).sum();
    let cost: i64 = calls.iter().map(|c| c.cost_micros).sum();
    [calls_cell, format!("{tokens_in}/{tokens_out}"), usd(cost)]
}

/// One line on the run's model use: cost against its budget, and every call that did not
/// simply succeed (failures by kind, breaker refusals, fallback aliases taken).
pub(crate) fn model_line(calls: &[ModelCallRecord], run_budget: Option<f64>) -> Option<String> {
    if calls.is_empty() {
        return None;
    }
    let cost: i64 = calls.iter().map(|c| c.cost_micros).sum();
    let mut line = format!("model cost {}", usd(cost));
    if let Some(budget) = run_budget {
        line += &format!(" of a {} run budget", usd((budget * 1e6) as i64));
    }
    let breaker = calls
        .iter()
        .filter(|c| c.upstream_attempts == 0 && c.outcome == "unavailable")
        .count();
    if breaker > 0 {
        line += &format!(" · {breaker} call(s) refused by an open circuit breaker");
    }
    for c in calls
        .iter()
        .filter(|c| c.outcome != "ok" && c.outcome != "cached")
    {
        line += &format!(
            "\n  {} attempt {} `{}`: {} — {}",
            c.step_id,
            c.attempt,
            c.alias,
            c.outcome,
            crate::text::escape_for_terminal(c.error.as_deref().unwrap_or(""))
        );
    }
    Some(line)
}

fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else {
        format!("{:.1}ms", us as f64 / 1e3)
    }
}

/// `failed at step x: <failure>` for runs that did not succeed; for a parked run, the step
/// it waits at, why, and how to decide it.
pub(crate) fn failure_line(run: &RunRecord) -> String {
    if let Some(waiting) = &run.review {
        let step = waiting["step"].as_str().unwrap_or("?");
        let why = waiting["review"]
            .as_str()
            .or_else(|| waiting["failure"]["message"].as_str())
            .unwrap_or("the step asked for a review");
        return format!(
            "run {} awaits review at step `{step}`: {why}\n  list it with `weir review list`; decide it with `weir review approve <review-id>`, `weir review edit <review-id> --output <json>` or `weir review reject <review-id> --reason <why>`",
            run.id
        );
    }
    let Some(failure) = &run.failure else {
        return format!(
            "run {} is {}",
            run.id,
            run.status.to_string().replace('_', " ")
        );
    };
    let step = failure["step"].as_str().unwrap_or("?");
    let message = failure["failure"]["message"]
        .as_str()
        .or_else(|| failure["reason"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| failure["failure"].to_string());
    // The message is mostly the step's own words.
    let message = crate::text::escape_for_terminal(&message);
    match failure["failure"]["kind"].as_str() {
        Some(kind) => format!(
            "run {} {} at step `{step}` ({kind}): {message}",
            run.id,
            run.status.to_string().replace('_', " ")
        ),
        // A cancellation carries only its reason.
        None => format!("run {} {}: {message}", run.id, run.status),
    }
}
