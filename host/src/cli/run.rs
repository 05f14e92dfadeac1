//! `weir run`: register a workflow file (or pick a registered version), submit a run, drive
//! it to the end with a live display of its steps, and print its output and a summary.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use super::args::read_input;
use super::data::DataArgs;
use super::live::Live;
use super::{EXIT_AWAITING_REVIEW, EXIT_ERROR, EXIT_STEP_FAILED, summary};
use crate::Host;
use crate::registry::{self, RegistryError};
use crate::runner::SubmitError;
use crate::store::RunStatus;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A workflow file (registered on the way), or `name[@version]` of a registered workflow
    /// (latest version by default).
    workflow: String,
    /// The input: a JSON file, `-` for stdin, or JSON text.
    #[arg(long, short)]
    input: String,
    /// Submitting again with the same key returns the existing run instead of a new one.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Print the run, its steps and attempts as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// A plain run of `workflow` on `input`, as `weir dev` makes on every save.
    pub(crate) fn new(workflow: String, input: String) -> Self {
        Self {
            workflow,
            input,
            idempotency_key: None,
            json: false,
        }
    }
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let (input, origin) = read_input(&args.input)?;
    let input: serde_json::Value =
        serde_json::from_str(&input).with_context(|| format!("input from {origin}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = data.runner(host).await?.with_progress(tx);
    let store = runner.store().clone();
    for warning in per_process_limits(runner.models().config()) {
        eprintln!("warning: {warning}");
    }

    let loaded = if args.workflow.ends_with(".toml") || Path::new(&args.workflow).is_file() {
        registry::register_file(host, store.as_ref(), Path::new(&args.workflow))
            .await
            .map(|(loaded, _)| loaded)
    } else {
        let (name, version) = match args.workflow.split_once('@') {
            Some((name, version)) => (name, Some(version.to_string())),
            None => (args.workflow.as_str(), None),
        };
        // Without a version, the workflow's rollout (if it ever had one) decides.
        let version = match version {
            Some(v) => Some(v),
            None => crate::rollout::driver::choose(
                store.as_ref(),
                name,
                args.idempotency_key.as_deref(),
                &uuid::Uuid::now_v7().to_string(),
            )
            .await?
            .map(|(version, _, _)| version),
        };
        registry::load_registered(host, store.as_ref(), name, version.as_deref()).await
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(RegistryError::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(RegistryError::Store(e)) => return Err(e),
    };

    let quiet = args.json;
    let steps: Vec<String> = loaded.workflow.steps.iter().map(|s| s.id.clone()).collect();
    // The live display starts once the run's line is printed, which is once it exists.
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let printer = tokio::spawn(async move {
        if ready.await.is_err() {
            return;
        }
        let mut live = Live::new(&steps, quiet);
        while let Some(event) = rx.recv().await {
            live.show(&event);
        }
        live.finish();
    });
    let budget = runner
        .models()
        .config()
        .budgets
        .overridden_by(&loaded.workflow.budgets)
        .run;
    let workflow_id = loaded.workflow.id();
    let announce = move |run: &crate::store::RunRecord, created: bool| {
        if !quiet {
            let note = if created {
                ""
            } else {
                " (existing run for this idempotency key)"
            };
            eprintln!("run {} · {workflow_id}{note}", run.id);
        }
        let _ = go.send(());
    };
    let run = match runner
        .submit_and_execute(&loaded, input, args.idempotency_key.clone(), announce)
        .await
    {
        Ok(run) => run,
        Err(SubmitError::InvalidInput {
            workflow,
            violations,
        }) => {
            eprintln!(
                "error: the input from {origin} does not match the input schema of {workflow}:"
            );
            for v in violations {
                eprintln!("  - {}", crate::text::escape_for_terminal(&v));
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(SubmitError::Idempotency(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(SubmitError::Store(e) | SubmitError::Execute(e)) => return Err(e),
    };
    drop(runner);
    let _ = printer.await;

    let steps = store.steps(&run.id).await?;
    let attempts = store.attempts(&run.id).await?;
    let calls = store.model_calls(&run.id).await?;
    if args.json {
        outln!(
            "{}",
            super::render::pretty_json(
                &json!({"run": run, "steps": steps, "attempts": attempts, "model_calls": calls})
            )?
        );
    } else {
        eprintln!("{}", summary::table(&steps, &attempts, &calls));
        if let Some(line) = summary::model_line(&calls, budget) {
            eprintln!("{line}");
        }
        match run.status {
            RunStatus::Succeeded => outln!("{}", super::render::pretty_json(&run.output)?),
            _ => eprintln!("{}", summary::failure_line(&run)),
        }
    }
    Ok(match run.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::AwaitingReview => ExitCode::from(EXIT_AWAITING_REVIEW),
        _ => ExitCode::from(EXIT_STEP_FAILED),
    })
}

/// Rate limits live in the process, like circuit breakers: each `weir run` starts with full
/// buckets, so separate commands together can exceed them. Said once per limited provider.
fn per_process_limits(config: &crate::model::ModelConfig) -> Vec<String> {
    config
        .providers
        .iter()
        .filter(|(_, p)| p.requests_per_minute.is_some() || p.tokens_per_minute.is_some())
        .map(|(name, _)| {
            format!(
                "provider `{name}`'s rate limits (like its circuit breaker) hold within one process: separate `weir run` commands do not share them; send runs through `weir serve` to keep them"
            )
        })
        .collect()
}
