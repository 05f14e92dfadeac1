//! Driving a recorded run again. Strict: same workflow version and same plugins, with every
//! model call, HTTP exchange, clock read and random byte answered from its record and nothing
//! sent. As a candidate: other plugins for some steps, or another workflow version, with a
//! call answered from the record when a recorded call of its step asked the same, and a miss
//! handled as `--on-miss` says (live model calls pay from the evaluation budget).
//!
//! A replay runs in a scratch journal of its own (a temporary SQLite file), so it parks no
//! review in the real one, sends no webhook and counts in no live metric; where the recorded
//! run was reviewed, the replay takes the reviewer's recorded decision.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::{Value, json};

use super::findings::Nondeterminism;
use super::recorded::{Matching, Recorded};
use crate::engine::Host;
use crate::model::Models;
use crate::registry::{self, Loaded};
use crate::runner::Runner;
use crate::store::{
    Decided, Decision, Durability, ReviewStatus, RunRecord, RunStatus, SqliteStore, StepRecord,
    Store,
};

/// What a replay found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The recorded run.
    pub run_id: String,
    /// `strict` or `candidate`.
    pub mode: String,
    /// `name@version` replayed.
    pub workflow: String,
    /// Whether the replay came out as recorded: same statuses, outputs, routes and
    /// confidences, and no difference on any tape.
    pub identical: bool,
    /// How the recorded run ended, and how the replay did.
    pub recorded_status: RunStatus,
    /// How the replay ended.
    pub replayed_status: RunStatus,
    /// The replay's run output.
    pub output: Option<Value>,
    /// Each step, recorded beside replayed.
    pub steps: Vec<StepComparison>,
    /// Every difference, in the order it was met.
    pub nondeterminism: Vec<Nondeterminism>,
    /// Reviews the replay would have asked for (the recorded decision, when there was one,
    /// was applied instead of parking).
    pub would_review: Vec<WouldReview>,
    /// What the recorded run's model calls cost, in millionths of a dollar.
    pub recorded_cost_micros: i64,
    /// What the replay's cost: recorded answers at their recorded price, plus live calls.
    pub replayed_cost_micros: i64,
    /// A candidate's calls: answered from the record, missed, and made for real.
    pub calls: CallCounts,
    /// Under `--on-miss skip`, a call was missed: the case is left out of an evaluation.
    pub skipped: bool,
    /// The recorded run's attempts' time, summed, in microseconds.
    pub recorded_latency_us: u64,
    /// The replay's (answered calls take no time: this is the steps' own).
    pub replayed_latency_us: u64,
}

/// A candidate replay's calls (model and HTTP together).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CallCounts {
    /// Answered from the record.
    pub answered: u64,
    /// Not on record.
    pub missed: u64,
    /// Of the missed, made for real.
    pub live: u64,
}

/// How a replay runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Strict, or a candidate's matching and miss rule.
    pub matching: Matching,
    /// Plugins that replace the run's, by step id.
    pub steps: HashMap<String, crate::plugin::Plugin>,
    /// Another workflow version to run the recorded input through.
    pub workflow: Option<Arc<Loaded>>,
    /// What live model calls may spend over the whole scratch journal's life, in dollars.
    pub budget_usd: Option<f64>,
    /// Answer no model call from the record (with `Matching::Request(OnMiss::Live)`: every
    /// model call is made again, for an A/A noise floor).
    pub fresh_models: bool,
}

/// A scratch journal replays run in (one per replay, or one for a whole evaluation, whose
/// live calls then share one evaluation budget).
pub struct Scratch {
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    /// Recorded versions already loaded, by version and step pins: an evaluation's runs
    /// mostly share one, and loading it means reading, hashing and describing each plugin.
    loaded: std::sync::Mutex<HashMap<String, Loaded>>,
}

