//! One attempt: a fresh sandbox, one call to the step's `run`, and a report of what came
//! back and what it cost.

mod classify;
mod limiter;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::{Store, UpdateDeadline};

pub use state::AttemptState;

use crate::bindings::StepContext;
use crate::capabilities::config::StepConfig;
use crate::capabilities::files::quota::QuotaWatch;
use crate::capabilities::log::LogLine;
use crate::capabilities::{Denial, Grants};
use crate::engine::{Compiled, EngineSlot};
use crate::failure::StepFailure;
use crate::limits::Limits;

/// How one step is set up: its limits, its config table and its grants. Built once when a
/// step is declared; every attempt of the step uses it.
#[derive(Debug, Clone, Default)]
pub struct StepSpec {
    /// Resource limits, clamped by the host's ceilings before each attempt.
    pub limits: Limits,
    /// The config table the guest reads through the `config` import.
    pub config: StepConfig,
    /// Directories and hosts the guest may reach.
    pub grants: Grants,
}

/// Who is running: the ids the guest sees in its context and every log line carries, and
/// where the run's state lives.
#[derive(Debug, Clone)]
pub struct AttemptContext {
    /// The run this attempt belongs to.
    pub run_id: String,
    /// The step's id in its workflow.
    pub step_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The run's `state` capability.
    pub state: crate::capabilities::state::StateScope,
    /// The `model` capability, when the step is granted model aliases.
    pub model: Option<crate::capabilities::model::ModelAccess>,
    /// The end of the run's latency budget (`deadline`), when it has one: no attempt runs
    /// past it, whatever its own timeout.
    pub deadline: Option<Instant>,
    /// Where the attempt's clock reads, random bytes and HTTP exchanges come from and go:
    /// live and kept for replay, played back from a record, or (the default) live and not kept.
    pub deck: crate::replay::Deck,
}

impl Default for AttemptContext {
    fn default() -> Self {
        Self {
            run_id: "local".into(),
            step_id: "step".into(),
            attempt: 1,
            state: Default::default(),
            model: None,
            deadline: None,
            deck: Default::default(),
        }
    }
}

/// A successful step result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutput {
    /// The payload, parsed from the guest's JSON text.
    pub payload: serde_json::Value,
    /// The step's confidence, 0.0 to 1.0.
    pub confidence: Option<f64>,
    /// The route label the step chose.
    pub route: Option<String>,
    /// The size of the payload's JSON text as the guest wrote it, in bytes.
    #[serde(skip)]
    pub size: u64,
}

/// What one attempt consumed, successful or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Fuel consumed, when the attempt was metered.
    pub fuel_consumed: Option<u64>,
    /// The fuel limit, when the attempt was metered.
    pub fuel_limit: Option<u64>,
    /// Largest total linear memory the guest held, in bytes.
    pub memory_peak_bytes: u64,
    /// Wall-clock time from sandbox creation to the end of the call.
    #[serde(serialize_with = "as_micros")]
    pub elapsed: Duration,
}

/// Everything the host knows about one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    /// The result, or the typed failure.
    #[serde(serialize_with = "outcome_json")]
    pub outcome: Result<StepOutput, StepFailure>,
    /// What the attempt consumed.
    pub usage: Usage,
    /// The log lines that fit in the attempt's log budget.
    pub logs: Vec<LogLine>,
    /// Log lines dropped past the budget.
    pub logs_dropped: u64,
    /// What the guest wrote to stdout (bounded).
    pub stdout: String,
    /// What the guest wrote to stderr (bounded).
    pub stderr: String,
    /// Bytes of stdout and stderr dropped past the bound.
    pub stdio_dropped_bytes: u64,
    /// Requests the sandbox refused: the first `capabilities::MAX_KEPT_DENIALS`, targets cut.
    pub denials: Vec<Denial>,
    /// Refusals past that bound, counted only.
    pub denials_dropped: u64,
    /// When the attempt's time is up: the host's own work for the step after the guest returns
    /// (checking its output against its schema) counts against the same limit.
    #[serde(skip)]
    pub time: TimeLimit,
}

