//! The loop that drives one run: decide what is ready, journal it (skips, starts, the end) in
//! one advance together with the result that made it ready, run the started attempts, repeat.
//!
//! The run's step rows are read from the journal once, when driving starts (that is how a
//! resumed run picks up where it stopped), and then kept in memory: every change the loop
//! makes goes through [`Store::advance`] first and to the memory copy after it commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::step::{Finished, Job};
use super::{Progress, Runner, review, schedule};
use crate::metrics;
use crate::plugin::Plugin;
use crate::store::{
    Advance, AttemptOutcome, Basis, NewRun, ReviewStatus, RunEnd, RunRecord, RunStatus, StepRecord,
    StepStatus,
};
use crate::workflow::{OutputDecl, Workflow};

pub(super) struct Drive<'a> {
    runner: &'a Runner,
    run: &'a RunRecord,
    workflow: Arc<Workflow>,
    /// Each step's plugin, as the run was pinned to it.
    plugins: HashMap<String, Plugin>,
    records: Vec<StepRecord>,
    /// The input of each step started here, for the reviewer.
    inputs: HashMap<String, Value>,
    /// The step and reason of a review this run waits for: nothing new starts.
    parked: Option<(String, String)>,
    /// Steps whose attempt is journaled as started and not yet finished here.
    running: HashSet<String>,
    /// Attempts running on tasks of their own, so that a run's parallel steps use every core.
    in_flight: JoinSet<anyhow::Result<Finished>>,
    /// An attempt that runs alone, polled on this driver's task: a sequential run's steps
    /// thus run where their journal writes do, with no hand-off to another task and back.
    inline: FuturesUnordered<BoxFuture<'static, anyhow::Result<Finished>>>,
    /// The lease this driver holds in a fleet; every advance carries it (fencing).
    lease: Option<crate::store::Lease>,
    /// The run's last event as of this driver's last commit, when the store reports it: the
    /// next advance's [`Basis`].
    seq: Option<i64>,
    /// The run ended in the advance that created it: there is nothing left to drive.
    over: bool,
    /// The run as the advance that ended it (or parked it for review) left it, when the
    /// store reported it.
    ended: Option<RunRecord>,
}

/// What became of an advance.
enum Committed {
    Applied,
    /// The result was already recorded by another driver; nothing was applied.
    NotRecorded,
    /// The run had ended (cancelled): stop driving it.
    RunOver,
}

/// What the next advance will journal, and the progress to report once it has.
struct Pending {
    advance: Advance,
    inputs: Vec<Result<Value, String>>,
    events: Vec<Progress>,
}

/// What is left to do once an advance has committed: start its attempts (on these inputs)
/// and report this progress.
struct Followup {
    started: Vec<String>,
    inputs: Vec<Result<Value, String>>,
    events: Vec<Progress>,
}

impl Pending {
    /// The advance to journal, and what follows once it has.
    fn split(self) -> (Advance, Followup) {
        let started = self
            .advance
            .started
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        let followup = Followup {
            started,
            inputs: self.inputs,
            events: self.events,
        };
        (self.advance, followup)
    }
}

impl<'a> Drive<'a> {
    pub(super) async fn new(
        runner: &'a Runner,
        run: &'a RunRecord,
        workflow: Arc<Workflow>,
        lease: Option<crate::store::Lease>,
    ) -> anyhow::Result<Self> {
        let records = runner.store.steps(&run.id).await?;
        let mut plugins = HashMap::new();
        for record in &records {
            let origin = format!("{}@{} step {}", run.workflow, run.version, record.step_id);
            let plugin = runner.plugin(&record.plugin_digest, &origin).await?;
            plugins.insert(record.step_id.clone(), plugin);
        }
        // Reviews are opened as steps finish: a run still `pending` has none to wait for.
        let parked = if run.status == RunStatus::Pending {
            None
        } else {
            runner
                .store
                .reviews(Some(ReviewStatus::Pending), Some(&run.id))
                .await?
                .into_iter()
                .next()
                .map(|r| (r.step_id, r.reason))
        };
        let mut drive = Self::with(runner, run, workflow, plugins, records);
        drive.parked = parked;
        drive.lease = lease;
        Ok(drive)
    }

    /// A driver for a run about to be created by [`Drive::create`]: `run` is the record it
    /// will have, each step pending, pinned to `plugins` (by step id).
    pub(super) fn fresh(
        runner: &'a Runner,
        run: &'a RunRecord,
        workflow: Arc<Workflow>,
        plugins: HashMap<String, Plugin>,
        steps: &[(String, String)],
    ) -> Self {
        let records = steps
            .iter()
            .map(|(step_id, digest)| StepRecord::pending(step_id.clone(), digest.clone()))
            .collect();
        Self::with(runner, run, workflow, plugins, records)
    }