impl Scratch {
    /// A new, empty scratch journal in a temporary directory.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
            &dir.path().join("replay.db"),
            Durability::Normal,
        )?);
        Ok(Self {
            store,
            dir,
            loaded: Default::default(),
        })
    }

    /// [`loaded_as_run`], once per version and set of step pins.
    async fn loaded_as_run(
        &self,
        host: &Host,
        store: &dyn Store,
        run: &RunRecord,
        steps: &[StepRecord],
    ) -> anyhow::Result<Loaded> {
        let pins: Vec<String> = steps
            .iter()
            .map(|s| format!("{}={}", s.step_id, s.plugin_digest))
            .collect();
        let key = format!("{}@{} {}", run.workflow, run.version, pins.join(","));
        if let Some(loaded) = self.loaded.lock().unwrap().get(&key) {
            return Ok(loaded.clone());
        }
        let loaded = loaded_as_run(host, store, run, steps).await?;
        self.loaded.lock().unwrap().insert(key, loaded.clone());
        Ok(loaded)
    }

    /// The scratch journal.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// One step, recorded and replayed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepComparison {
    /// The step.
    pub step: String,
    /// Whether status, output, route and confidence are all the same.
    pub same: bool,
    /// As recorded: `{status, output, route, confidence}`.
    pub recorded: Value,
    /// As replayed.
    pub replayed: Value,
}

/// A review the replay reached.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WouldReview {
    /// The step.
    pub step: String,
    /// Why it would go to review.
    pub reason: String,
    /// The recorded decision the replay took (`approved`, `edited`, `rejected`), or `null`
    /// when the recorded run had none and the replay stopped there.
    pub decision: Option<String>,
}

/// Why a run cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No such run.
    #[error("no run {0}")]
    NotFound(String),
    /// The run cannot be replayed (still running, a tape over its cap, …).
    #[error("run {run} cannot be replayed: {reason}")]
    NotReplayable {
        /// The run.
        run: String,
        /// Why.
        reason: String,
    },
    /// The candidate does not fit the run (a step the workflow does not have).
    #[error("{0}")]
    Candidate(String),
    /// The store or the host failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Replays run `run_id` of `store` strictly.
pub async fn strict(
    host: &Host,
    store: &Arc<dyn Store>,
    models: &Models,
    run_id: &str,
) -> Result<ReplayReport, ReplayError> {
    let scratch = Scratch::new()?;
    replay(host, store, models, run_id, &Options::default(), &scratch).await
}