/// The end of an attempt's time, and the limit that set it.
#[derive(Debug, Clone, Copy)]
pub struct TimeLimit {
    /// The instant the attempt's time is up.
    pub deadline: Instant,
    /// The limit, as a timeout failure reports it.
    pub limit: Duration,
    /// The limit was what remained of the run's deadline, not the step's timeout.
    pub run_deadline: bool,
}

impl TimeLimit {
    /// The failure of an attempt that ran past this limit.
    pub fn exceeded(&self) -> StepFailure {
        StepFailure::Timeout {
            limit: self.limit,
            run_deadline: self.run_deadline,
        }
    }
}

/// Runs one attempt of `compiled` on `input` in a fresh store.
pub(crate) async fn run(
    slot: &EngineSlot,
    compiled: &Arc<Compiled>,
    spec: &StepSpec,
    limits: &Limits,
    input: &str,
    ctx: &AttemptContext,
) -> anyhow::Result<AttemptReport> {
    let started = Instant::now();
    // What is left of the run's latency budget bounds the attempt like its own timeout does.
    let cut;
    let run_deadline = ctx
        .deadline
        .is_some_and(|end| end < started + limits.timeout);
    let limits = match ctx.deadline {
        Some(end) if run_deadline => {
            cut = Limits {
                timeout: end.saturating_duration_since(started),
                ..limits.clone()
            };
            &cut
        }
        _ => limits,
    };
    let deadline = started + limits.timeout;
    // Writable directories are measured before the guest can touch them.
    let quota = QuotaWatch::start(&spec.grants.dirs).await;
    let mut store = new_store(slot, spec, limits, ctx, deadline)?;
    store.data_mut().quota = quota.clone();
    let checks = quota.spawn_checks();
    store.data_mut().deadline_cut = run_deadline;

    let wit_ctx = StepContext {
        run_id: ctx.run_id.clone(),
        step_id: ctx.step_id.clone(),
        attempt: ctx.attempt,
        deadline_ms: Some(
            deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
        ),
    };
    let call = async {
        let step = compiled.pre.instantiate_async(&mut store).await?;
        step.call_run(&mut store, &wit_ctx, input).await
    };
    // The epoch callback stops guest code at the deadline; this timeout stops a host call
    // (an HTTP request, say) that is still waiting when the deadline passes.
    let result = match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(result) => result,
        Err(_) => {
            store.data_mut().timed_out = true;
            Err(wasmtime::Error::msg("deadline passed during a host call"))
        }
    };
    if let Some(checks) = checks {
        checks.abort();
    }
    // What the step wrote just before it returned counts too.
    quota.check().await;
    let usage = Usage {
        fuel_consumed: limits
            .fuel
            .map(|limit| limit - store.get_fuel().unwrap_or(0)),
        fuel_limit: limits.fuel,
        memory_peak_bytes: store.data().limiter.peak,
        elapsed: started.elapsed(),
    };
    Ok(classify::report(result, store.into_data(), limits, usage))
}

/// A store for one attempt, with every limit armed.
pub(crate) fn new_store(
    slot: &EngineSlot,
    spec: &StepSpec,
    limits: &Limits,
    ctx: &AttemptContext,
    deadline: Instant,
) -> anyhow::Result<Store<AttemptState>> {
    let state = AttemptState::new(spec, limits, ctx, deadline)?;
    let mut store = Store::new(&slot.engine, state);
    store.limiter(|s| &mut s.limiter);
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
    }
    // Every epoch tick the guest yields to the async runtime (so a busy step cannot starve
    // others on the same thread) and the deadline is checked.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        if Instant::now() >= cx.data().deadline {
            cx.data_mut().timed_out = true;
            return Err(wasmtime::Error::msg("deadline passed"));
        }
        if cx.data().quota.exceeded() {
            return Err(wasmtime::Error::msg("a directory quota was exceeded"));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    Ok(store)
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

fn outcome_json<S: serde::Serializer>(
    outcome: &Result<StepOutput, StepFailure>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Outcome<'a> {
        Ok(&'a StepOutput),
        Failed(&'a StepFailure),
    }
    match outcome {
        Ok(output) => Outcome::Ok(output).serialize(s),
        Err(failure) => Outcome::Failed(failure).serialize(s),
    }
}