    /// A driver of `run` with these steps, nothing in flight, no review, no lease.
    fn with(
        runner: &'a Runner,
        run: &'a RunRecord,
        workflow: Arc<Workflow>,
        plugins: HashMap<String, Plugin>,
        records: Vec<StepRecord>,
    ) -> Self {
        Self {
            inputs: HashMap::new(),
            parked: None,
            runner,
            run,
            workflow,
            plugins,
            records,
            running: HashSet::new(),
            in_flight: JoinSet::new(),
            inline: FuturesUnordered::new(),
            lease: None,
            seq: None,
            over: false,
            ended: None,
        }
    }

    fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Drives the run until it ends, parks for review or is taken away; returns the run as
    /// its last advance left it when that advance ended it and the store reported the run.
    pub(super) async fn run(mut self) -> anyhow::Result<Option<RunRecord>> {
        if self.over {
            return Ok(self.ended);
        }
        let guard = self.runner.control.driving(&self.run.id);
        let mut pending = self.empty();
        loop {
            self.decide(&mut pending)?;
            let ended = pending.advance.end.as_ref().map(|end| end.status);
            if !pending.advance.is_empty() {
                let committed;
                (pending, committed) = self.commit(pending).await?;
                match committed {
                    Committed::Applied => {}
                    Committed::NotRecorded => continue,
                    Committed::RunOver => break,
                }
            }
            if let Some(status) = ended {
                if self.runner.replay.is_none() {
                    metrics::run_ended(&self.run.workflow, &self.run.version, status);
                    super::shadow::after_run(
                        self.runner,
                        &self.run.id,
                        &self.run.version,
                        &self.workflow,
                    );
                }
                return Ok(self.ended);
            }
            if self.running.is_empty() {
                if self.runner.control.draining() {
                    // Left `running` in the journal: the next start resumes it.
                    return Ok(None);
                }
                return Err(self.stuck());
            }
            let finished = tokio::select! {
                Some(done) = self.inline.next() => done?,
                Some(joined) = self.in_flight.join_next() => joined??,
                () = guard.notify.notified() => break,
            };
            // A replay is not live traffic: it stays out of the host's metrics.
            if self.runner.replay.is_none() {
                metrics::attempt_finished(&self.run.workflow, &self.run.version, &finished.result);
            }
            let step = finished.result.step_id.clone();
            self.running.remove(&step);
            self.apply_result(&finished);
            if let Some(def) = self.workflow.step(&step)
                && let Some(review) = review::review_for(
                    def,
                    self.inputs.get(&step).unwrap_or(&Value::Null),
                    &finished.result,
                    // A gate sees a step that failed over as its fallback's result, as every
                    // expression does.
                    &schedule::effective(&self.workflow, &self.records),
                    &self.run.input,
                )
            {
                self.parked = Some((step.clone(), review.reason.clone()));
                pending.advance.review = Some(review);
            }
            pending.advance.finished = Some(finished.result);
            pending.advance.profile = finished.profile;
            pending.events.push(finished.event);
        }
        // Cancelled: the journal says so already; attempts still in flight are dropped.
        self.in_flight.abort_all();
        self.inline.clear();
        metrics::run_ended(&self.run.workflow, &self.run.version, RunStatus::Cancelled);
        Ok(None)
    }

