//! Durable execution of workflow runs.
//!
//! A run is driven from its journal: before a step runs its attempt is journaled, after it
//! its result, in the store's transactions. Driving a run again (after a crash, `weir
//! resume`) reads the journal and continues: finished steps are never run again, a step
//! whose attempt started but has no result runs as a new attempt, and a result is recorded
//! at most once. Independent steps run concurrently, up to the workflow's `max-parallel`.

mod lock;
mod progress;
mod schedule;
mod step;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;

pub use progress::Progress;

use crate::engine::Host;
use crate::registry::{self, Loaded};
use crate::store::{NewRun, RunRecord, RunStatus, StepStatus, Store};
use crate::workflow::OutputDecl;

/// Runs workflows against a store.
#[derive(Clone)]
pub struct Runner {
    host: Host,
    store: Arc<dyn Store>,
    lock_dir: PathBuf,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    /// Registered versions already loaded, by `name@version`. A version never changes once
    /// registered, so an entry never goes stale.
    loaded: Arc<Mutex<HashMap<String, Arc<Loaded>>>>,
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
    /// The store refused (e.g. an idempotency key reused with another input).
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl Runner {
    /// A runner; `lock_dir` holds the per-run lock files that stop two processes from
    /// driving the same run.
    pub fn new(host: Host, store: Arc<dyn Store>, lock_dir: PathBuf) -> Self {
        Self {
            host,
            store,
            lock_dir,
            progress: None,
            loaded: Arc::default(),
        }
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
        let wf = &loaded.workflow;
        if let Some(schema) = &wf.input_schema {
            let violations = step::schema_violations(schema, &input).map_err(SubmitError::Store)?;
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
        let new = NewRun {
            workflow: wf.name.clone(),
            version: wf.version.to_string(),
            input,
            idempotency_key,
            steps,
        };
        Ok(self.store.create_run(new).await?)
    }

    /// Drives a run until it ends or waits for review, and returns its final record.
    /// Fails at once if another process is driving it.
    pub async fn execute(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let _lock = lock::RunLock::acquire(&self.lock_dir, run_id)?;
        let run = self
            .store
            .get_run(run_id)
            .await?
            .with_context(|| format!("no run {run_id}"))?;
        if run.status.is_final() || run.status == RunStatus::AwaitingReview {
            return Ok(run);
        }
        let loaded = self.load(&run.workflow, &run.version).await?;
        if run.status == RunStatus::Pending {
            self.store
                .set_run_status(run_id, RunStatus::Running, None, None)
                .await?;
        }
        self.drive(&run, &loaded).await?;
        self.store.get_run(run_id).await?.context("run vanished")
    }

    /// The pinned workflow and plugins of a registered version, loaded once per runner.
    async fn load(&self, name: &str, version: &str) -> anyhow::Result<Arc<Loaded>> {
        let key = format!("{name}@{version}");
        if let Some(loaded) = self
            .loaded
            .lock()
            .expect("loaded-workflow cache poisoned")
            .get(&key)
        {
            return Ok(loaded.clone());
        }
        let loaded = Arc::new(
            registry::load_registered(&self.host, self.store.as_ref(), name, Some(version)).await?,
        );
        self.loaded
            .lock()
            .expect("loaded-workflow cache poisoned")
            .insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Drives every unfinished run that no other process is driving; returns the ones it drove.
    pub async fn resume_all(&self) -> anyhow::Result<Vec<RunRecord>> {
        let mut resumed = Vec::new();
        for id in self.store.unfinished_runs().await? {
            match self.execute(&id).await {
                Ok(run) => resumed.push(run),
                Err(e) if e.downcast_ref::<lock::Busy>().is_some() => {
                    tracing::info!(run_id = %id, "run is being driven by another process");
                }
                Err(e) => return Err(e.context(format!("failed to resume run {id}"))),
            }
        }
        Ok(resumed)
    }

    async fn drive(&self, run: &RunRecord, loaded: &Loaded) -> anyhow::Result<()> {
        let wf = loaded.workflow.clone();
        let mut in_flight: JoinSet<anyhow::Result<String>> = JoinSet::new();
        let mut running: HashSet<String> = HashSet::new();
        loop {
            let records = self.store.steps(&run.id).await?;
            let failed = records.iter().find(|r| r.status == StepStatus::Failed);
            if let Some(failed) = failed
                && running.is_empty()
            {
                let failure = failed.failure.clone().unwrap_or(Value::Null);
                let needs_review =
                    failure.get("kind").and_then(Value::as_str) == Some("needs_review");
                let status = if needs_review {
                    RunStatus::AwaitingReview
                } else {
                    RunStatus::Failed
                };
                self.store
                    .set_run_status(
                        &run.id,
                        status,
                        None,
                        Some(json!({"step": failed.step_id, "failure": failure})),
                    )
                    .await?;
                return Ok(());
            }
            let mut changed = false;
            if failed.is_none() {
                let by_id: HashMap<&str, _> =
                    records.iter().map(|r| (r.step_id.as_str(), r)).collect();
                for decision in schedule::ready(&wf, &by_id, &run.input, &running) {
                    match decision {
                        schedule::Decision::Skip { step, reason } => {
                            self.store.skip_step(&run.id, &step, &reason).await?;
                            self.emit(Progress::Skipped { step, reason });
                            changed = true;
                        }
                        schedule::Decision::Run { step, input }
                            if running.len() < wf.max_parallel =>
                        {
                            running.insert(step.clone());
                            let job = step::Job {
                                host: self.host.clone(),
                                store: self.store.clone(),
                                run_id: run.id.clone(),
                                def: wf
                                    .step(&step)
                                    .cloned()
                                    .context("scheduled an unknown step")?,
                                plugin: loaded.plugins[&step].clone(),
                                input,
                                progress: self.progress.clone(),
                            };
                            in_flight.spawn(job.run());
                        }
                        schedule::Decision::Run { .. } => {}
                    }
                }
                if !changed
                    && running.is_empty()
                    && records
                        .iter()
                        .all(|r| matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped))
                {
                    let output = run_output(&wf.output, &run.input, &records)?;
                    self.store
                        .set_run_status(&run.id, RunStatus::Succeeded, Some(output), None)
                        .await?;
                    return Ok(());
                }
            }
            if changed {
                continue;
            }
            match in_flight.join_next().await {
                Some(done) => {
                    let step = done??;
                    running.remove(&step);
                }
                None => {
                    let waiting: Vec<_> = records
                        .iter()
                        .filter(|r| {
                            !matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped)
                        })
                        .map(|r| r.step_id.clone())
                        .collect();
                    anyhow::bail!(
                        "run {} cannot make progress: steps {} can never become ready",
                        run.id,
                        waiting.join(", ")
                    );
                }
            }
        }
    }

    fn emit(&self, event: Progress) {
        if let Some(sink) = &self.progress {
            let _ = sink.send(event);
        }
    }
}

fn run_output(
    output: &OutputDecl,
    input: &Value,
    records: &[crate::store::StepRecord],
) -> anyhow::Result<Value> {
    match output {
        OutputDecl::Step(id) => Ok(records
            .iter()
            .find(|r| &r.step_id == id)
            .and_then(|r| r.output.clone())
            .unwrap_or(Value::Null)),
        OutputDecl::Expr(expr) => expr
            .eval(input, &schedule::steps_view(records))
            .map_err(|e| anyhow::anyhow!("the workflow output {e}")),
    }
}
