//! Rollouts: a new workflow version takes a rising share of live runs, is checked against the
//! stable version on the same window of the journal at every interval, and is promoted,
//! paused or rolled back by what the checks find.
//!
//! The parts, each with one job: the [`plan`] (weights, pace, thresholds, checked at the
//! start), sticky [`assign`]ment of runs to arms, the [`figures`] each arm shows in a window,
//! the [`analysis`] that turns two arms' figures into a verdict, the state [`machine`] that
//! turns verdicts and commands into transitions, and the [`driver`] that reads the journal,
//! decides, and writes the transition back (compare-and-set on the rollout's revision, so
//! that when several hosts of a fleet check at once, one check counts).
//!
//! Every transition and every check is journaled as an event with its figures, so that
//! `weir rollout explain` can decide every step again from the journal alone.

pub mod analysis;
pub mod assign;
pub mod driver;
pub mod explain;
pub mod figures;
pub mod machine;
pub mod plan;

use serde::{Deserialize, Serialize};

pub use analysis::{Check, Verdict};
pub use assign::Arm;
pub use driver::{Command, RolloutError, Start};
pub use plan::{Plan, Thresholds};

/// Where a rollout is:
/// `pending → ramping ⇄ paused → promoted | rolled_back | aborted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created; its first step has not begun (its candidate is not registered yet: every
    /// new run starts on the stable version).
    Pending,
    /// A step's weight is live and checked every interval.
    Ramping,
    /// Holding its weight until someone resumes, promotes or aborts it.
    Paused,
    /// The candidate took every new run: it is the workflow's version now.
    Promoted,
    /// The checks failed it: new runs start on the stable version again.
    RolledBack,
    /// Stopped by hand: new runs start on the stable version again.
    Aborted,
}

impl State {
    /// Whether the rollout is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Promoted | Self::RolledBack | Self::Aborted)
    }

    /// Its name in the journal and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ramping => "ramping",
            Self::Paused => "paused",
            Self::Promoted => "promoted",
            Self::RolledBack => "rolled_back",
            Self::Aborted => "aborted",
        }
    }
}

/// A rollout of one workflow from one version to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rollout {
    /// Rollout id (a UUIDv7).
    pub id: String,
    /// The workflow.
    pub workflow: String,
    /// The version runs started on before (the stable arm).
    pub from: String,
    /// The version rolled out (the candidate).
    pub to: String,
    /// What it was asked to do.
    pub plan: Plan,
    /// Where it is.
    pub state: State,
    /// The step it is at (an index into `plan.steps`).
    pub step: usize,
    /// The candidate's share of new runs now, in percent.
    pub weight: u32,
    /// Consecutive passing checks at this step.
    pub passes: u32,
    /// Failed checks at this step.
    pub fails: u32,
    /// Runs created since this time count in this step's checks (ms).
    pub window_since_ms: i64,
    /// The hold and the maximum hold are counted from here (the step's start, or its
    /// resumption after a pause).
    pub held_since_ms: i64,
    /// The last check (ms), if the step has had one.
    pub last_check_ms: Option<i64>,
    /// Why it is where it is, in a sentence.
    pub reason: String,
    /// Created (ms since the Unix epoch).
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
    /// Bumped by every change: a write that expects an older revision lost a race.
    pub revision: i64,
}

/// A journaled change to a rollout: a transition or a check, with its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutEvent {
    /// Its place in the rollout's log, from 1.
    pub seq: i64,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// `started`, `pending`, `ramping`, `check`, `paused`, `resumed`, `promoted`,
    /// `rolled_back` or `aborted`.
    pub kind: String,
    /// Its figures: the step and weight, the check, who asked, why.
    pub data: serde_json::Value,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its kind.
    pub kind: &'static str,
    /// Its figures.
    pub data: serde_json::Value,
}
