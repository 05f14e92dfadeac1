//! `weir serve`: the HTTP sidecar, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::data::DataArgs;
use crate::Host;
use crate::runner::Fleet;
use crate::serve::{ServeConfig, Server};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on; anything but loopback needs a token.
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Workflow files (*.toml) to offer; watched, and reloaded on change.
    #[arg(long, env = "WEIR_WORKFLOWS_DIR", value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Plugin files (*.wasm) to load; watched, and reloaded on change.
    #[arg(long, env = "WEIR_PLUGINS_DIR", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// A file of bearer tokens, one per line (also: WEIR_API_TOKENS, comma-separated).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Runs driven at once.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Runs that may wait for a worker; beyond that, submissions get 429.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Largest JSON request body, e.g. 1MiB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    max_body: usize,
    /// How long steps in flight may take to finish on shutdown, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = crate::limits::parse_duration)]
    drain_timeout: Duration,
    /// How long a request's header may take to arrive (from a new connection, or from the
    /// first byte of a later request), e.g. 10s; past it the connection is closed.
    #[arg(long, default_value = "10s", value_parser = crate::limits::parse_duration)]
    header_timeout: Duration,
    /// How long a keep-alive connection may idle between requests before it is closed.
    #[arg(long, default_value = "60s", value_parser = crate::limits::parse_duration)]
    idle_timeout: Duration,
    /// Connections open at once; keep it below the descriptor limit (ulimit -n). At the cap
    /// the connection idle the longest is closed to make room, or new ones wait.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// With a PostgreSQL store: how long a host's claim on a run lasts without renewal; a
    /// dead host's runs are taken over by the others after it.
    #[arg(long, env = "WEIR_LEASE", default_value = "10s", value_parser = crate::limits::parse_duration)]
    lease: Duration,
    /// Do not serve the dashboard at /ui.
    #[arg(long)]
    no_ui: bool,
    /// How long a dashboard login lasts, e.g. 12h.
    #[arg(long, default_value = "12h", value_parser = crate::limits::parse_duration)]
    ui_session: Duration,
    /// The most one candidate replay over the API may spend on live model calls, in US
    /// dollars: a request's budget_usd defaults to it and may not exceed it.
    #[arg(long, default_value_t = 1.0, value_name = "USD", value_parser = parse_dollars)]
    replay_budget_usd: f64,
}

fn parse_dollars(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!("{text:?} is not a dollar amount of 0 or more")),
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    crate::limits::parse_size(text).map(|n| n as usize)
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let mut tokens: Vec<String> = std::env::var("WEIR_API_TOKENS")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    if let Some(file) = &args.token_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?;
        tokens.extend(text.lines().map(str::to_string));
    }
    tokens.retain(|t| !t.trim().is_empty());
    let config = ServeConfig {
        listen: args.listen,
        tokens,
        workflows_dir: args.workflows,
        plugins_dir: args.plugins,
        workers: args.workers,
        queue: args.queue,
        max_body: args.max_body,
        drain_timeout: args.drain_timeout,
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections as usize,
        ui: !args.no_ui,
        ui_session: args.ui_session,
        replay_budget_usd: args.replay_budget_usd,
        ..ServeConfig::default()
    };
    warn_if_descriptors_may_run_out(args.workers, args.max_connections as usize);
    let mut runner = data.runner(host).await?;
    if data.is_shared() {
        let owner = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "weir".into()),
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        tracing::info!(%owner, lease = ?args.lease, "sharing runs with the fleet on this database");
        runner = runner.with_fleet(Fleet {
            owner,
            lease: args.lease,
        });
    }
    let server = Server::start(host.clone(), runner, config).await?;
    eprintln!("weir serve: listening on http://{}", server.addr);
    shutdown_signal().await;
    eprintln!("weir serve: shutting down");
    server.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Says, before serving, when steps that each hold as many host resources as they may could
/// use up the process's descriptors: the operator can lower `--workers` or raise the limit
/// before a hostile or leaky step finds out.
fn warn_if_descriptors_may_run_out(workers: usize, connections: usize) {
    use crate::limits::{MAX_HOST_RESOURCES, descriptor_limit, descriptors_needed};
    let parallel = crate::workflow::DEFAULT_MAX_PARALLEL;
    let needed = descriptors_needed(workers, parallel, connections);
    match descriptor_limit() {
        Ok(limit) if limit < needed => tracing::warn!(
            "{workers} workers running up to {parallel} steps each, every step holding up to \
             {MAX_HOST_RESOURCES} files or streams, with {connections} connections, may need \
             {needed} descriptors, but this process may open {limit} (ulimit -n): lower \
             --workers or --max-connections, or raise the hard limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-descriptor limit: {e}"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
