//! `weir replay <run-id>`: drive a recorded run again with every model call, HTTP exchange,
//! clock read and random byte answered from its record, and say whether it came out the
//! same. Exit 0 when it did, 1 when it did not (each difference is listed), 2 on an error.
//! With `--step` or `--candidate`, a candidate replay: the calls it makes that ask what the
//! record holds are answered from it, the rest follow `--on-miss`; exit 0 when it came out
//! the same. With `--from-step`, a new run that keeps the results before the step and runs
//! the rest again, exiting as `weir run` does.

use std::process::ExitCode;

use super::data::DataArgs;
use super::render;
use crate::Host;
use crate::replay::{Matching, OnMiss, Options, ReplayReport, Scratch};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The run to replay.
    run_id: String,
    /// Instead: a new run of the same version and input that keeps every result before
    /// this step and runs the step and everything after it again.
    #[arg(long, value_name = "STEP")]
    from_step: Option<String>,
    /// With --from-step: the step's input instead of its own (JSON, or @file).
    #[arg(long, value_name = "JSON|@FILE", requires = "from_step")]
    input: Option<String>,
    /// Candidate mode: run this plugin (a .wasm file, or `sha256:<digest>`) for step ID
    /// (repeatable); calls asking what the record holds are answered from it.
    #[arg(long = "step", value_name = "ID=PLUGIN", conflicts_with = "from_step")]
    steps: Vec<String>,
    /// Candidate mode: run the recorded input through this workflow (a file, or
    /// `name@version`).
    #[arg(long, value_name = "FILE|NAME@VERSION", conflicts_with = "from_step")]
    candidate: Option<String>,
    /// Candidate mode: a call the record cannot answer is refused (`fail`), made for real
    /// (`live`: GET only for HTTP, model calls from --budget-usd), or ends the replay (`skip`).
    #[arg(long, value_enum, default_value_t = OnMiss::Fail)]
    on_miss: OnMiss,
    /// Candidate mode: what live model calls may spend, in dollars.
    #[arg(long, default_value_t = 1.0)]
    budget_usd: f64,
    /// Print the report (or the new run) as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let runner = data.existing_runner(host).await?;
    if let Some(step) = &args.from_step {
        let input = match &args.input {
            None => None,
            Some(text) => {
                let text = match text.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--input @{path}: {e}"))?,
                    None => text.clone(),
                };
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("--input is not JSON: {e}"))?,
                )
            }
        };
        let run = crate::replay::rerun_from_step(host, &runner, &args.run_id, step, input).await?;
        if args.json {
            outln!("{}", render::pretty_json(&run)?);
        } else {
            outln!(
                "run {} reran {} from step {step}: {}",
                run.id,
                args.run_id,
                run.status
            );
            if let Some(output) = &run.output {
                outln!("{}", render::pretty_json(output)?);
            }
        }
        return Ok(match run.status {
            crate::store::RunStatus::Succeeded => ExitCode::SUCCESS,
            crate::store::RunStatus::AwaitingReview => ExitCode::from(super::EXIT_AWAITING_REVIEW),
            _ => ExitCode::from(super::EXIT_STEP_FAILED),
        });
    }
    let report = if args.steps.is_empty() && args.candidate.is_none() {
        crate::replay::strict(host, runner.store(), runner.models(), &args.run_id).await?
    } else {
        let (steps, workflow) =
            super::eval::candidate(host, runner.store(), &args.steps, args.candidate.as_deref())
                .await?;
        let options = Options {
            matching: Matching::Request(args.on_miss),
            steps,
            workflow,
            budget_usd: Some(args.budget_usd),
            fresh_models: false,
        };
        let scratch = Scratch::new()?;
        crate::replay::replay(
            host,
            runner.store(),
            runner.models(),
            &args.run_id,
            &options,
            &scratch,
        )
        .await?
    };
    if args.json {
        outln!("{}", render::pretty_json(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_STEP_FAILED)
    })
}

fn print(report: &ReplayReport) {
    outln!(
        "replay of run {} ({}, {}): recorded {}, replayed {}",
        report.run_id,
        report.workflow,
        report.mode,
        report.recorded_status,
        report.replayed_status
    );
    for step in &report.steps {
        let mark = if step.same { "same" } else { "DIFFERENT" };
        outln!("  {:<24} {mark}", step.step);
    }
    for review in &report.would_review {
        let decision = review
            .decision
            .as_deref()
            .unwrap_or("none recorded: stopped here");
        outln!(
            "  would review {}: {} (recorded decision: {decision})",
            review.step,
            review.reason
        );
    }
    if report.identical {
        outln!("identical: every answer came from the record and every result matched");
        return;
    }
    outln!("{} difference(s):", report.nondeterminism.len());
    for found in &report.nondeterminism {
        outln!(
            "  nondeterminism: step {} attempt {} at {}",
            found.step,
            found.attempt,
            found.position
        );
        outln!("    expected: {}", found.expected);
        outln!("    got:      {}", found.got);
    }
}
