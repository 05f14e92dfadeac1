//! `weir serve`: Weir as a sidecar. An HTTP API on loopback (axum on tokio) over the same
//! runner and journal the CLI uses, with bearer-token auth, a bounded run queue, hot-loaded
//! plugins and workflows, Prometheus metrics, an OpenAPI document generated from the
//! handlers, and a graceful shutdown that leaves unfinished runs resumable.

mod auth;
pub mod catalog;
mod connection;
mod error;
mod experiments;
mod extract;
mod fleet;
mod health;
mod links;
mod listener;
mod monitor;
mod offer;
mod params;
mod queue;
mod replays;
mod reviews;
mod rollouts;
mod router;
mod runs;
mod shadows;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch as signal;

pub use auth::Tokens;
pub(crate) use auth::bearer_token;
pub use catalog::Catalog;
pub use router::openapi;
pub(crate) use runs::event_stream;

use crate::engine::Host;
use crate::runner::Runner;
use queue::Queue;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen. Anything but loopback needs tokens.
    pub listen: SocketAddr,
    /// Accepted bearer tokens; none means no authentication (loopback only).
    pub tokens: Vec<String>,
    /// Workflow files (`*.toml`) to offer, watched for changes.
    pub workflows_dir: Option<PathBuf>,
    /// Plugin files (`*.wasm`) to load, watched for changes.
    pub plugins_dir: Option<PathBuf>,
    /// Runs driven at once.
    pub workers: usize,
    /// Runs admitted beyond those being driven; more get 429.
    pub queue: usize,
    /// Largest JSON request body.
    pub max_body: usize,
    /// Largest uploaded component.
    pub max_upload: usize,
    /// How long in-flight steps may take to finish on shutdown.
    pub drain_timeout: Duration,
    /// How long a request's header may take to arrive: from a new connection, or from the
    /// first byte of a later request. Past it the connection is closed.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before it is closed.
    pub idle_timeout: Duration,
    /// Connections open at once (keep it below the descriptor limit, `ulimit -n`). At the
    /// cap the connection idle the longest is closed to make room; when none is idle, new
    /// connections wait for one to close.
    pub max_connections: usize,
    /// Serve the dashboard at `/ui`.
    pub ui: bool,
    /// How long a dashboard login lasts.
    pub ui_session: Duration,
    /// The most one candidate replay over the API may spend on live model calls (US
    /// dollars): its `budget_usd` defaults to this, and a larger one is refused.
    pub replay_budget_usd: f64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            tokens: Vec::new(),
            workflows_dir: None,
            plugins_dir: None,
            workers: 8,
            queue: 256,
            max_body: 1024 * 1024,
            max_upload: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            ui: true,
            ui_session: crate::ui::DEFAULT_SESSION_LIFETIME,
            replay_budget_usd: 1.0,
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct App {
    runner: Runner,
    catalog: Arc<Catalog>,
    queue: Queue,
    prometheus: PrometheusHandle,
    /// Turns true when a shutdown begins: no new runs, `/readyz` answers 503.
    shutdown: signal::Receiver<bool>,
    /// Turns true when the drain is over and the listener closes: waits return and event
    /// streams end with a `shutdown` event.
    closing: signal::Receiver<bool>,
    /// [`ServeConfig::replay_budget_usd`].
    replay_budget_usd: f64,
}

impl App {
    /// The journal the server reads and writes.
    pub(crate) fn store(&self) -> &Arc<dyn crate::store::Store> {
        self.runner.store()
    }

