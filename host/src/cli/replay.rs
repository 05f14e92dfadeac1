//! `weir replay <run-id>`: drive a recorded run again with every model call, HTTP exchange,
//! clock read and random byte answered from its record, and say whether it came out the
//! same. Exit 0 when it did, 1 when it did not (each difference is listed), 2 on an error.

use std::process::ExitCode;

use super::data::DataArgs;
use super::render;
use crate::Host;
use crate::replay::ReplayReport;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The run to replay.
    run_id: String,
    /// Same versions, every answer from the record, nothing sent (the only mode so far).
    #[arg(long, default_value_t = true)]
    strict: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let runner = data.existing_runner(host).await?;
    let report = crate::replay::strict(host, runner.store(), runner.models(), &args.run_id).await?;
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
