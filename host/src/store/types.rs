//! The records the journal keeps.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident ($what:literal) { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every name, in declaration order: what `from_str` accepts (and the API documents).
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name stored in the journal.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("{other:?} is not a {}; use one of: {}", $what, Self::NAMES.join(", "))),
                }
            }
        }
    };
}

status_enum! {
    /// Where a run is: `pending → running → (awaiting_review) → succeeded | failed | cancelled`.
    RunStatus ("run status") {
        /// Submitted, not started.
        Pending = "pending",
        /// Steps are executing.
        Running = "running",
        /// A step asked for a human.
        AwaitingReview = "awaiting_review",
        /// Finished with an output.
        Succeeded = "succeeded",
        /// Finished with a failure.
        Failed = "failed",
        /// Stopped on request.
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// Where a step of a run is.
    StepStatus ("step status") {
        /// Not started.
        Pending = "pending",
        /// An attempt was journaled and has no result yet.
        Running = "running",
        /// Has an output.
        Succeeded = "succeeded",
        /// Has a failure.
        Failed = "failed",
        /// Did not run: its condition was false, its route was not taken, or a dependency was skipped.
        Skipped = "skipped",
        /// An attempt only: it never got a result (the process driving it died, or lost the
        /// run), and its run moved on without it: its step started again, or the run ended.
        Interrupted = "interrupted",
    }
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A registered workflow version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowVersion {
    /// Workflow name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// sha256 of the source text.
    pub digest: String,
    /// The TOML source.
    pub source: String,
    /// The directory relative paths in the source were resolved against.
    pub base_dir: String,
    /// The plugin digest each step is pinned to.
    pub pins: BTreeMap<String, String>,
    /// When it was registered (ms since the Unix epoch).
    pub registered_ms: i64,
}

/// The outcome of registering a workflow version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new version.
    New,
    /// The same content was registered before.
    Existing,
    /// The same definition with other plugin bytes: the version's pins now point at them,
    /// for runs submitted from now on.
    Repinned,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run's id when the caller chose it (a UUIDv7, so that ids sort by creation);
    /// otherwise the store makes one.
    pub id: Option<String>,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version.
    pub version: String,
    /// The run input.
    pub input: Value,
    /// Returns the existing run when the same key was used before.
    pub idempotency_key: Option<String>,
    /// Step ids with the plugin digest each is pinned to, in workflow order.
    pub steps: Vec<(String, String)>,
    /// What the workflow's `[redact]` took out of the input.
    pub redacted: Vec<crate::redaction::Redaction>,
    /// The run this one reruns from a step (`weir replay --from-step`), if any.
    pub source_run: Option<String>,
}

/// Lists `redacted` in an event's data (under `redacted`), when there is anything to list.
fn with_redacted(data: &mut Value, redacted: &[crate::redaction::Redaction]) {
    if let (false, Value::Object(map)) = (redacted.is_empty(), data) {
        map.insert(
            "redacted".into(),
            serde_json::to_value(redacted).unwrap_or_default(),
        );
    }
}

impl NewRun {
    /// The data of its `run_created` event.
    pub(crate) fn event_data(&self) -> Value {
        let mut data = serde_json::json!({"workflow": self.workflow, "version": self.version});
        with_redacted(&mut data, &self.redacted);
        data
    }

    /// The record of this run once created under `id` in `status` at `now_ms`: nothing
    /// has ended it yet.
    pub fn record(&self, id: String, status: RunStatus, now_ms: i64) -> RunRecord {
        RunRecord {
            id,
            workflow: self.workflow.clone(),
            version: self.version.clone(),
            status,
            input: self.input.clone(),
            output: None,
            failure: None,
            review: None,
            idempotency_key: self.idempotency_key.clone(),
            source_run: self.source_run.clone(),
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// Run id (a UUIDv7: sorts by creation time).
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version the run is pinned to.
    pub version: String,
    /// Where the run is.
    pub status: RunStatus,
    /// The input.
    pub input: Value,
    /// The output, once succeeded.
    pub output: Option<Value>,
    /// The failure, once failed (`{"step", "failure"}`); never set on a run that has not failed.
    pub failure: Option<Value>,
    /// While awaiting review, what it waits for: `{"step", "review"}` (a review gate's
    /// reason) or `{"step", "failure"}` (a step that asked for review).
    pub review: Option<Value>,
    /// The idempotency key it was submitted with.
    pub idempotency_key: Option<String>,
    /// The run this one reruns from a step (`weir replay --from-step`, or `from_step` over
    /// HTTP): the steps it did not run again keep that run's results.
    pub source_run: Option<String>,
    /// Created (ms since the Unix epoch).
    pub created_ms: i64,
    /// Last changed (ms since the Unix epoch).
    pub updated_ms: i64,
}

impl RunRecord {
    /// The record as the journal row holds it: a parked run keeps what it waits for in its
    /// failure column (the one place a run's "why it stopped" lives), which is shown as
    /// `review`, since the run has not failed.
    pub(crate) fn parked_review_split(mut self) -> Self {
        if self.status == RunStatus::AwaitingReview {
            self.review = self.failure.take();
        }
        self
    }
}

#[path = "review_types.rs"]
mod review_types;
pub use review_types::*;

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// At most this many (default 50).
    pub limit: Option<u32>,
    /// Only runs older than this run id (ids sort by creation time): the page after it.
    pub before: Option<String>,
    /// Only runs of this workflow version.
    pub version: Option<String>,
    /// Only runs created at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only runs created before this time.
    pub until_ms: Option<i64>,
    /// Only runs where some step took this route.
    pub route: Option<String>,
    /// Only runs with (`true`) or without (`false`) a review.
    pub has_review: Option<bool>,
    /// Only the run with this id, or with this idempotency key.
    pub id_or_key: Option<String>,
    /// Only runs whose model calls cost at least this much (millionths of a dollar).
    pub min_cost_micros: Option<i64>,
}

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepRecord {
    /// Step id.
    pub step_id: String,
    /// The plugin digest the step is pinned to.
    pub plugin_digest: String,
    /// Where it is.
    pub status: StepStatus,
    /// Its output, once succeeded.
    pub output: Option<Value>,
    /// Its confidence, once succeeded.
    pub confidence: Option<f64>,
    /// Its route, once succeeded.
    pub route: Option<String>,
    /// Its failure, once failed.
    pub failure: Option<Value>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// Attempts journaled.
    pub attempts: u32,
}

impl StepRecord {
    /// A step as its run was created: pending, pinned to `plugin_digest`, never attempted.
    pub fn pending(step_id: String, plugin_digest: String) -> Self {
        Self {
            step_id,
            plugin_digest,
            status: StepStatus::Pending,
            output: None,
            confidence: None,
            route: None,
            failure: None,
            skip_reason: None,
            attempts: 0,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// With an output.
    Succeeded {
        /// The payload.
        output: Value,
        /// The confidence.
        confidence: Option<f64>,
        /// The route label.
        route: Option<String>,
    },
    /// With a typed failure (as JSON: `{"kind": …, …}`).
    Failed(Value),
}

/// An attempt's result, to journal.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step_id: String,
    /// The attempt number [`Store::advance`](super::Store::advance) gave it when it started.
    pub attempt: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Wall-clock time of the attempt.
    pub latency_us: u64,
    /// Fuel consumed, when metered.
    pub fuel: Option<u64>,
    /// Peak linear memory.
    pub memory_peak: u64,
    /// Log lines and stdio, as JSON, for `weir runs show`.
    pub logs: Value,
    /// What the workflow's `[redact]` took out of the output, failure and logs.
    pub redacted: Vec<crate::redaction::Redaction>,
    /// What the attempt read from the host (clocks, random bytes, HTTP), for replay; `None`
    /// when it read nothing.
    pub tape: Option<Value>,
}

/// What a result writes to its step row, as the backends store it (JSON as text).
pub(crate) struct ResultColumns {
    pub status: &'static str,
    pub output: Option<String>,
    pub confidence: Option<f64>,
    pub route: Option<String>,
    pub failure: Option<String>,
}

impl AttemptResult {
    /// The step status this result gives: `succeeded` or `failed`.
    pub(crate) fn status(&self) -> &'static str {
        match self.outcome {
            AttemptOutcome::Succeeded { .. } => "succeeded",
            AttemptOutcome::Failed(_) => "failed",
        }
    }

    /// The step row's columns for this result, the same on every backend.
    pub(crate) fn columns(&self) -> ResultColumns {
        match &self.outcome {
            AttemptOutcome::Succeeded {
                output,
                confidence,
                route,
            } => ResultColumns {
                status: "succeeded",
                output: Some(output.to_string()),
                confidence: *confidence,
                route: route.clone(),
                failure: None,
            },
            AttemptOutcome::Failed(failure) => ResultColumns {
                status: "failed",
                output: None,
                confidence: None,
                route: None,
                failure: Some(failure.to_string()),
            },
        }
    }

    /// The data of the `step_succeeded` / `step_failed` event.
    pub(crate) fn event_data(&self) -> Value {
        let mut data = match &self.outcome {
            AttemptOutcome::Succeeded {
                confidence, route, ..
            } => {
                serde_json::json!({"attempt": self.attempt, "latency_us": self.latency_us, "confidence": confidence, "route": route})
            }
            AttemptOutcome::Failed(failure) => {
                serde_json::json!({"attempt": self.attempt, "latency_us": self.latency_us, "failure": failure})
            }
        };
        with_redacted(&mut data, &self.redacted);
        data
    }
}

/// One attempt as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    /// The step.
    pub step_id: String,
    /// 1, 2, …
    pub attempt: u32,
    /// sha256 of the step input.
    pub input_digest: String,
    /// `running`, `succeeded`, `failed`, or `interrupted` (no result, and the run moved on:
    /// the step started again or the run ended; `finished_ms` says when).
    pub status: StepStatus,
    /// The failure, if it failed.
    pub failure: Option<Value>,
    /// Started (ms since the Unix epoch).
    pub started_ms: i64,
    /// Finished (ms since the Unix epoch).
    pub finished_ms: Option<i64>,
    /// Wall-clock time of the attempt.
    pub latency_us: Option<u64>,
    /// Fuel consumed, when metered.
    pub fuel: Option<u64>,
    /// Peak linear memory.
    pub memory_peak: Option<u64>,
    /// Log lines and stdio.
    pub logs: Option<Value>,
    /// Its replay tape: clock reads, random bytes and HTTP exchanges, in order.
    pub tape: Option<Value>,
}

/// One entry of a run's event log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Position in the run's log, from 1.
    pub seq: i64,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// What happened: `run_created`, `run_running`, `step_started`, `step_succeeded`,
    /// `step_failed`, `step_skipped`, `run_succeeded`, `run_failed`, `run_cancelled`, …
    pub kind: String,
    /// The step it concerns.
    pub step_id: Option<String>,
    /// Details.
    pub data: Value,
}