    /// Applies a reviewer's decision and sends the run on: what the API and the dashboard
    /// both do.
    pub(crate) async fn decide_review(
        &self,
        id: &str,
        decision: crate::store::Decision,
        decided: crate::store::Decided,
    ) -> Result<crate::store::ReviewRecord, crate::runner::ReviewError> {
        let review = self.runner.decide(id, decision, decided).await?;
        self.drive_on(review.run_id.clone());
        Ok(review)
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A place in the queue for a new run, or the 429 a full queue answers (and counts).
    fn admission(&self) -> Result<queue::Admission, error::ApiError> {
        self.queue.try_admit().ok_or_else(|| {
            metrics::counter!(crate::metrics::QUEUE_REJECTED).increment(1);
            error::ApiError::overloaded(1)
        })
    }

    /// Queues a run that a decision sent on (waiting for a place rather than refusing: the
    /// decision is already recorded).
    fn drive_on(&self, run_id: String) {
        let queue = self.queue.clone();
        tokio::spawn(async move {
            if let Some(admission) = queue.admit().await {
                queue.enqueue(admission, run_id);
            }
        });
    }
}

/// How often timed-out reviews are looked for.
const REVIEW_SWEEP: Duration = Duration::from_secs(1);

/// Applies the default action of reviews that timed out, and sends their runs on.
async fn sweep_reviews(app: App) {
    let mut tick = tokio::time::interval(REVIEW_SWEEP);
    loop {
        tick.tick().await;
        match app.runner.expire_reviews().await {
            Ok(decided) => {
                for review in decided {
                    tracing::info!(review = %review.id, run_id = %review.run_id, status = %review.status, "review timed out");
                    app.drive_on(review.run_id);
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "applying review timeouts failed"),
        }
    }
}

/// How often rollouts are looked at (each is checked when its own interval is due).
const ROLLOUT_SWEEP: Duration = Duration::from_secs(1);

/// Checks every rollout whose interval is due, on this host as on every other host of a
/// fleet: the journal's revision check counts each check once.
async fn sweep_rollouts(app: App) {
    let mut tick = tokio::time::interval(ROLLOUT_SWEEP);
    loop {
        tick.tick().await;
        let store = app.runner.store().clone();
        match crate::rollout::driver::tick_all(store.as_ref(), crate::store::now_ms()).await {
            Ok(changed) => {
                for r in changed {
                    tracing::info!(rollout = %r.id, workflow = %r.workflow, state = r.state.as_str(), weight = r.weight, reason = %r.reason, "rollout checked");
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "checking rollouts failed"),
        }
    }
}

/// Applies every workflow's `[retention]` at start and then every [`crate::retention::SWEEP`].
async fn sweep_retention(app: App) {
    let mut tick = tokio::time::interval(crate::retention::SWEEP);
    loop {
        tick.tick().await;
        match crate::retention::apply(app.runner.store().as_ref()).await {
            Ok(purged) => {
                for (workflow, runs) in purged {
                    tracing::info!(workflow = %workflow, runs = runs.len(), "purged payloads past the workflow's retention");
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "applying retention failed"),
        }
    }
}

/// How often the results journaled one by one are folded into the step profiles' counts.
const PROFILE_FOLD: Duration = Duration::from_secs(30);

/// Folds the step profiles' pending results, on this host as on every other host of a fleet
/// (a fold takes its rows exclusively, so none is folded twice).
async fn sweep_profiles(app: App) {
    let mut tick = tokio::time::interval(PROFILE_FOLD);
    loop {
        tick.tick().await;
        let store = app.runner.store().clone();
        if let Err(e) = crate::store::profiles::fold_all(store.monitor()).await {
            tracing::error!(error = %format!("{e:#}"), "folding step profiles failed");
        }
    }
}

/// A started server: its address, and the handle to stop it.
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    stop: signal::Sender<bool>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts a server: loads the catalog, binds, resumes unfinished runs through the
    /// queue, and serves until [`Server::shutdown`].
    pub async fn start(host: Host, runner: Runner, config: ServeConfig) -> anyhow::Result<Self> {
        let tokens = Tokens::new(config.tokens.iter().map(String::as_str));
        if !config.listen.ip().is_loopback() && !tokens.required() {
            bail!(
                "refusing to listen on {} without an auth token: set WEIR_API_TOKENS or --token-file, or listen on loopback (127.0.0.1)",
                config.listen
            );
        }
        let prometheus = crate::metrics::install_prometheus()?;
        let catalog = Arc::new(Catalog::new(
            host,
            runner.store().clone(),
            config.workflows_dir.clone(),
            config.plugins_dir.clone(),
        ));
        let (stop, shutdown) = signal::channel(false);
        let (close, closing) = signal::channel(false);
        let (queue, workers) = Queue::start(
            runner.clone(),
            config.workers,
            config.queue,
            shutdown.clone(),
        );
        let app = App {
            runner: runner.clone(),
            catalog: catalog.clone(),
            queue: queue.clone(),
            prometheus,
            shutdown: shutdown.clone(),
            closing: closing.clone(),
            replay_budget_usd: config.replay_budget_usd,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;

        // Load the catalog and resume unfinished runs off the accept path: /readyz says
        // when the catalog is ready.
        let watcher = watch::start(catalog.clone())?;
        let resumer = {
            let (catalog, queue, store) = (catalog.clone(), queue.clone(), runner.store().clone());
            let fleet = runner.fleet().cloned();
            tokio::spawn(async move {
                catalog.reload().await;
                if let Some(fleet) = fleet {
                    // In a fleet, unfinished runs are shared: take those nobody holds, now
                    // and whenever a host's leases run out.
                    return fleet::take_over(store, queue, fleet).await;
                }
                match store.unfinished_runs().await {
                    Ok(ids) => {
                        if !ids.is_empty() {
                            tracing::info!(runs = ids.len(), "resuming unfinished runs");
                        }
                        for id in ids {
                            let Some(admission) = queue.admit().await else {
                                return;
                            };
                            queue.enqueue(admission, id);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "cannot list unfinished runs");
                    }
                }
            })
        };

        let sweeper = tokio::spawn(sweep_reviews(app.clone()));
        let retention = tokio::spawn(sweep_retention(app.clone()));
        let rollouts = tokio::spawn(sweep_rollouts(app.clone()));
        let profiles = tokio::spawn(sweep_profiles(app.clone()));
        let router = router::build(app, tokens, &config);
        let drain_timeout = config.drain_timeout;
        let limits = listener::ConnectionLimits {
            timeouts: connection::Timeouts {
                header: config.header_timeout,
                idle: config.idle_timeout,
            },
            max_connections: config.max_connections,
        };
        let done = tokio::spawn(async move {
            // The listener keeps serving through the drain: probes see 503 from /readyz,
            // and requests in flight are answered.
            let serving = tokio::spawn(listener::serve(listener, router, limits, closing));
            let mut stopped = shutdown;
            let _ = stopped.wait_for(|stop| *stop).await;
            tracing::info!("shutting down: no new runs; letting steps in flight finish");
            drop(watcher);
            resumer.abort();
            sweeper.abort();
            retention.abort();
            rollouts.abort();
            profiles.abort();
            runner.drain();
            let drained = tokio::time::timeout(drain_timeout, async {
                let mut workers = workers;
                while workers.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    "drain timeout ({drain_timeout:?}) passed with steps still in flight; their runs resume on the next start"
                );
            }
            let _ = close.send(true);
            serving.await?;
            Ok(())
        });
        tracing::info!(%addr, "weir serve is listening");
        Ok(Self { addr, stop, done })
    }

    /// Stops accepting, lets in-flight steps finish (within the drain timeout), and returns
    /// once everything has stopped. Unfinished runs stay in the journal and resume on the
    /// next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.done.await?
    }
}