/// Replays run `run_id` of `store` as `options` say, in `scratch`.
pub async fn replay(
    host: &Host,
    store: &Arc<dyn Store>,
    models: &Models,
    run_id: &str,
    options: &Options,
    scratch: &Scratch,
) -> Result<ReplayReport, ReplayError> {
    let run = ended_run(store.as_ref(), run_id).await?;
    let refuse = |reason: String| ReplayError::NotReplayable {
        run: run_id.to_string(),
        reason,
    };
    let recorded_steps = store.steps(run_id).await?;
    let attempts = store.attempts(run_id).await?;
    let recorded_calls = store.model_calls(run_id).await?;
    let recorded_cost_micros = recorded_calls.iter().map(|c| c.cost_micros).sum();
    let mut recorded = Recorded::new(&attempts, recorded_calls).matched_by(options.matching);
    recorded.budget_usd = options.budget_usd;
    recorded.fresh_models = options.fresh_models;
    if let Some((step, attempt, reason)) = recorded.incomplete() {
        return Err(refuse(format!("step {step} attempt {attempt}: {reason}")));
    }
    let loaded = match &options.workflow {
        Some(candidate) => (**candidate).clone(),
        None => {
            scratch
                .loaded_as_run(host, store.as_ref(), &run, &recorded_steps)
                .await?
        }
    };
    let loaded = with_steps(loaded, &options.steps)?;

    let scratch_store = scratch.store.clone();
    let scratch_dir = scratch.dir.path();
    let recorded = Arc::new(recorded);
    let runner = Runner::new(
        host.clone(),
        scratch_store.clone(),
        scratch_dir.to_path_buf(),
    )
    .with_models(models.clone())
    .replaying(recorded.clone());
    let scratch = &scratch_store;
    let mut replayed = runner
        .submit_and_execute(&loaded, run.input.clone(), None, |_, _| {})
        .await
        .map_err(|e| anyhow::anyhow!("the replay could not run: {e}"))?;

    let decisions = store.reviews(None, Some(run_id)).await?;
    let mut would_review = Vec::new();
    let mut used = 0;
    while replayed.status == RunStatus::AwaitingReview {
        let pending = scratch
            .reviews(Some(ReviewStatus::Pending), Some(&replayed.id))
            .await?;
        let Some(review) = pending.into_iter().next() else {
            break;
        };
        // The recorded run's decisions on this step, in the order they were made.
        let recorded_decision = decisions
            .iter()
            .filter(|d| d.step_id == review.step_id && d.status != ReviewStatus::Pending)
            .nth(used_for(&would_review, &review.step_id));
        let decision = recorded_decision.and_then(|d| match d.status {
            ReviewStatus::Approved => Some(Decision::Approve),
            ReviewStatus::Edited => d.after.clone().map(Decision::Edit),
            ReviewStatus::Rejected => Some(Decision::Reject(
                d.note.clone().unwrap_or_else(|| "rejected".into()),
            )),
            _ => None,
        });
        would_review.push(WouldReview {
            step: review.step_id.clone(),
            reason: review.reason.clone(),
            decision: decision
                .as_ref()
                .and(recorded_decision.map(|d| d.status.to_string())),
        });
        let Some(decision) = decision else { break };
        let decided = Decided {
            by: "replay".into(),
            note: Some("the recorded run's decision".into()),
        };
        runner
            .decide(&review.id, decision, decided)
            .await
            .map_err(|e| anyhow::anyhow!("the recorded decision could not be applied: {e}"))?;
        replayed = runner.execute(&replayed.id).await?;
        used += 1;
        if used > 1000 {
            break;
        }
    }

    recorded.report_untaken();
    let mut findings = recorded.findings.take();
    let replayed_steps = scratch.steps(&replayed.id).await?;
    let replayed_attempts = scratch.attempts(&replayed.id).await?;
    findings.extend(input_differences(&attempts, &replayed_attempts));
    let steps = compare_steps(&recorded_steps, &replayed_steps, &mut findings);
    let identical =
        findings.is_empty() && run.status == replayed.status && steps.iter().all(|s| s.same);
    let live_cost: i64 = scratch
        .model_calls(&replayed.id)
        .await?
        .iter()
        .map(|c| c.cost_micros)
        .sum();
    let tally = &recorded.tally;
    let counts = CallCounts {
        answered: tally.answered.load(Ordering::Relaxed),
        missed: tally.missed.load(Ordering::Relaxed),
        live: tally.live.load(Ordering::Relaxed),
    };
    let replayed_cost_micros = match options.matching {
        Matching::Position => recorded_cost_micros,
        Matching::Request(_) => tally.answered_cost_micros.load(Ordering::Relaxed) + live_cost,
    };
    Ok(ReplayReport {
        run_id: run.id.clone(),
        mode: match options.matching {
            Matching::Position => "strict".into(),
            Matching::Request(_) => "candidate".into(),
        },
        workflow: format!("{}@{}", run.workflow, run.version),
        identical,
        recorded_status: run.status,
        replayed_status: replayed.status,
        output: replayed.output,
        steps,
        nondeterminism: findings,
        would_review,
        recorded_cost_micros,
        replayed_cost_micros,
        calls: counts,
        skipped: tally.skipped.load(Ordering::Relaxed),
        recorded_latency_us: attempts.iter().filter_map(|a| a.latency_us).sum(),
        replayed_latency_us: replayed_attempts.iter().filter_map(|a| a.latency_us).sum(),
    })
}

/// `loaded` with the plugins of `steps` in place of its own.
fn with_steps(
    mut loaded: Loaded,
    steps: &HashMap<String, crate::plugin::Plugin>,
) -> Result<Loaded, ReplayError> {
    for (id, plugin) in steps {
        if loaded.workflow.step(id).is_none() {
            return Err(ReplayError::Candidate(format!(
                "the candidate step {id}: {} has no step `{id}` (its steps: {})",
                loaded.workflow.name,
                loaded.workflow.step_ids(", ")
            )));
        }
        loaded.plugins.insert(id.clone(), plugin.clone());
        loaded.pins.insert(id.clone(), plugin.digest().to_string());
    }
    Ok(loaded)
}

