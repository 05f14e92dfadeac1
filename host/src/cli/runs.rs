//! `weir runs list`, `weir runs show` and `weir runs purge`: what the journal knows, and
//! forgetting the payloads it no longer needs to.

use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::json;

use super::data::DataArgs;
use super::summary;
use crate::Host;
use crate::store::{RunFilter, RunStatus};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List runs, newest first.
    List {
        /// Only runs in this status (pending, running, awaiting_review, succeeded, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one run: input, output, steps and the timeline of its events.
    Show {
        /// The run id.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Purge the payloads (input, outputs, logs, state, review data, model requests and
    /// responses) of ended runs, keeping their metadata and costs. By default each
    /// workflow's `[retention] payloads` applies; `--older-than` overrides it.
    Purge {
        /// Purge every ended run older than this (e.g. 30d, 12h), retention or not.
        #[arg(long, value_parser = crate::limits::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Shadow results, newest first: each shadowed step's outcome against its live attempt.
    Shadows {
        /// Only this workflow's.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this run's.
        #[arg(long)]
        run: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn execute(
    _host: &Host,
    data: &DataArgs,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let store = data.existing_store().await?;
    match command {
        Command::List {
            status,
            workflow,
            limit,
            json,
        } => {
            let status = status
                .map(|s| s.parse::<RunStatus>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let runs = store
                .list_runs(&RunFilter {
                    status,
                    workflow,
                    limit: Some(limit),
                    ..RunFilter::default()
                })
                .await?;
            if json {
                outln!("{}", super::render::pretty_json(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new();
            table
                .load_preset(UTF8_BORDERS_ONLY)
                .set_header(["run", "workflow", "status", "created"]);
            for run in &runs {
                table.add_row([
                    run.id.clone(),
                    format!("{}@{}", run.workflow, run.version),
                    run.status.to_string(),
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(run.created_ms as u64),
                    )
                    .to_string(),
                ]);
            }
            outln!("{table}");
        }
        Command::Purge {
            older_than,
            workflow,
        } => purge(store.as_ref(), older_than, workflow).await?,
        Command::Shadows {
            workflow,
            run,
            limit,
            json,
        } => {
            let results = store
                .shadows()
                .shadow_results(workflow.as_deref(), run.as_deref(), limit)
                .await?;
            if json {
                outln!("{}", super::render::pretty_json(&results)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY).set_header([
                "run",
                "workflow",
                "step",
                "candidate",
                "outcome",
                "live cost of the shadow",
            ]);
            for r in &results {
                table.add_row([
                    r.run_id.clone(),
                    format!("{}@{}", r.workflow, r.version),
                    r.step_id.clone(),
                    r.candidate.chars().take(12).collect(),
                    r.outcome.clone(),
                    format!("${:.6}", r.cost_micros as f64 / 1e6),
                ]);
            }
            outln!("{table}");
        }
        Command::Show { id, json } => {
            let run = store
                .get_run(&id)
                .await?
                .with_context(|| format!("no run {id} in {}", data.data_dir.display()))?;
            let steps = store.steps(&id).await?;
            let attempts = store.attempts(&id).await?;
            let events = store.events(&id).await?;
            let calls = store.model_calls(&id).await?;
            if json {
                outln!(
                    "{}",
                    super::render::pretty_json(
                        &json!({"run": run, "steps": steps, "attempts": attempts, "events": events, "model_calls": calls, "redacted": crate::redaction::listed(&events)})
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "run {} · {}@{} · {}",
                run.id,
                run.workflow,
                run.version,
                run.status
            );
            if let Some(source) = &run.source_run {
                outln!("rerun of {source} (`weir runs show {source}`)");
            }
            let json = |v: &serde_json::Value| crate::text::json_for_terminal(v.to_string());
            outln!("input   {}", json(&run.input));
            if let Some(output) = &run.output {
                outln!("output  {}", json(output));
            }
            if run.failure.is_some() || run.review.is_some() {
                outln!("{}", summary::failure_line(&run));
            }
            let redacted = crate::redaction::listed(&events);
            if !redacted.is_empty() {
                outln!("redacted {}", crate::redaction::describe(&redacted));
            }
            outln!("{}", summary::table(&steps, &attempts, &calls));
            let budget =
                match crate::registry::load_definition(store.as_ref(), &run.workflow, &run.version)
                    .await
                {
                    Ok(wf) => {
                        data.models()?
                            .config()
                            .budgets
                            .overridden_by(&wf.budgets)
                            .run
                    }
                    Err(_) => None,
                };
            if let Some(line) = summary::model_line(&calls, budget) {
                outln!("{line}");
            }
            outln!("timeline");
            let start = events.first().map_or(0, |e| e.at_ms);
            for e in &events {
                let step = e
                    .step_id
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default();
                let data = if e.data.is_null() {
                    String::new()
                } else {
                    format!(" {}", json(&e.data))
                };
                outln!("  +{:>6}ms  {}{step}{data}", e.at_ms - start, e.kind);
            }
            for step in steps.iter().filter(|s| s.output.is_some()) {
                outln!(
                    "step {} output: {}",
                    step.step_id,
                    step.output.as_ref().map(json).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn purge(
    store: &dyn crate::store::Store,
    older_than: Option<std::time::Duration>,
    workflow: Option<String>,
) -> anyhow::Result<()> {
    let purged = match older_than {
        Some(keep) => {
            let runs = crate::retention::purge_older_than(store, workflow.as_deref(), keep).await?;
            std::collections::BTreeMap::from([(
                workflow.unwrap_or_else(|| "every workflow".into()),
                runs,
            )])
        }
        None => {
            // `--workflow` narrows the policies, not just what is reported.
            let mut policies = crate::retention::policies(store).await?;
            if let Some(only) = &workflow {
                policies.retain(|name, _| name == only);
            }
            if policies.is_empty() {
                outln!("no workflow declares [retention]; give --older-than to purge runs anyway");
                return Ok(());
            }
            crate::retention::apply_policies(store, &policies).await?
        }
    };
    let total: usize = purged.values().map(Vec::len).sum();
    for (workflow, runs) in &purged {
        if !runs.is_empty() {
            outln!("{workflow}: purged the payloads of {} run(s)", runs.len());
        }
    }
    outln!("purged {total} run(s); their metadata and costs are kept");
    Ok(())
}
