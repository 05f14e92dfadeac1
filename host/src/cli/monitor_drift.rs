//! `weir monitor status`, `check` and `baseline`: each step's drift verdict, an exit code for
//! cron or CI, and the baselines the verdicts compare with.

use std::process::ExitCode;

use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;

use super::EXIT_STEP_FAILED;
use super::render::{self, time};
use crate::monitor::drift::Status;
use crate::monitor::status::{self, StepDrift};
use crate::store::{BaselinePin, Store};

/// Prints every step's verdict (one step's when `step` is given) as a table or JSON.
pub(super) async fn print_status(
    store: &dyn Store,
    workflow: &str,
    step: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut steps = status::of_workflow(store, workflow, crate::store::now_ms()).await?;
    steps.retain(|s| step.is_none_or(|want| s.step_id == want));
    if json {
        outln!("{}", render::pretty_json(&steps)?);
        return Ok(ExitCode::SUCCESS);
    }
    if steps.is_empty() {
        outln!(
            "no step of {workflow} has a profile yet (its steps' results are counted as runs finish them)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for s in &steps {
        outln!("{}", heading(s));
        if !s.judged.features.is_empty() {
            outln!("{}", features(s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 (and a line per step) when a step's status reaches `fail_on`; 0 otherwise.
pub(super) async fn check(
    store: &dyn Store,
    workflow: &str,
    fail_on: Status,
) -> anyhow::Result<ExitCode> {
    let steps = status::of_workflow(store, workflow, crate::store::now_ms()).await?;
    let failing: Vec<&StepDrift> = steps
        .iter()
        .filter(|s| s.judged.status >= fail_on)
        .collect();
    for s in &steps {
        outln!("{}", heading(s));
    }
    if failing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} of {} steps of {workflow} are at {} or worse",
        failing.len(),
        steps.len(),
        fail_on.as_str()
    );
    Ok(ExitCode::from(EXIT_STEP_FAILED))
}

/// Prints every version's current baseline per step and the history of pins.
pub(super) async fn show_baselines(
    store: &dyn Store,
    workflow: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let steps = status::of_workflow(store, workflow, crate::store::now_ms()).await?;
    let pins = store.monitor().baseline_pins(workflow).await?;
    if json {
        let current: Vec<_> = steps
            .iter()
            .map(|s| serde_json::json!({"version": s.version, "step_id": s.step_id, "baseline": s.baseline}))
            .collect();
        outln!(
            "{}",
            render::pretty_json(&serde_json::json!({"current": current, "pins": pins}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "version",
        "step",
        "baseline",
        "of version",
        "windows",
        "results",
    ]);
    for s in &steps {
        let (how, of, span, n) = match &s.baseline {
            Some(b) => (
                b.how.clone(),
                b.version.clone(),
                window_span(b.span.from_ms, b.span.to_ms),
                b.span.n.to_string(),
            ),
            None => (
                "none yet".into(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        table.add_row([s.version.clone(), s.step_id.clone(), how, of, span, n]);
    }
    outln!("{table}");
    for p in &pins {
        outln!(
            "pinned {}@{} to {}'s windows {} by {} at {}: {}",
            p.workflow,
            p.version,
            p.source_version,
            window_span(p.from_ms, p.to_ms),
            p.pinned_by,
            time(p.pinned_ms),
            p.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Journals a pin.
pub(super) async fn pin(store: &dyn Store, pin: BaselinePin) -> anyhow::Result<ExitCode> {
    store.monitor().pin_baseline(&pin).await?;
    outln!(
        "pinned the baseline of {}@{}: {}'s windows {}",
        pin.workflow,
        pin.version,
        pin.source_version,
        window_span(pin.from_ms, pin.to_ms)
    );
    Ok(ExitCode::SUCCESS)
}

fn heading(s: &StepDrift) -> String {
    let against = match &s.baseline {
        Some(b) => format!(
            "against {} ({}, {} results)",
            if b.how == "previous" {
                format!("{}'s baseline", b.version)
            } else {
                format!("its {} baseline", b.how)
            },
            window_span(b.span.from_ms, b.span.to_ms),
            b.span.n
        ),
        None => "no baseline yet".to_string(),
    };
    let latest = s
        .judged
        .latest
        .map(|l| {
            format!(
                "; latest {} results in {}",
                l.n,
                window_span(l.from_ms, l.to_ms)
            )
        })
        .unwrap_or_default();
    format!(
        "{} ({}): {} {against}{latest}; {} waiting",
        s.step_id,
        s.version,
        s.judged.status.as_str(),
        s.judged.pending
    )
}

fn features(s: &StepDrift) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "feature",
        "stat",
        "score",
        "threshold",
        "p",
        "n",
        "evidence",
        "alert",
    ]);
    for f in &s.judged.features {
        table.add_row([
            f.feature.clone(),
            f.stat.clone(),
            format!("{:.4}", f.score),
            format!("{:.4}", f.threshold),
            format!("{:.2e}", f.p_value),
            f.n.to_string(),
            f.evidence.clone(),
            match f.alert_since_ms {
                Some(since) if f.alert => format!("open since {}", time(since)),
                _ if f.alert => "open".into(),
                _ => String::new(),
            },
        ]);
    }
    table
}

fn window_span(from_ms: i64, to_ms: i64) -> String {
    format!("{} – {}", time(from_ms), time(to_ms))
}
