//! `weir rollout`: roll a workflow version out to a rising share of new runs, follow it,
//! give it orders, and explain every decision it made from the journal.
//!
//! `weir serve` checks rollouts in the background; without a server, `weir rollout check`
//! runs the checks that are due (from a scheduler, say).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::data::DataArgs;
use super::render;
use super::{EXIT_ERROR, EXIT_STEP_FAILED};
use crate::Host;
use crate::rollout::explain::{Explanation, explain};
use crate::rollout::machine::Order;
use crate::rollout::plan::parse_steps;
use crate::rollout::{Command as Order_, Plan, Rollout, RolloutError, Start, Thresholds, driver};
use crate::store::{Store, now_ms};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start rolling a registered version out.
    Start(StartArgs),
    /// Show a rollout (or a workflow's latest) and its journal.
    Status {
        /// Rollout id, or a workflow name for its latest rollout.
        rollout: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List rollouts, newest first.
    List {
        /// Only this workflow's.
        #[arg(long)]
        workflow: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold the weight where it is.
    Pause(OrderArgs),
    /// Go on checking a paused rollout.
    Resume(OrderArgs),
    /// Give the candidate every new run now.
    Promote(OrderArgs),
    /// Stop: every new run on the stable version again.
    Abort(OrderArgs),
    /// Run the checks that are due now (what `weir serve` does every second).
    Check,
    /// Make every decision of a rollout again from its journal; exit 1 if one differs.
    Explain {
        /// Rollout id, or a workflow name for its latest rollout.
        rollout: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct StartArgs {
    /// The workflow.
    workflow: String,
    /// The version to roll out (registered).
    #[arg(long)]
    to: String,
    /// The stable version [default: the one new runs start on now].
    #[arg(long)]
    from: Option<String>,
    /// The candidate's share at each step, in percent, rising to 100.
    #[arg(long, default_value = "5,25,50,100")]
    steps: String,
    /// The least time each step is held before it may move on.
    #[arg(long, default_value = "30m", value_parser = duration)]
    hold: Duration,
    /// How often a step is checked.
    #[arg(long, default_value = "5m", value_parser = duration)]
    interval: Duration,
    /// How long a step may stay inconclusive before the rollout pauses [default: 4 × hold].
    #[arg(long, value_parser = duration)]
    max_hold: Option<Duration>,
    /// Ended runs each arm needs before a check decides.
    #[arg(long, default_value_t = 40)]
    min_runs: u64,
    /// A TOML file of analysis thresholds (the `analysis` table's keys, at top level).
    #[arg(long, value_name = "FILE")]
    analysis: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct OrderArgs {
    /// Rollout id, or a workflow name for its latest rollout.
    rollout: String,
    /// Who gives the order [default: $USER].
    #[arg(long)]
    by: Option<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) async fn execute(
    _host: &Host,
    data: &DataArgs,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let store = data.store().await?;
    let store = store.as_ref();
    let result = match command {
        Command::Start(args) => start(store, args).await,
        Command::Status { rollout, json } => status(store, &rollout, json).await,
        Command::List { workflow, json } => list(store, workflow.as_deref(), json).await,
        Command::Pause(a) => order(store, a, Order::Pause).await,
        Command::Resume(a) => order(store, a, Order::Resume).await,
        Command::Promote(a) => order(store, a, Order::Promote).await,
        Command::Abort(a) => order(store, a, Order::Abort).await,
        Command::Check => {
            for r in driver::tick_all(store, now_ms()).await? {
                outln!("{}", line(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { rollout, json } => {
            let rollout = find(store, &rollout).await?;
            let explanation = explain(store, rollout).await?;
            if json {
                outln!("{}", render::pretty_json(&explanation)?);
            } else {
                print_explanation(&explanation);
            }
            Ok(if explanation.agrees {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_STEP_FAILED)
            })
        }
    };
    match result {
        Err(e) => match e.downcast::<RolloutError>() {
            Ok(RolloutError::Store(e)) => Err(e),
            Ok(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(EXIT_ERROR))
            }
            Err(e) => Err(e),
        },
        ok => ok,
    }
}

async fn start(store: &dyn Store, args: StartArgs) -> anyhow::Result<ExitCode> {
    let steps =
        parse_steps(&args.steps).map_err(|e| RolloutError::Invalid(format!("--steps: {e}")))?;
    let analysis = match &args.analysis {
        None => Thresholds::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--analysis {}", path.display()))?;
            toml::from_str(&text)
                .map_err(|e| RolloutError::Invalid(format!("--analysis {}: {e}", path.display())))?
        }
    };
    let plan = Plan {
        steps,
        hold_ms: ms(args.hold),
        interval_ms: ms(args.interval),
        max_hold_ms: args.max_hold.map_or(4 * ms(args.hold), ms),
        min_runs: args.min_runs,
        analysis,
    };
    let start = Start {
        workflow: args.workflow,
        to: args.to,
        from: args.from,
        plan,
    };
    let rollout = driver::start(store, start, now_ms()).await?;
    if args.json {
        outln!("{}", render::pretty_json(&rollout)?);
    } else {
        outln!("{}", line(&rollout));
    }
    Ok(ExitCode::SUCCESS)
}

/// A rollout by id, or a workflow's latest.
async fn find(store: &dyn Store, which: &str) -> anyhow::Result<Rollout> {
    let journal = store.rollouts();
    if let Some(r) = journal.get_rollout(which).await? {
        return Ok(r);
    }
    journal.latest_rollout(which).await?.ok_or_else(|| {
        RolloutError::NotFound(format!(
            "{which} (neither a rollout id nor a workflow with one)"
        ))
        .into()
    })
}

async fn status(store: &dyn Store, which: &str, json: bool) -> anyhow::Result<ExitCode> {
    let rollout = find(store, which).await?;
    let events = store.rollouts().rollout_events(&rollout.id).await?;
    if json {
        let detail = serde_json::json!({"rollout": rollout, "events": events});
        outln!("{}", render::pretty_json(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", line(&rollout));
    outln!(
        "  steps {:?}, hold {} s, every {} s, min {} runs per arm",
        rollout.plan.steps,
        rollout.plan.hold_ms / 1000,
        rollout.plan.interval_ms / 1000,
        rollout.plan.min_runs
    );
    for e in &events {
        let what = match e.kind.as_str() {
            "check" => {
                let c = &e.data["check"];
                format!(
                    "{} — stable {}/{} failed, candidate {}/{} failed: {}",
                    c["verdict"].as_str().unwrap_or("?"),
                    c["stable"]["failed"],
                    c["stable"]["runs"],
                    c["candidate"]["failed"],
                    c["candidate"]["runs"],
                    c["why"].as_str().unwrap_or("")
                )
            }
            _ => e.data["why"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("weight {}", e.data["weight"])),
        };
        outln!(
            "  {:>3} {} {:<11} {what}",
            e.seq,
            render::time(e.at_ms),
            e.kind
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &dyn Store, workflow: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let rollouts = store.rollouts().list_rollouts(workflow, false).await?;
    if json {
        outln!("{}", render::pretty_json(&rollouts)?);
    } else if rollouts.is_empty() {
        outln!("no rollouts");
    }
    if !json {
        for r in &rollouts {
            outln!("{}", line(r));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn order(store: &dyn Store, args: OrderArgs, order: Order) -> anyhow::Result<ExitCode> {
    let rollout = find(store, &args.rollout).await?;
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let done = driver::command(store, &rollout.id, &Order_ { order, by }, now_ms()).await?;
    outln!("{}", line(&done));
    Ok(ExitCode::SUCCESS)
}

fn line(r: &Rollout) -> String {
    format!(
        "rollout {} of {} {} → {}: {} at {}% ({})",
        r.id,
        r.workflow,
        r.from,
        r.to,
        r.state.as_str(),
        r.weight,
        r.reason
    )
}

fn print_explanation(e: &Explanation) {
    outln!("{}", line(&e.rollout));
    for d in &e.decisions {
        let mark = if d.agrees { "same" } else { "DIFFERS" };
        outln!(
            "  {} {:<8} {:<7} journaled [{}], decided again [{}]{}",
            render::time(d.at_ms),
            d.cause,
            mark,
            d.journaled.join(", "),
            d.recomputed.join(", "),
            d.verdict
                .as_ref()
                .map(|v| format!(" — {v}"))
                .unwrap_or_default()
        );
        for note in &d.figures_now {
            outln!("      {note}");
        }
    }
    outln!(
        "{}",
        if e.agrees {
            "every decision comes out the same from the journal"
        } else if !e.state_agrees {
            "the journal's events do not lead to the rollout's stored state"
        } else {
            "some decisions come out otherwise: see DIFFERS above"
        }
    );
}