/// One atomic step forward in a run's journal, committed in one transaction: an attempt's
/// result, the steps that this makes skipped, the attempts it starts, and the run's end.
///
/// Batching these keeps the journal's promises (an attempt is journaled before it runs, its
/// result after) while a linear run pays one commit per step instead of three.
#[derive(Debug, Clone, Default)]
pub struct Advance {
    /// The run; if it is still `pending`, it becomes `running`.
    pub run_id: String,
    /// An attempt's result, recorded first. When the step already has a result, nothing in
    /// this advance is applied and [`Advanced::recorded`] is false.
    pub finished: Option<AttemptResult>,
    /// What `finished` adds to its step's profile (see `store/profiles.rs`): added in the same
    /// transaction, and only when the result is recorded, so a count is never lost or doubled.
    pub profile: Option<super::profiles::StepProfile>,
    /// Steps to mark skipped: (step id, reason).
    pub skipped: Vec<(String, String)>,
    /// Attempts to start: (step id, sha256 of its input).
    pub started: Vec<(String, String)>,
    /// The run's end, when this advance ends it.
    pub end: Option<RunEnd>,
    /// A review to open (the run parks when its attempts in flight are done).
    pub review: Option<NewReview>,
    /// The lease the driver holds on the run, in a fleet: the advance applies only while
    /// the run's lease is still this one (fencing), else nothing is applied.
    pub lease: Option<Lease>,
    /// What the driver knows of the run as of its previous advance. A backend may use it in
    /// place of reading the steps' states back, but only once it has checked that the run's
    /// log has not changed since; otherwise it ignores it.
    pub basis: Option<Basis>,
}

