//! Durable execution of workflow runs.
//!
//! A run is driven from its journal: before a step runs its attempt is journaled, after it
//! its result, in the store's transactions. Driving a run again (after a crash, `weir
//! resume`) reads the journal and continues: finished steps are never run again, a step
//! whose attempt started but has no result runs as a new attempt, and a result is recorded
//! at most once. Independent steps run concurrently, up to the workflow's `max-parallel`.

mod control;
mod drive;
mod lock;
mod progress;
mod retry;
mod review;
mod schedule;
mod shadow;
mod step;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::Value;
use tracing::Instrument as _;

pub use control::CancelError;
pub use lock::Busy;
pub use progress::Progress;
pub use review::ReviewError;

use crate::engine::Host;
use crate::plugin::Plugin;
use crate::registry::{self, Loaded};
use crate::store::{IdempotencyError, Lease, NewRun, RunRecord, RunStatus, Store};
use crate::workflow::Workflow;

/// Runs workflows against a store.
#[derive(Clone)]
pub struct Runner {
    host: Host,
    store: Arc<dyn Store>,
    locks: Arc<lock::RunLocks>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    /// Definitions of registered versions, by `name@version`. A version's definition never
    /// changes once registered, so an entry never goes stale.
    definitions: Arc<Mutex<HashMap<String, Arc<Workflow>>>>,
    /// Plugins by sha256, the way runs are pinned to them.
    plugins: Arc<Mutex<HashMap<String, Plugin>>>,
    control: control::Control,
    models: crate::model::Models,
    /// In a fleet: this host's name and how long its leases last.
    fleet: Option<Arc<Fleet>>,
    /// On a replay: the recorded run every attempt answers from.
    replay: Option<Arc<crate::replay::Recorded>>,
    /// Whether attempts keep replay tapes (on unless turned off).
    tapes: bool,
    /// Whether step results are counted into their steps' profiles (on unless turned off).
    profiles: bool,
    /// On a rerun from a step: the results restored instead of run.
    restore: Option<Arc<crate::replay::Restore>>,
    /// Shadow steps this host runs at once.
    shadow_slots: Arc<tokio::sync::Semaphore>,
}

/// How a host shares runs with others on one database.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// This host's unique name (a new one per process start).
    pub owner: String,
    /// How long a lease lasts without renewal; a dead host's runs are taken over after it.
    pub lease: std::time::Duration,
}

/// Why a run could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The input does not satisfy the workflow's input schema; every violation is listed.
    #[error("the input does not match the input schema of {workflow}:\n{}", .violations.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n"))]
    InvalidInput {
        /// `name@version`.
        workflow: String,
        /// One line per violation, each naming its JSON path.
        violations: Vec<String>,
    },
    /// The idempotency key is empty, or names a run of another workflow version or input.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The store failed.
    #[error(transparent)]
    Store(anyhow::Error),
    /// The run was submitted, but driving it failed.
    #[error(transparent)]
    Execute(anyhow::Error),
}

impl SubmitError {
    /// A store error, told apart from a refused idempotency key.
    fn store(e: anyhow::Error) -> Self {
        match e.downcast::<IdempotencyError>() {
            Ok(refused) => Self::Idempotency(refused),
            Err(e) => Self::Store(e),
        }
    }

    /// A driver's error, told apart from a refused idempotency key (a run's creation is
    /// its driver's first commit).
    fn execute(e: anyhow::Error) -> Self {
        match e.downcast::<IdempotencyError>() {
            Ok(refused) => Self::Idempotency(refused),
            Err(e) => Self::Execute(e),
        }
    }
}

