//! Reads the journal, decides, writes the decision back: starting a rollout, checking it when
//! its interval is due, carrying out a person's order, and choosing a new run's version.
//!
//! Every write is a compare-and-set on the rollout's revision. Hosts of a fleet each check
//! on their own clock; the first write of a check wins and the others see a newer revision
//! and drop theirs, so a check is counted once and both hosts route by the same weight.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::analysis::analyse;
use super::assign::{self, Arm};
use super::figures::{Window, gather};
use super::machine::{self, Order, Outcome};
use super::{Plan, Rollout, State};
use crate::store::{RunFilter, Store};

/// What `weir rollout start` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The workflow.
    pub workflow: String,
    /// The version to roll out.
    pub to: String,
    /// The stable version (default: the one new runs start on now).
    #[serde(default)]
    pub from: Option<String>,
    /// The ramp and its checks.
    pub plan: Plan,
}

/// A person's order, and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What to do.
    pub order: Order,
    /// Who asks (journaled).
    pub by: String,
}

/// Why a rollout could not be started or changed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The request names something wrong.
    #[error("{0}")]
    Invalid(String),
    /// The plan cannot run: each problem names its field.
    #[error("the rollout plan cannot run: {}", .0.join("; "))]
    Plan(Vec<String>),
    /// No such rollout.
    #[error("no rollout {0}")]
    NotFound(String),
    /// No version of the workflow is registered.
    #[error("no workflow {0} is registered: register a version of it before rolling one out")]
    UnknownWorkflow(String),
    /// It conflicts with the rollout's state (or another active rollout).
    #[error("{0}")]
    Conflict(String),
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// How many times a change is tried again after losing a race with another writer.
const RACE_RETRIES: usize = 5;

/// Starts a rollout: checks the plan and both versions, journals it, and begins its first step.
pub async fn start(store: &dyn Store, start: Start, now_ms: i64) -> Result<Rollout, RolloutError> {
    // What the rollout is of comes first: a plan for a workflow that is not there is moot.
    if store.get_workflow(&start.workflow, None).await?.is_none() {
        return Err(RolloutError::UnknownWorkflow(start.workflow));
    }
    let problems = start.plan.problems();
    if !problems.is_empty() {
        return Err(RolloutError::Plan(problems));
    }
    let name = &start.workflow;
    let registered = |version: String| async move {
        match store.get_workflow(name, Some(&version)).await? {
            Some(_) => Ok(version),
            None => Err(RolloutError::Invalid(format!(
                "no workflow {name}@{version} is registered: register it (run its file once, or put it in the workflows directory) before rolling it out"
            ))),
        }
    };
    // The candidate need not be registered yet: a rollout started first waits in `pending`
    // (every new run on the stable version) and begins once it is, so that registering the
    // new version never sends it a run before the rollout decides.
    let to = start.to.clone();
    if semver::Version::parse(&to).is_err() {
        return Err(RolloutError::Invalid(format!(
            "`to` is {to:?}, not a semantic version (MAJOR.MINOR.PATCH)"
        )));
    }
    let to_registered = store.get_workflow(name, Some(&to)).await?.is_some();
    let from = match start.from {
        Some(from) => registered(from).await?,
        None => current_version(store, name, &to).await?,
    };
    if from == to {
        return Err(RolloutError::Invalid(format!(
            "{name}@{to} is already the version new runs start on: nothing to roll out"
        )));
    }
    let rollout = Rollout {
        id: uuid::Uuid::now_v7().to_string(),
        workflow: name.clone(),
        from: from.clone(),
        to: to.clone(),
        plan: start.plan,
        state: State::Pending,
        step: 0,
        weight: 0,
        passes: 0,
        fails: 0,
        window_since_ms: now_ms,
        held_since_ms: now_ms,
        last_check_ms: None,
        reason: "created".into(),
        created_ms: now_ms,
        updated_ms: now_ms,
        revision: 1,
    };
    let started = super::NewEvent {
        kind: "started",
        data: json!({"from": from, "to": to, "plan": rollout.plan}),
    };
    if let Err(active) = store
        .rollouts()
        .create_rollout(&rollout, vec![started])
        .await?
    {
        return Err(RolloutError::Conflict(format!(
            "workflow {name} has a rollout in progress ({active}): promote, roll back or abort it first"
        )));
    }
    if to_registered {
        let begun = machine::begin(&rollout, now_ms);
        write(store, &rollout, begun).await?;
    } else {
        let mut waiting = rollout.clone();
        waiting.reason = format!("waiting for {name}@{to} to be registered");
        let event = super::NewEvent {
            kind: "pending",
            data: json!({"why": waiting.reason}),
        };
        let outcome = Outcome {
            rollout: waiting,
            events: vec![event],
        };
        write(store, &rollout, outcome).await?;
    }
    Ok(store
        .rollouts()
        .get_rollout(&rollout.id)
        .await?
        .unwrap_or(rollout))
}

