//! `weir eval`: a candidate against recorded runs, answers from the record, with the
//! summary as a table, JSON or a self-contained HTML report, and `--gate` for CI. Exit 0 when
//! the gate passes (or there is none), 1 when it fails, 2 on an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::data::DataArgs;
use super::render;
use crate::Host;
use crate::eval::{Experiment, Gate, Selection};
use crate::replay::{Matching, OnMiss, Options};
use crate::store::RunStatus;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The workflow whose recorded runs are the cases: `name`, or `name@version` for the
    /// runs of one version only.
    #[arg(long, value_name = "NAME[@VERSION]")]
    workflow: String,
    /// Only runs that ended in this status (succeeded, failed, awaiting_review, cancelled).
    #[arg(long)]
    status: Option<String>,
    /// Only runs created within this long, e.g. `7d`, `12h`.
    #[arg(long, value_name = "DURATION")]
    since: Option<humantime::Duration>,
    /// Only runs where some step took this route.
    #[arg(long)]
    route: Option<String>,
    /// Only runs that had a review (or, with `--reviewed=false`, none).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    reviewed: Option<bool>,
    /// At most this many cases.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Spread the cases evenly over the recorded runs' routes.
    #[arg(long, value_parser = ["route"])]
    stratify: Option<String>,
    /// Run this plugin (a .wasm file, or `sha256:<digest>` of a stored one) for step ID.
    #[arg(long = "step", value_name = "ID=PLUGIN")]
    steps: Vec<String>,
    /// Run the recorded inputs through this workflow instead: a file, or `name@version`.
    #[arg(long, value_name = "FILE|NAME@VERSION")]
    candidate: Option<String>,
    /// A call the record cannot answer: refuse it, make it for real (GET only for HTTP;
    /// model calls pay from --budget-usd), or leave the case out.
    #[arg(long, value_enum, default_value_t = OnMiss::Fail)]
    on_miss: OnMiss,
    /// What live model calls may spend over the whole evaluation, in dollars.
    #[arg(long, default_value_t = 1.0)]
    budget_usd: f64,
    /// First replay this many of the selected runs as recorded with every model call made
    /// again (paid from a --budget-usd of its own): the A/A noise floor.
    #[arg(long, value_name = "N")]
    aa: Option<usize>,
    /// A JSON Pointer left out of every output comparison (repeatable), e.g. `/generated_at`.
    #[arg(long, value_name = "POINTER")]
    ignore: Vec<String>,
    /// A CEL condition over the summary that must hold, e.g.
    /// 'route_agreement.lo >= 0.95 && errors == 0'; exit 1 when it does not.
    #[arg(long, value_name = "CEL")]
    gate: Option<String>,
    /// Print the whole experiment as JSON.
    #[arg(long)]
    json: bool,
    /// Write the whole experiment as JSON to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write a self-contained HTML report to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let gate = args.gate.as_deref().map(Gate::compile).transpose()?;
    for pointer in &args.ignore {
        anyhow::ensure!(
            pointer.starts_with('/'),
            "--ignore {pointer}: a JSON Pointer starts with `/` (e.g. /generated_at)"
        );
    }
    let runner = data.existing_runner(host).await?;
    let store = runner.store();
    let (steps, workflow) = candidate(host, store, &args.steps, args.candidate.as_deref()).await?;
    let status = args
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--status: {e}"))?;
    let (workflow_name, version) = match args.workflow.split_once('@') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (args.workflow.clone(), None),
    };
    let selection = Selection {
        workflow: workflow_name,
        version,
        status,
        since_ms: args
            .since
            .map(|d| crate::store::now_ms() - d.as_millis() as i64),
        route: args.route.clone(),
        reviewed: args.reviewed,
        limit: args.limit,
        stratify_by_route: args.stratify.is_some(),
    };
    let label = candidate_label(&args);
    let options = Options {
        matching: Matching::Request(args.on_miss),
        steps,
        workflow,
        budget_usd: Some(args.budget_usd),
        fresh_models: false,
    };
    let mut experiment = crate::eval::evaluate(
        host,
        store,
        runner.models(),
        &selection,
        &options,
        &args.ignore,
        label,
    )
    .await?;
    if experiment.summary.cases == 0 {
        anyhow::bail!(
            "no recorded run of workflow `{}` matches the selection",
            args.workflow
        );
    }
    if let Some(n) = args.aa.filter(|n| *n > 0) {
        experiment.summary.aa = Some(
            crate::eval::noise_floor(
                host,
                store,
                runner.models(),
                &selection,
                n,
                args.budget_usd,
                &args.ignore,
            )
            .await?,
        );
    }
    // Every experiment is journaled, to be listed and read again (`weir experiments`).
    let id = uuid::Uuid::now_v7().to_string();
    let record = crate::store::ExperimentRecord {
        id: id.clone(),
        workflow: experiment.workflow.clone(),
        candidate: experiment.candidate.clone(),
        created_ms: crate::store::now_ms(),
        summary: serde_json::to_value(&experiment.summary)?,
    };
    store
        .experiments()
        .save_experiment(&record, &serde_json::to_value(&experiment)?)
        .await?;
    eprintln!("journaled as experiment {id} (weir experiments show {id})");
    if let Some(path) = &args.out {
        std::fs::write(path, render::pretty_json(&experiment)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, crate::eval::report::html(&experiment)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        outln!("{}", render::pretty_json(&experiment)?);
    } else {
        print(&experiment);
    }
    let passed = match &gate {
        Some(gate) => {
            let passed = gate.passes(&experiment.summary)?;
            let verdict = if passed { "passed" } else { "FAILED" };
            eprintln!(
                "gate {verdict}: {}",
                args.gate.as_deref().unwrap_or_default()
            );
            passed
        }
        None => true,
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_STEP_FAILED)
    })
}