/// Run `run_id`, when it can be driven again: it has ended (or is awaiting review) and its
/// payloads are still there.
pub(super) async fn ended_run(store: &dyn Store, run_id: &str) -> Result<RunRecord, ReplayError> {
    let run = store
        .get_run(run_id)
        .await?
        .ok_or_else(|| ReplayError::NotFound(run_id.to_string()))?;
    let refuse = |reason: String| ReplayError::NotReplayable {
        run: run_id.to_string(),
        reason,
    };
    if matches!(run.status, RunStatus::Pending | RunStatus::Running) {
        return Err(refuse(format!(
            "it is still {}; replay it once it has ended or is awaiting review",
            run.status
        )));
    }
    if run.input.is_null() {
        return Err(refuse("its payloads were purged".into()));
    }
    Ok(run)
}

/// How many decisions on `step` the replay has taken already.
fn used_for(so_far: &[WouldReview], step: &str) -> usize {
    so_far
        .iter()
        .filter(|w| w.step == step && w.decision.is_some())
        .count()
}

/// The run's workflow version, with each step on the plugin the run was pinned to (not the
/// version's pins now, which a later registration may have moved).
pub(super) async fn loaded_as_run(
    host: &Host,
    store: &dyn Store,
    run: &RunRecord,
    steps: &[StepRecord],
) -> anyhow::Result<Loaded> {
    let workflow = registry::load_definition(store, &run.workflow, &run.version)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stored = store
        .get_workflow(&run.workflow, Some(&run.version))
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "workflow {}@{} is not registered",
                run.workflow,
                run.version
            )
        })?;
    let mut plugins = HashMap::new();
    let mut pins: BTreeMap<String, String> = stored.pins;
    for step in steps {
        let origin = format!("{}@{} step {}", run.workflow, run.version, step.step_id);
        let plugin = registry::load_plugin(host, store, &step.plugin_digest, &origin).await?;
        plugins.insert(step.step_id.clone(), plugin);
        pins.insert(step.step_id.clone(), step.plugin_digest.clone());
    }
    Ok(Loaded {
        workflow: Arc::new(workflow),
        plugins,
        pins,
    })
}

/// Attempts whose input differs from the recorded attempt's of the same number.
fn input_differences(
    recorded: &[crate::store::AttemptRecord],
    replayed: &[crate::store::AttemptRecord],
) -> Vec<Nondeterminism> {
    replayed
        .iter()
        .filter_map(|r| {
            let before = recorded
                .iter()
                .find(|a| a.step_id == r.step_id && a.attempt == r.attempt)?;
            (before.input_digest != r.input_digest).then(|| {
                Nondeterminism::new(
                    &r.step_id,
                    r.attempt,
                    "input".into(),
                    json!({"sha256": before.input_digest}),
                    json!({"sha256": r.input_digest}),
                )
            })
        })
        .collect()
}

/// Each recorded step beside its replay; a step whose result differs is a finding too.
fn compare_steps(
    recorded: &[StepRecord],
    replayed: &[StepRecord],
    findings: &mut Vec<Nondeterminism>,
) -> Vec<StepComparison> {
    let view = |s: Option<&StepRecord>| match s {
        None => Value::Null,
        Some(s) => json!({
            "status": s.status, "output": s.output, "route": s.route, "confidence": s.confidence,
        }),
    };
    recorded
        .iter()
        .map(|before| {
            let after = replayed.iter().find(|s| s.step_id == before.step_id);
            let (expected, got) = (view(Some(before)), view(after));
            // Numbers compare as written (`arbitrary_precision`), so equal values are equal
            // JSON text.
            let same = expected == got;
            if !same {
                findings.push(Nondeterminism::new(
                    &before.step_id,
                    before.attempts.max(1),
                    "result".into(),
                    expected.clone(),
                    got.clone(),
                ));
            }
            StepComparison {
                step: before.step_id.clone(),
                same,
                recorded: expected,
                replayed: got,
            }
        })
        .collect()
}