    /// Adds to `pending` every skip and start that is ready now, and the run's end if it
    /// has come.
    fn decide(&mut self, pending: &mut Pending) -> anyhow::Result<()> {
        // A failure a fallback rule covers is not the run's failure: the fallback step runs.
        let workflow = self.workflow.clone();
        let handled = move |r: &StepRecord| {
            workflow
                .step(&r.step_id)
                .is_some_and(|def| schedule::handled(def, r))
        };
        let failed = self
            .records
            .iter()
            .any(|r| r.status == StepStatus::Failed && !handled(r));
        // A skip can make further steps ready (or skipped): decide until nothing changes.
        // After a failure nothing new starts; the run ends once its attempts in flight do.
        let mut deciding = !failed && self.parked.is_none();
        while deciding {
            let decisions = schedule::ready(
                self.workflow(),
                &self.records,
                &self.run.input,
                &self.running,
            );
            let mut skipped = false;
            for decision in decisions {
                match decision {
                    schedule::Decision::Skip { step, reason } => {
                        let record = self.record_mut(&step)?;
                        record.status = StepStatus::Skipped;
                        record.skip_reason = Some(reason.clone());
                        pending.events.push(Progress::Skipped {
                            step: step.clone(),
                            reason: reason.clone(),
                        });
                        pending.advance.skipped.push((step, reason));
                        skipped = true;
                    }
                    schedule::Decision::Run { step, input }
                        if self.running.len() < self.workflow().max_parallel
                            && !self.runner.control.draining() =>
                    {
                        let text = input.as_ref().map(Value::to_string).unwrap_or_default();
                        let digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
                        if let Some(basis) = &mut pending.advance.basis {
                            let attempts = self.record_mut(&step)?.attempts;
                            basis.attempts.insert(step.clone(), attempts);
                        }
                        self.running.insert(step.clone());
                        pending.advance.started.push((step, digest));
                        pending.inputs.push(input);
                    }
                    schedule::Decision::Run { .. } => {}
                }
            }
            deciding = skipped;
        }
        if !self.running.is_empty() {
            return Ok(());
        }
        let needs_review = |r: &&StepRecord| {
            r.failure
                .as_ref()
                .and_then(|f| f.get("kind"))
                .and_then(Value::as_str)
                == Some("needs_review")
        };
        let records = schedule::effective(&self.workflow, &self.records);
        let failed = self
            .records
            .iter()
            .filter(|r| r.status == StepStatus::Failed && !handled(r));
        if let Some(failed) = failed.clone().find(|r| !needs_review(r)) {
            pending.advance.end = Some(RunEnd {
                status: RunStatus::Failed,
                output: None,
                failure: Some(json!({"step": failed.step_id, "failure": failed.failure})),
            });
        } else if let Some(waiting) = failed.clone().find(needs_review) {
            pending.advance.end = Some(RunEnd {
                status: RunStatus::AwaitingReview,
                output: None,
                failure: Some(json!({"step": waiting.step_id, "failure": waiting.failure})),
            });
        } else if let Some((step, reason)) = &self.parked {
            pending.advance.end = Some(RunEnd {
                status: RunStatus::AwaitingReview,
                output: None,
                failure: Some(json!({"step": step, "review": reason})),
            });
        } else if records
            .iter()
            .all(|r| matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped))
        {
            let output = run_output(&self.workflow().output, &self.run.input, &records)?;
            pending.advance.end = Some(RunEnd {
                status: RunStatus::Succeeded,
                output: Some(output),
                failure: None,
            });
        }
        Ok(())
    }

    /// Journals `pending`, then starts its attempts and reports its progress; returns an
    /// empty `Pending` for the next round, and what became of the advance.
    async fn commit(&mut self, pending: Pending) -> anyhow::Result<(Pending, Committed)> {
        let (advance, followup) = pending.split();
        let advanced = self.runner.store.advance(advance).await?;
        self.runner.control.changed(&self.run.id);
        let committed = self.applied(advanced, followup).await?;
        Ok((self.empty(), committed))
    }

    /// Creates this driver's run (see [`Drive::fresh`]) and journals its first advance in
    /// the same commit. Returns the run and whether it was created: when the idempotency key
    /// names an existing run, nothing was journaled and this driver must be dropped.
    pub(super) async fn create(&mut self, new: NewRun) -> anyhow::Result<(RunRecord, bool)> {
        let mut pending = self.empty();
        self.decide(&mut pending)?;
        let (advance, followup) = pending.split();
        let ended = advance.end.as_ref().map(|end| end.status);
        let (record, created, advanced) = self.runner.store.create_started(new, advance).await?;
        let Some(advanced) = advanced else {
            return Ok((record, false));
        };
        self.runner.control.changed(&record.id);
        self.applied(advanced, followup).await?;
        if let Some(status) = ended {
            // Every step was skipped: the run ended as it was created.
            if self.runner.replay.is_none() {
                metrics::run_ended(&self.run.workflow, &self.run.version, status);
            }
            self.over = true;
        }
        Ok((record, created))
    }

    /// After an advance committed: starts its attempts and reports its progress.
    async fn applied(
        &mut self,
        advanced: crate::store::Advanced,
        followup: Followup,
    ) -> anyhow::Result<Committed> {
        let Followup {
            started,
            inputs,
            mut events,
        } = followup;
        self.seq = advanced.seq;
        if let Some(run) = &advanced.run
            && !matches!(run.status, RunStatus::Pending | RunStatus::Running)
        {
            self.ended = advanced.run.clone();
        }
        if advanced.lost_lease {
            tracing::warn!(run_id = %self.run.id, "the run's lease was taken over by another host; this host stops driving it and records nothing more");
            return Ok(Committed::RunOver);
        }
        if advanced.run_over {
            return Ok(Committed::RunOver);
        }
        if !advanced.recorded {
            // Another driver recorded this step's result first; nothing here was applied.
            // Take the journal's word for where the run stands and decide again.
            tracing::warn!(run_id = %self.run.id, "a step already had a result; this attempt's result was not recorded");
            for step in &started {
                self.running.remove(step);
            }
            self.records = self.runner.store.steps(&self.run.id).await?;
            return Ok(Committed::NotRecorded);
        }
        let alone = started.len() == 1 && self.in_flight.is_empty() && self.inline.is_empty();
        for ((step, input), attempt) in started.into_iter().zip(inputs).zip(advanced.attempts) {
            self.inputs
                .insert(step.clone(), input.as_ref().cloned().unwrap_or(Value::Null));
            let record = self.record_mut(&step)?;
            record.status = StepStatus::Running;
            record.attempts = attempt;
            events.push(Progress::Started {
                step: step.clone(),
                attempt,
            });
            let def = self
                .workflow()
                .step(&step)
                .cloned()
                .context("scheduled an unknown step")?;
            let job = Job {
                host: self.runner.host.clone(),
                store: self.runner.store.clone(),
                models: self.runner.models.clone(),
                workflow: self.workflow.clone(),
                run_id: self.run.id.clone(),
                deadline: self.deadline(),
                attempt,
                def,
                plugin: self.plugins[&step].clone(),
                input,
                replay: self.runner.replay.clone(),
                tapes: self.runner.tapes,
                profiles: self.runner.profiles,
                restore: self.runner.restore.clone(),
            };
            let span = tracing::info_span!("attempt", run_id = %self.run.id, workflow = %self.run.workflow, version = %self.run.version, step_id = %step, attempt);
            let attempt = job.run().instrument(span);
            if alone {
                // A panic stays this attempt's failure, as it would on a task of its own.
                self.inline.push(
                    std::panic::AssertUnwindSafe(attempt)
                        .catch_unwind()
                        .map(|outcome| {
                            outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the attempt panicked")))
                        })
                        .boxed(),
                );
            } else {
                self.in_flight.spawn(attempt);
            }
        }
        for event in events {
            self.runner.emit(event);
        }
        Ok(Committed::Applied)
    }

    /// The end of the run's latency budget, counted from when the run was created (so a
    /// resumed run does not get its budget back).
    fn deadline(&self) -> Option<std::time::Instant> {
        let budget = self.workflow.deadline?;
        let end_ms = self.run.created_ms + budget.as_millis() as i64;
        let left = (end_ms - crate::store::now_ms()).max(0) as u64;
        Some(std::time::Instant::now() + std::time::Duration::from_millis(left))
    }

    fn empty(&self) -> Pending {
        let mut advance = Advance::new(&self.run.id);
        advance.lease = self.lease.clone();
        advance.basis = self.seq.map(|seq| Basis {
            seq,
            attempts: HashMap::new(),
        });
        Pending {
            advance,
            inputs: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Mirrors a finished attempt in memory, as the journal will record it.
    fn apply_result(&mut self, finished: &Finished) {
        let Some(record) = self
            .records
            .iter_mut()
            .find(|r| r.step_id == finished.result.step_id)
        else {
            return;
        };
        match &finished.result.outcome {
            AttemptOutcome::Succeeded {
                output,
                confidence,
                route,
            } => {
                record.status = StepStatus::Succeeded;
                record.output = Some(output.clone());
                record.confidence = *confidence;
                record.route = route.clone();
            }
            AttemptOutcome::Failed(failure) => {
                record.status = StepStatus::Failed;
                record.failure = Some(failure.clone());
            }
        }
    }

    fn record_mut(&mut self, step: &str) -> anyhow::Result<&mut StepRecord> {
        self.records
            .iter_mut()
            .find(|r| r.step_id == step)
            .with_context(|| format!("run {} has no step {step}", self.run.id))
    }

    fn stuck(&self) -> anyhow::Error {
        let waiting: Vec<_> = self
            .records
            .iter()
            .filter(|r| !matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped))
            .map(|r| r.step_id.clone())
            .collect();
        anyhow::anyhow!(
            "run {} cannot make progress: steps {} can never become ready",
            self.run.id,
            waiting.join(", ")
        )
    }
}

/// The run's output, from its declaration.
fn run_output(output: &OutputDecl, input: &Value, records: &[StepRecord]) -> anyhow::Result<Value> {
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