/// The plugins (`--step ID=PLUGIN`, a .wasm file or `sha256:<digest>` of a stored one) and
/// the workflow (`--candidate FILE|NAME@VERSION`) a candidate is made of; at least one.
pub(super) async fn candidate(
    host: &Host,
    store: &Arc<dyn crate::store::Store>,
    step_specs: &[String],
    candidate: Option<&str>,
) -> anyhow::Result<(
    HashMap<String, crate::plugin::Plugin>,
    Option<Arc<crate::registry::Loaded>>,
)> {
    let mut steps = HashMap::new();
    for spec in step_specs {
        let (id, plugin) = spec
            .split_once('=')
            .with_context(|| format!("--step {spec}: expected ID=PLUGIN"))?;
        let plugin = match plugin.strip_prefix("sha256:") {
            Some(digest) => {
                crate::registry::load_plugin(host, store.as_ref(), digest, &format!("--step {id}"))
                    .await?
            }
            None => host.load_plugin_file(Path::new(plugin)).await?,
        };
        steps.insert(id.to_string(), plugin);
    }
    let workflow = match candidate {
        None => None,
        Some(c) if Path::new(c).exists() => Some(Arc::new(
            crate::registry::check_file(host, store.as_ref(), Path::new(c)).await?,
        )),
        Some(c) => {
            let (name, version) = c.split_once('@').with_context(|| {
                format!("--candidate {c}: not a file, nor `name@version` of a registered workflow")
            })?;
            Some(Arc::new(
                crate::registry::load_registered(host, store.as_ref(), name, Some(version)).await?,
            ))
        }
    };
    anyhow::ensure!(
        !steps.is_empty() || workflow.is_some(),
        "name a candidate: --step ID=PLUGIN (repeatable) or --candidate FILE|NAME@VERSION"
    );
    Ok((steps, workflow))
}

fn candidate_label(args: &Args) -> String {
    let mut parts: Vec<String> = args.steps.clone();
    if let Some(c) = &args.candidate {
        parts.insert(0, c.clone());
    }
    parts.join(", ")
}

fn print(experiment: &Experiment) {
    let s = &experiment.summary;
    let pct = |r: &crate::eval::stats::Rate| {
        format!(
            "{:.1}% ({}/{}, 95% CI {:.1}–{:.1}%)",
            r.rate * 100.0,
            r.hits,
            r.n,
            r.lo * 100.0,
            r.hi * 100.0
        )
    };
    outln!(
        "evaluation of {} on {} recorded runs of {} ({} evaluated, {} skipped)",
        experiment.candidate,
        s.cases,
        experiment.workflow,
        s.evaluated,
        s.skipped
    );
    outln!("  output agreement   {}", pct(&s.output_agreement));
    outln!("  route agreement    {}", pct(&s.route_agreement));
    if let Some(aa) = &s.aa {
        outln!(
            "  A/A noise floor    output {}, route {} ({} runs, {} live calls, ${:.4})",
            pct(&aa.output_agreement),
            pct(&aa.route_agreement),
            aa.runs,
            aa.live_calls,
            aa.cost_usd
        );
    }
    outln!(
        "  confidence shift   {:+.3} (95% CI {:+.3} to {:+.3}, {} steps)",
        s.confidence_shift.mean,
        s.confidence_shift.lo,
        s.confidence_shift.hi,
        s.confidence_shift.n
    );
    outln!(
        "  review rate        {:.1}% → {:.1}%",
        s.review_rate.baseline * 100.0,
        s.review_rate.candidate * 100.0
    );
    outln!(
        "  cost per run       ${:.6} → ${:.6} ({:+.1}%), p95 ${:.6} → ${:.6}",
        s.cost_per_run.baseline_mean,
        s.cost_per_run.candidate_mean,
        s.cost_per_run.delta_pct,
        s.cost_per_run.baseline_p95,
        s.cost_per_run.candidate_p95
    );
    outln!(
        "  step time per run  {:.2} ms → {:.2} ms",
        s.latency_per_run.baseline_mean,
        s.latency_per_run.candidate_mean
    );
    if let Some(a) = &s.accuracy {
        outln!(
            "  vs human decisions {} → {}",
            pct(&a.baseline),
            pct(&a.candidate)
        );
    }
    outln!(
        "  new failures {}, errors {}, calls answered {} / missed {} / live {}",
        s.new_failures,
        s.errors,
        s.calls.get("answered").unwrap_or(&0),
        s.calls.get("missed").unwrap_or(&0),
        s.calls.get("live").unwrap_or(&0)
    );
    for (step, rows) in &s.confusion {
        outln!("  routes of {step} (recorded → candidate):");
        for (from, to) in rows {
            let cells: Vec<String> = to.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            outln!("    {from:<16} → {}", cells.join(", "));
        }
    }
    let regressions: Vec<_> = experiment
        .cases
        .iter()
        .filter(|c| !c.regressions.is_empty())
        .collect();
    if !regressions.is_empty() {
        outln!("regressions ({}):", regressions.len());
        for case in regressions.iter().take(20) {
            outln!("  {}: {}", case.run_id, case.regressions.join("; "));
        }
    }
    for case in experiment
        .cases
        .iter()
        .filter(|c| c.error.is_some())
        .take(5)
    {
        outln!(
            "  could not evaluate {}: {}",
            case.run_id,
            case.error.as_deref().unwrap_or_default()
        );
    }
}