impl Runner {
    /// A runner; `lock_dir` holds the lock file that stops two processes from
    /// driving the same run.
    pub fn new(host: Host, store: Arc<dyn Store>, lock_dir: PathBuf) -> Self {
        Self {
            host,
            store,
            locks: lock::RunLocks::new(lock_dir),
            progress: None,
            definitions: Arc::default(),
            plugins: Arc::default(),
            control: control::Control::default(),
            models: crate::model::Models::default(),
            fleet: None,
            replay: None,
            tapes: true,
            profiles: true,
            restore: None,
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(shadow::SLOTS)),
        }
    }

    /// A runner whose runs take the results in `restore` for its steps instead of running
    /// them (a rerun from a step).
    pub fn restoring(mut self, restore: Arc<crate::replay::Restore>) -> Self {
        self.restore = Some(restore);
        self
    }

    /// Turns replay tapes off (`false`) or on: with them off, attempts read the live clocks,
    /// random source and network without keeping what they read, and their runs cannot be
    /// replayed. For measuring what the tapes cost.
    pub fn with_tapes(mut self, on: bool) -> Self {
        self.tapes = on;
        self
    }

    /// Turns step profiles off (`false`) or on: with them off, no result is counted into its
    /// step's profile, and the monitor sees nothing of this runner's runs. For measuring what
    /// the profiles cost.
    pub fn with_profiles(mut self, on: bool) -> Self {
        self.profiles = on;
        self
    }

    /// A runner whose attempts answer model calls, clocks, random bytes and HTTP from
    /// `recorded` instead of the world, and stay out of the host's metrics.
    pub fn replaying(mut self, recorded: Arc<crate::replay::Recorded>) -> Self {
        self.replay = Some(recorded);
        self
    }

    /// Drives runs under leases in the store instead of local lock files, so that several
    /// hosts can share one database.
    pub fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(Arc::new(fleet));
        self
    }

    /// The fleet settings, when this runner shares its database.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_deref()
    }

    /// Gives steps the host's model service (providers, aliases, policies, budgets).
    pub fn with_models(mut self, models: crate::model::Models) -> Self {
        self.models = models;
        self
    }

    /// The host steps run on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The host's model service.
    pub fn models(&self) -> &crate::model::Models {
        &self.models
    }

    /// Sends progress (steps starting, finishing, skipped) to `sink`.
    pub fn with_progress(mut self, sink: tokio::sync::mpsc::UnboundedSender<Progress>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Validates `input` and creates a run of `loaded` (or returns the run that already has
    /// `idempotency_key`, with `false`).
    pub async fn submit(
        &self,
        loaded: &Loaded,
        input: Value,
        idempotency_key: Option<String>,
    ) -> Result<(RunRecord, bool), SubmitError> {
        self.submit_as(loaded, input, idempotency_key, None).await
    }

    /// [`Runner::submit`], the new run taking `id` (a UUIDv7 the caller made, say to place
    /// the run on a rollout's line before it exists) when given.
    pub async fn submit_as(
        &self,
        loaded: &Loaded,
        input: Value,
        idempotency_key: Option<String>,
        id: Option<String>,
    ) -> Result<(RunRecord, bool), SubmitError> {
        let mut new = self.new_run(loaded, input, idempotency_key)?;
        new.id = id;
        let (run, created) = self
            .store
            .create_run(new)
            .await
            .map_err(SubmitError::store)?;
        self.control.changed(&run.id);
        Ok((run, created))
    }

    /// Submits a run and drives it, like [`Runner::submit`] then [`Runner::execute`], but
    /// the run's creation and the start of its first steps are one commit. `created` is
    /// called with the run (and whether it is new) once it is in the journal, before any
    /// step has run. When the idempotency key names an existing run, that run is driven.
    pub async fn submit_and_execute(
        &self,
        loaded: &Loaded,
        input: Value,
        idempotency_key: Option<String>,
        created: impl FnOnce(&RunRecord, bool) + Send,
    ) -> Result<RunRecord, SubmitError> {
        if self.fleet.is_some() {
            // A fleet drives runs under leases, which are claimed on runs that exist.
            let (run, is_new) = self.submit(loaded, input, idempotency_key).await?;
            created(&run, is_new);
            return self.execute(&run.id).await.map_err(SubmitError::Execute);
        }
        let mut new = self.new_run(loaded, input, idempotency_key)?;
        let id = uuid::Uuid::now_v7().to_string();
        new.id = Some(id.clone());
        // No one else knows this id yet: the lock is free, and held before the run exists.
        let lock = self.locks.acquire(&id).map_err(SubmitError::Store)?;
        let placeholder = new.record(id, RunStatus::Pending, crate::store::now_ms());
        let span = tracing::info_span!("run", run_id = %placeholder.id, workflow = %placeholder.workflow, version = %placeholder.version);
        let driven = async {
            let mut drive = drive::Drive::fresh(
                self,
                &placeholder,
                loaded.workflow.clone(),
                loaded.plugins.clone(),
                &new.steps,
            );
            let (run, is_new) = drive.create(new).await?;
            created(&run, is_new);
            if !is_new {
                return Ok((run.id, None));
            }
            // Created: from here on the run is in the journal, and a transient store error
            // must not leave it behind; it is driven again from the journal.
            let ended = match drive.run().await {
                Ok(ended) => ended,
                Err(e) => {
                    let workflow = loaded.workflow.clone();
                    self.drive_retrying(&run, workflow, None, Some(e)).await?
                }
            };
            anyhow::Ok((run.id, ended))
        }
        .instrument(span)
        .await
        .map_err(SubmitError::execute)?;
        drop(lock);
        match driven {
            (_, Some(ended)) => Ok(ended),
            // The idempotency key named another run: nothing was created under this id.
            (id, None) if id != placeholder.id => {
                self.execute(&id).await.map_err(SubmitError::Execute)
            }
            (id, None) => self.finished(&id).await.map_err(SubmitError::Execute),
        }
    }

    /// The run `submit` creates: `input` checked against the workflow's schema, each step
    /// pinned to its plugin (kept in this runner's cache for the drivers).
    fn new_run(
        &self,
        loaded: &Loaded,
        input: Value,
        idempotency_key: Option<String>,
    ) -> Result<NewRun, SubmitError> {
        if let Some(key) = &idempotency_key {
            crate::store::check_idempotency_key(key)?;
        }
        let wf = &loaded.workflow;
        if let Some(schema) = &wf.input_schema {
            let violations = schema.violations(&input);
            if !violations.is_empty() {
                return Err(SubmitError::InvalidInput {
                    workflow: wf.id(),
                    violations,
                });
            }
        }
        let steps = wf
            .steps
            .iter()
            .map(|s| (s.id.clone(), loaded.pins[&s.id].clone()))
            .collect();
        {
            let mut cache = self.plugins.lock().expect("plugin cache poisoned");
            for plugin in loaded.plugins.values() {
                cache
                    .entry(plugin.digest().to_string())
                    .or_insert_with(|| plugin.clone());
            }
        }
        // Redacted after the schema check (a placeholder need not fit the schema) and
        // before anything is journaled: the run never holds what its workflow takes out.
        let mut input = input;
        let redacted = wf
            .redactor
            .as_ref()
            .map(|r| r.input(&mut input))
            .unwrap_or_default();
        Ok(NewRun {
            id: None,
            workflow: wf.name.clone(),
            version: wf.version.to_string(),
            input,
            idempotency_key,
            steps,
            redacted,
            source_run: self.restore.as_ref().map(|r| r.source_run.clone()),
        })
    }

    /// Cancels a run: it ends as `cancelled` with `reason`, and its driver stops (at once in
    /// this process; at its next journal write elsewhere).
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<RunRecord, CancelError> {
        self.control
            .cancel(self.store.as_ref(), run_id, reason)
            .await
    }

    /// Stops every driver of this runner from starting new attempts; each returns once its
    /// attempts in flight have finished, leaving its run resumable. For graceful shutdown.
    pub fn drain(&self) {
        self.control.drain();
    }

    /// Whether [`Runner::drain`] was called.
    pub fn draining(&self) -> bool {
        self.control.draining()
    }

    /// Run ids, each sent after a change to that run was committed by this runner.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.control.subscribe()
    }

    /// Drives a run until it ends or waits for review, and returns its final record.
    /// Fails at once if another process is driving it.
    pub async fn execute(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        if let Some(fleet) = &self.fleet {
            let lease_ms = fleet.lease.as_millis() as i64;
            let Some(lease) = self.store.claim_run(run_id, &fleet.owner, lease_ms).await? else {
                return Err(Busy(run_id.to_string()).into());
            };
            return self.execute_leased(lease).await;
        }
        let lock = self.locks.acquire(run_id)?;
        let run = self
            .store
            .get_run(run_id)
            .await?
            .with_context(|| format!("no run {run_id}"))?;
        if run.status.is_final() {
            return Ok(run);
        }
        if run.status == RunStatus::AwaitingReview {
            return Ok(run);
        }
        let workflow = self.definition(&run.workflow, &run.version).await?;
        let span = tracing::info_span!("run", run_id = %run.id, workflow = %run.workflow, version = %run.version);
        let ended = self
            .drive_retrying(&run, workflow, None, None)
            .instrument(span)
            .await?;
        drop(lock);
        match ended {
            Some(run) => Ok(run),
            None => self.finished(run_id).await,
        }
    }

    /// The run as its driver left it, read back (when the driver did not end it itself).
    async fn finished(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        self.store.get_run(run_id).await?.context("run vanished")
    }

    /// Drives a run this host holds `lease` on, renewing the lease while it drives and
    /// giving it up at the end. If the lease is lost (this host was too slow to renew it and
    /// another took the run over), the store refuses this driver's writes and it stops.
    pub async fn execute_leased(&self, lease: Lease) -> anyhow::Result<RunRecord> {
        let fleet = self.fleet.clone().context("not in a fleet")?;
        // A lease may have waited in a queue: make sure it is still ours (and fresh) first.
        if !self
            .store
            .renew_lease(&lease, fleet.lease.as_millis() as i64)
            .await?
        {
            return Err(Busy(lease.run_id.clone()).into());
        }
        let heartbeat = {
            let (store, lease, every) = (self.store.clone(), lease.clone(), fleet.lease / 3);
            let lease_ms = fleet.lease.as_millis() as i64;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.renew_lease(&lease, lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            tracing::warn!(run_id = %lease.run_id, error = %format!("{e:#}"), "lease renewal failed");
                        }
                    }
                }
            })
        };
        let driven = async {
            let run = self
                .store
                .get_run(&lease.run_id)
                .await?
                .with_context(|| format!("no run {}", lease.run_id))?;
            if run.status.is_final() || run.status == RunStatus::AwaitingReview {
                return Ok(run);
            }
            let workflow = self.definition(&run.workflow, &run.version).await?;
            let span = tracing::info_span!("run", run_id = %run.id, workflow = %run.workflow, version = %run.version, epoch = lease.epoch);
            let ended = self
                .drive_retrying(&run, workflow, Some(lease.clone()), None)
                .instrument(span)
                .await?;
            match ended {
                Some(run) => Ok(run),
                None => self.finished(&lease.run_id).await,
            }
        }
        .await;
        heartbeat.abort();
        if let Err(e) = self.store.release_lease(&lease).await {
            tracing::warn!(run_id = %lease.run_id, error = %format!("{e:#}"), "lease release failed; it expires on its own");
        }
        driven
    }

    /// The definition of a registered version, loaded once per runner.
    async fn definition(&self, name: &str, version: &str) -> anyhow::Result<Arc<Workflow>> {
        let key = format!("{name}@{version}");
        if let Some(found) = self
            .definitions
            .lock()
            .expect("definition cache poisoned")
            .get(&key)
        {
            return Ok(found.clone());
        }
        let workflow = Arc::new(
            registry::load_definition(self.store.as_ref(), name, version)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        self.definitions
            .lock()
            .expect("definition cache poisoned")
            .insert(key, workflow.clone());
        Ok(workflow)
    }

    /// The plugin with this digest, loaded from the store once per runner.
    async fn plugin(&self, digest: &str, origin: &str) -> anyhow::Result<Plugin> {
        if let Some(found) = self
            .plugins
            .lock()
            .expect("plugin cache poisoned")
            .get(digest)
        {
            return Ok(found.clone());
        }
        let plugin = registry::load_plugin(&self.host, self.store.as_ref(), digest, origin).await?;
        self.plugins
            .lock()
            .expect("plugin cache poisoned")
            .insert(digest.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Drives every unfinished run that no other process is driving; returns the ones it drove.
    pub async fn resume_all(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut resumed = Vec::new();
        for id in self.store.unfinished_runs().await? {
            match self.execute(&id).await {
                Ok(run) => resumed.push(run),
                Err(e) if e.downcast_ref::<Busy>().is_some() => {
                    tracing::info!(run_id = %id, "run is being driven by another process");
                }
                Err(e) => return Err(e.context(format!("failed to resume run {id}"))),
            }
        }
        Ok(resumed)
    }

    fn emit(&self, event: Progress) {
        if let Some(sink) = &self.progress {
            let _ = sink.send(event);
        }
    }
}
