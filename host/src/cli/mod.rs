//! The `weir` command line: argument parsing and one module per subcommand.
//!
//! Exit codes: 0 success; 1 the step or run ran and failed (the typed failure is printed);
//! 2 the command could not do its job (bad arguments, unreadable input, a workflow or plugin
//! that does not load), with `error: …` naming what is wrong; 3 the run waits for review.

#[macro_use]
mod out;
mod args;
mod build;
mod data;
mod dev;
mod eval;
mod experiments;
mod live;
mod monitor;
mod monitor_drift;
mod plugin_inspect;
mod render;
mod replay;
mod resume;
mod review;
mod rollout;
mod run;
mod runs;
mod serve;
mod step_run;
mod summary;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::engine::{HostConfig, default_cache_dir};
use crate::{Host, Limits};

/// Exit code when the step ran and reported or hit a failure.
pub const EXIT_STEP_FAILED: u8 = 1;
/// Exit code when the command itself could not run (bad arguments, input or plugin).
pub const EXIT_ERROR: u8 = 2;
/// Exit code when a run stopped to wait for a human review.
pub const EXIT_AWAITING_REVIEW: u8 = 3;

/// Weir: run sandboxed WebAssembly workflow steps.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// Directory for compiled plugins [default: $WEIR_CACHE_DIR, $XDG_CACHE_HOME/weir or ~/.cache/weir].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins afresh and keep nothing on disk.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Log as JSON lines instead of human-readable text (logs go to stderr; filter with WEIR_LOG).
    #[arg(long, global = true)]
    log_json: bool,
    /// Export traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318.
    #[arg(
        long,
        global = true,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    otlp_endpoint: Option<String>,
    #[command(flatten)]
    data: data::DataArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow on one input: register the file, submit a run, drive it to the end.
    Run(run::Args),
    /// Inspect runs in the journal.
    #[command(subcommand)]
    Runs(runs::Command),
    /// Continue every unfinished run (after a crash) from its last finished step.
    Resume(resume::Args),
    /// Replay a recorded run with every model call, HTTP exchange, clock and random byte from its record.
    Replay(replay::Args),
    /// Evaluate a candidate step or workflow version on recorded runs, answers from the record.
    Eval(eval::Args),
    /// The evaluations `weir eval` journaled: list them, show one.
    #[command(subcommand)]
    Experiments(experiments::Command),
    /// What each step of a workflow has seen and answered, and whether it drifted from its baseline.
    #[command(subcommand)]
    Monitor(monitor::Command),
    /// Check a workflow file and list every problem with its line and column.
    Validate(validate::Args),
    /// Serve the HTTP API (a sidecar): runs, events, reviews, workflows, plugins, metrics.
    Serve(serve::Args),
    /// The human review queue: list, show, approve, edit, reject.
    #[command(subcommand)]
    Review(review::Command),
    /// Roll a workflow version out to a rising share of new runs, checked against the stable one.
    #[command(subcommand)]
    Rollout(rollout::Command),
    /// Work with single steps.
    #[command(subcommand)]
    Step(StepCommand),
    /// Work with plugin files.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Create a step project (Rust, Python, JavaScript or C) that builds and passes its tests.
    New(build::NewArgs),
    /// Build a step project into a component (build/<name>.wasm).
    Build(build::BuildArgs),
    /// Build a step project and run its test cases (tests/*.json) in the sandbox.
    Test(build::TestArgs),
    /// Build a workflow's step projects, run it on a sample input, and again on every save.
    Dev(dev::Args),
}

#[derive(Debug, Subcommand)]
enum StepCommand {
    /// Run one step under the real limits and print its output and what it consumed.
    Run(step_run::Args),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a plugin's describe() metadata and its component imports and exports.
    Inspect(plugin_inspect::Args),
}

/// How long the process waits, once the command is done, for host threads still blocked in
/// a call an attempt abandoned at its timeout.
const RUNTIME_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = crate::telemetry::init(cli.log_json, cli.otlp_endpoint.as_deref()) {
        eprintln!("error: cannot set up logging and tracing: {e:#}");
        return ExitCode::from(EXIT_ERROR);
    }
    if let Err(e) = crate::limits::raise_descriptor_limit() {
        tracing::warn!("cannot raise the open-descriptor limit: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    };
    // Every attempt has ended by now (its timeout abandons whatever host call it was in), but a
    // host thread may still be blocked in a call that cannot be cancelled; the process does
    // not wait for it.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    crate::telemetry::flush();
    code
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = HostConfig {
        ceilings: Limits::default_ceilings(),
        cache_dir: if cli.no_cache {
            None
        } else {
            cli.cache_dir.or_else(default_cache_dir)
        },
        ..HostConfig::default()
    };
    let host = Host::new(config)?;
    match cli.command {
        Command::Run(args) => run::execute(&host, &cli.data, args).await,
        Command::Runs(command) => runs::execute(&host, &cli.data, command).await,
        Command::Resume(args) => resume::execute(&host, &cli.data, args).await,
        Command::Replay(args) => replay::execute(&host, &cli.data, args).await,
        Command::Eval(args) => eval::execute(&host, &cli.data, args).await,
        Command::Experiments(command) => experiments::execute(&host, &cli.data, command).await,
        Command::Monitor(command) => monitor::execute(&host, &cli.data, command).await,
        Command::Validate(args) => validate::execute(&host, &cli.data, args).await,
        Command::Serve(args) => serve::execute(&host, &cli.data, args).await,
        Command::Review(command) => review::execute(&host, &cli.data, command).await,
        Command::Rollout(command) => rollout::execute(&host, &cli.data, command).await,
        Command::Step(StepCommand::Run(args)) => step_run::execute(&host, &cli.data, args).await,
        Command::Plugin(PluginCommand::Inspect(args)) => plugin_inspect::execute(&host, args).await,
        Command::New(args) => build::execute_new(args),
        Command::Build(args) => build::execute_build(args).await,
        Command::Test(args) => build::execute_test(&host, args).await,
        Command::Dev(args) => dev::execute(&host, &cli.data, args).await,
    }
}