/// The run as its driver last committed it: the sequence number of the log's last event
/// then, and the journaled attempt count of each step this advance starts.
///
/// When the log still ends at `seq`, nothing but this driver has changed the run since its
/// last commit (every change to a run appends an event), so the driver's own view of the
/// steps it finishes and starts is the journal's, and the exactly-once checks hold by
/// construction. A backend that finds another last event checks every rule against the
/// journal as usual.
#[derive(Debug, Clone, Default)]
pub struct Basis {
    /// The run's last event as of the driver's previous advance ([`Advanced::seq`]).
    pub seq: i64,
    /// Step id → attempts journaled so far, for each step this advance starts.
    pub attempts: std::collections::HashMap<String, u32>,
}

/// A host's claim on a run: who holds it, and which grant of it this is. Every claim bumps
/// the epoch, so a host whose lease was taken over cannot write with its old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The run.
    pub run_id: String,
    /// The host holding it.
    pub owner: String,
    /// The grant's number.
    pub epoch: i64,
}

impl Advance {
    /// An empty advance of `run_id`.
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            ..Self::default()
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.finished.is_none()
            && self.skipped.is_empty()
            && self.started.is_empty()
            && self.end.is_none()
            && self.review.is_none()
    }
}

/// How a run ends.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// `succeeded`, `failed` or `awaiting_review`.
    pub status: RunStatus,
    /// The run's output, when it succeeded.
    pub output: Option<Value>,
    /// What failed, when it did not.
    pub failure: Option<Value>,
}

/// What an [`Advance`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Advanced {
    /// False when the finished attempt's step already had a result: then nothing was applied.
    pub recorded: bool,
    /// The attempt number of each started step, in the order given.
    pub attempts: Vec<u32>,
    /// The run had already ended (it was cancelled): the result was recorded, nothing was
    /// started, and the driver should stop.
    pub run_over: bool,
    /// The driver's lease was taken over: nothing was applied, and it must stop.
    pub lost_lease: bool,
    /// The run's last event after this advance, for the next advance's [`Basis`]; `None`
    /// from a backend that does not use one.
    pub seq: Option<i64>,
    /// The run as this advance left it, when the advance changed the run itself (started
    /// or ended it) and the backend reports it: the driver need not read it back.
    pub run: Option<RunRecord>,
}