/// The version new runs of `workflow` start on without a rollout's split: its latest
/// rollout's outcome, or else the highest registered version other than `besides`.
async fn current_version(
    store: &dyn Store,
    workflow: &str,
    besides: &str,
) -> Result<String, RolloutError> {
    if let Some(latest) = store.rollouts().latest_rollout(workflow).await? {
        // One in progress: starting another is refused (naming it) once this returns.
        if !latest.state.is_final() {
            return Ok(latest.from);
        }
        return Ok(assign::version_for(&latest, "").0);
    }
    let mut versions: Vec<semver::Version> = store
        .list_workflows()
        .await?
        .into_iter()
        .filter(|w| w.name == workflow && w.version != besides)
        .filter_map(|w| w.version.parse().ok())
        .collect();
    versions.sort();
    versions.pop().map(|v| v.to_string()).ok_or_else(|| {
        RolloutError::Invalid(format!(
            "workflow {workflow} has no other registered version to roll out from; name one (`from`)"
        ))
    })
}

/// Checks a ramping rollout when its interval is due; starts a pending one. Returns the
/// rollout when this call changed it.
pub async fn tick(store: &dyn Store, id: &str, now_ms: i64) -> anyhow::Result<Option<Rollout>> {
    let Some(rollout) = store.rollouts().get_rollout(id).await? else {
        return Ok(None);
    };
    let outcome = match rollout.state {
        State::Pending => {
            if store
                .get_workflow(&rollout.workflow, Some(&rollout.to))
                .await?
                .is_none()
            {
                return Ok(None);
            }
            machine::begin(&rollout, now_ms)
        }
        State::Ramping
            if rollout
                .last_check_ms
                .is_none_or(|at| now_ms - at >= rollout.plan.interval_ms) =>
        {
            let check = check(store, &rollout, now_ms).await?;
            machine::after_check(&rollout, &check, now_ms)
        }
        _ => return Ok(None),
    };
    write(store, &rollout, outcome).await
}

/// [`tick`] on every rollout not over; the rollouts this call changed (one that fails is
/// logged and left for the next sweep).
pub async fn tick_all(store: &dyn Store, now_ms: i64) -> anyhow::Result<Vec<Rollout>> {
    let mut changed = Vec::new();
    for rollout in store.rollouts().list_rollouts(None, true).await? {
        // One rollout that cannot be checked does not hold up the others.
        match tick(store, &rollout.id, now_ms).await {
            Ok(Some(r)) => changed.push(r),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(rollout = %rollout.id, workflow = %rollout.workflow, error = %format!("{e:#}"), "checking a rollout failed");
            }
        }
    }
    Ok(changed)
}

/// Reads both arms over the step's window and judges them.
pub async fn check(
    store: &dyn Store,
    rollout: &Rollout,
    now_ms: i64,
) -> anyhow::Result<super::Check> {
    let window = Window {
        since_ms: rollout.window_since_ms,
        until_ms: now_ms,
    };
    let stable = gather(store, &rollout.workflow, &rollout.from, window).await?;
    let candidate = gather(store, &rollout.workflow, &rollout.to, window).await?;
    Ok(analyse(
        &rollout.plan.analysis,
        rollout.plan.min_runs,
        window,
        stable,
        candidate,
    ))
}

/// Carries out a person's order.
pub async fn command(
    store: &dyn Store,
    id: &str,
    command: &Command,
    now_ms: i64,
) -> Result<Rollout, RolloutError> {
    for _ in 0..RACE_RETRIES {
        let rollout = store
            .rollouts()
            .get_rollout(id)
            .await?
            .ok_or_else(|| RolloutError::NotFound(id.to_string()))?;
        let outcome = machine::order(&rollout, command.order, &command.by, now_ms)
            .map_err(RolloutError::Conflict)?;
        if let Some(done) = write(store, &rollout, outcome).await? {
            return Ok(done);
        }
    }
    Err(RolloutError::Conflict(format!(
        "rollout {id} kept changing under this order; try again"
    )))
}

/// Writes an outcome over `before`; `None` when another writer changed it first.
async fn write(
    store: &dyn Store,
    before: &Rollout,
    outcome: Outcome,
) -> anyhow::Result<Option<Rollout>> {
    let mut next = outcome.rollout;
    next.revision = before.revision + 1;
    let written = store
        .rollouts()
        .update_rollout(&next, outcome.events)
        .await?;
    if written {
        crate::metrics::rollout_changed(&next);
    }
    Ok(written.then_some(next))
}

/// The version a new run of `workflow` starts on, when a rollout decides it: `None` when
/// the workflow never had one (the highest version, as before). A submission whose
/// idempotency key names a run already gets that run's version, so a retry is answered
/// with its run even after the weight moved. Runs without a key take a place on the line by
/// a fresh id, which the caller may give the run.
pub async fn choose(
    store: &dyn Store,
    workflow: &str,
    key: Option<&str>,
    run_id: &str,
) -> anyhow::Result<Option<(String, Arm, String)>> {
    let Some(latest) = store.rollouts().latest_rollout(workflow).await? else {
        return Ok(None);
    };
    if let Some(key) = key {
        let existing = store
            .list_runs(&RunFilter {
                workflow: Some(workflow.to_string()),
                id_or_key: Some(key.to_string()),
                limit: Some(1),
                ..RunFilter::default()
            })
            .await?;
        if let Some(run) = existing
            .into_iter()
            .find(|r| r.idempotency_key.as_deref() == Some(key))
        {
            let arm = if run.version == latest.to {
                Arm::Candidate
            } else {
                Arm::Stable
            };
            return Ok(Some((run.version, arm, latest.id)));
        }
    }
    let (version, arm) = assign::version_for(&latest, key.unwrap_or(run_id));
    Ok(Some((version, arm, latest.id)))
}
