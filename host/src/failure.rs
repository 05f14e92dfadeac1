//! Typed failures of one attempt.
//!
//! Two kinds of error are kept apart (STYLE #6): what the guest reports through its WIT
//! `step-error` comes back as itself; limits hit, traps and denials are observed by the host
//! and classified here. Either way the host stays healthy and the attempt's usage is kept.

use std::time::Duration;

use serde::Serialize;

use crate::text::truncate;

/// Longest message a failure keeps (a step's own `step-error` text, a trap's message, a
/// denial's detail, a schema check's violations), in bytes; the rest is cut with a marker
/// naming the full length. A step's words go into the report, the terminal and the journal:
/// this bounds what one failed attempt adds to each, whatever the step returned.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest denial target a failure keeps; see `capabilities::MAX_DENIAL_TARGET_BYTES`.
const MAX_TARGET_BYTES: usize = crate::capabilities::MAX_DENIAL_TARGET_BYTES;

/// Why an attempt did not produce an output.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepFailure {
    /// The attempt executed all the instructions it was allowed.
    #[error("fuel exhausted: the step used all {limit} units of fuel")]
    FuelExhausted {
        /// The fuel limit that was reached.
        limit: u64,
    },
    /// The attempt ran past its wall-clock limit (guest code or host calls): its own
    /// timeout, or what was left of the run's deadline when that came first.
    #[error("{}", timeout_message(*limit, *run_deadline))]
    Timeout {
        /// The time limit that was reached.
        #[serde(serialize_with = "as_millis")]
        limit: Duration,
        /// The limit was what remained of the run's deadline, not the step's timeout.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        run_deadline: bool,
    },
    /// The guest tried to grow its memory past its limit.
    #[error(
        "memory limit exceeded: the step asked for {requested} bytes, the limit is {limit} bytes"
    )]
    MemoryExceeded {
        /// The memory limit in bytes.
        limit: u64,
        /// The total linear memory the failed growth asked for.
        requested: u64,
    },
    /// The output payload was larger than allowed.
    #[error("output too large: {size} bytes, the limit is {limit} bytes")]
    OutputTooLarge {
        /// Size of the output payload in bytes.
        size: u64,
        /// The output limit in bytes.
        limit: u64,
    },
    /// The step needed something it was not granted, and failed for it.
    #[error("denied: {capability} access to {target} is not granted ({detail})")]
    Denied {
        /// The capability that refused (`http`, `sockets`, `files`).
        capability: String,
        /// What was asked for: a host, an address, a path.
        target: String,
        /// How the step failed after the denial.
        detail: String,
    },
    /// The guest trapped: a panic, an `unreachable`, a stack overflow, a bad host call.
    #[error("trap: {message}")]
    Trap {
        /// What trapped, with the tail of the guest's stderr when it printed something.
        message: String,
    },
    /// The guest returned something that is not a valid step output.
    #[error("invalid output: {message}")]
    InvalidOutput {
        /// What is wrong with the output.
        message: String,
    },
    /// The step reported that its input is malformed.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// The step's message.
        message: String,
    },
    /// The step reported a passing failure; a retry may succeed.
    #[error("transient: {message}")]
    Transient {
        /// The step's message.
        message: String,
    },
    /// The step reported a permanent failure.
    #[error("fatal: {message}")]
    Fatal {
        /// The step's message.
        message: String,
    },
    /// The step asked for a human to look at the case.
    #[error("needs review: {message}")]
    NeedsReview {
        /// The step's message.
        message: String,
    },
    /// A model call failed and the step could not do without it.
    #[error("model {error}: {message}")]
    Model {
        /// The model failure's kind (`unavailable`, `budget_exceeded`, ...).
        error: String,
        /// What the host said about it.
        message: String,
    },
}

fn timeout_message(limit: Duration, run_deadline: bool) -> String {
    match (run_deadline, limit < Duration::from_millis(1)) {
        (false, _) => format!(
            "timed out: the step ran past its timeout of {}",
            rounded(limit)
        ),
        (true, true) => {
            "timed out: the run's deadline had already passed when the step was to start".into()
        }
        (true, false) => format!(
            "timed out: the run's deadline ran out {} into the step",
            rounded(limit)
        ),
    }
}

/// A duration for people: `0s`, `<1ms`, `962ms`, `1.5s`, `42s`, `3m 5s`, `2h 10m`.
pub fn rounded(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if d.is_zero() => "0s".into(),
        0 => "<1ms".into(),
        1..=999 => format!("{ms}ms"),
        1_000..=9_999 => {
            let tenths = (ms + 50) / 100;
            if tenths.is_multiple_of(10) {
                format!("{}s", tenths / 10)
            } else {
                format!("{}.{}s", tenths / 10, tenths % 10)
            }
        }
        10_000..=59_999 => format!("{}s", (ms + 500) / 1000),
        _ => {
            let s = (ms + 500) / 1000;
            let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
            match (h, s) {
                (0, 0) => format!("{m}m"),
                (0, _) => format!("{m}m {s}s"),
                _ if m == 0 => format!("{h}h"),
                _ => format!("{h}h {m}m"),
            }
        }
    }
}

/// The failure kinds as stable names, for matching, metrics and retry rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// See [`StepFailure::FuelExhausted`].
    FuelExhausted,
    /// See [`StepFailure::Timeout`].
    Timeout,
    /// See [`StepFailure::MemoryExceeded`].
    MemoryExceeded,
    /// See [`StepFailure::OutputTooLarge`].
    OutputTooLarge,
    /// See [`StepFailure::Denied`].
    Denied,
    /// See [`StepFailure::Trap`].
    Trap,
    /// See [`StepFailure::InvalidOutput`].
    InvalidOutput,
    /// See [`StepFailure::InvalidInput`].
    InvalidInput,
    /// See [`StepFailure::Transient`].
    Transient,
    /// See [`StepFailure::Fatal`].
    Fatal,
    /// See [`StepFailure::NeedsReview`].
    NeedsReview,
    /// See [`StepFailure::Model`].
    Model,
}

impl FailureKind {
    /// The snake_case name used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FuelExhausted => "fuel_exhausted",
            Self::Timeout => "timeout",
            Self::MemoryExceeded => "memory_exceeded",
            Self::OutputTooLarge => "output_too_large",
            Self::Denied => "denied",
            Self::Trap => "trap",
            Self::InvalidOutput => "invalid_output",
            Self::InvalidInput => "invalid_input",
            Self::Transient => "transient",
            Self::Fatal => "fatal",
            Self::NeedsReview => "needs_review",
            Self::Model => "model",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StepFailure {
    /// This failure's kind.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::FuelExhausted { .. } => FailureKind::FuelExhausted,
            Self::Timeout { .. } => FailureKind::Timeout,
            Self::MemoryExceeded { .. } => FailureKind::MemoryExceeded,
            Self::OutputTooLarge { .. } => FailureKind::OutputTooLarge,
            Self::Denied { .. } => FailureKind::Denied,
            Self::Trap { .. } => FailureKind::Trap,
            Self::InvalidOutput { .. } => FailureKind::InvalidOutput,
            Self::InvalidInput { .. } => FailureKind::InvalidInput,
            Self::Transient { .. } => FailureKind::Transient,
            Self::Fatal { .. } => FailureKind::Fatal,
            Self::NeedsReview { .. } => FailureKind::NeedsReview,
            Self::Model { .. } => FailureKind::Model,
        }
    }
}

impl StepFailure {
    /// This failure with every text it carries cut to its bound ([`MAX_MESSAGE_BYTES`]).
    pub fn bounded(self) -> Self {
        let cut = |text: String| truncate(text, MAX_MESSAGE_BYTES);
        match self {
            Self::Denied {
                capability,
                target,
                detail,
            } => Self::Denied {
                capability,
                // A target from the denial log is cut already, marker and all.
                target: truncate(target, MAX_TARGET_BYTES + crate::text::MARKER_BYTES),
                detail: cut(detail),
            },
            Self::Trap { message } => Self::Trap {
                message: cut(message),
            },
            Self::InvalidOutput { message } => Self::InvalidOutput {
                message: cut(message),
            },
            Self::InvalidInput { message } => Self::InvalidInput {
                message: cut(message),
            },
            Self::Transient { message } => Self::Transient {
                message: cut(message),
            },
            Self::Fatal { message } => Self::Fatal {
                message: cut(message),
            },
            Self::NeedsReview { message } => Self::NeedsReview {
                message: cut(message),
            },
            Self::Model { error, message } => Self::Model {
                error,
                message: cut(message),
            },
            other @ (Self::FuelExhausted { .. }
            | Self::Timeout { .. }
            | Self::MemoryExceeded { .. }
            | Self::OutputTooLarge { .. }) => other,
        }
    }
}

/// The kinds a fallback rule may name.
pub fn rule_kinds() -> Vec<String> {
    let mut kinds: Vec<String> = [
        "fuel_exhausted",
        "timeout",
        "memory_exceeded",
        "output_too_large",
        "denied",
        "trap",
        "invalid_output",
        "invalid_input",
        "transient",
        "fatal",
        "model",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    kinds.extend(
        crate::model::ModelFailure::KINDS
            .iter()
            .map(|k| format!("model.{k}")),
    );
    kinds
}

impl From<crate::bindings::StepError> for StepFailure {
    fn from(error: crate::bindings::StepError) -> Self {
        use crate::bindings::StepError as E;
        match error {
            E::InvalidInput(message) => Self::InvalidInput { message },
            E::Transient(message) => Self::Transient { message },
            E::Fatal(message) => Self::Fatal { message },
            E::NeedsReview(message) => Self::NeedsReview { message },
            E::ModelFailed(error) => {
                let failure = crate::capabilities::model::from_wit(error);
                Self::Model {
                    error: failure.kind().to_string(),
                    message: failure.to_string(),
                }
            }
        }
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_message_is_cut_to_its_bound_with_a_marker() {
        let failure = StepFailure::Fatal {
            message: "x".repeat(16 << 20),
        }
        .bounded();
        let StepFailure::Fatal { message } = &failure else {
            unreachable!()
        };
        assert!(message.len() <= MAX_MESSAGE_BYTES + crate::text::MARKER_BYTES);
        assert!(message.ends_with("… [truncated, 16777216 bytes]"));
        let small = StepFailure::Transient {
            message: "try again".into(),
        };
        assert_eq!(small.clone().bounded(), small);
    }

    #[test]
    fn durations_are_rounded_for_people_and_a_deadline_is_named() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_micros(400), "<1ms"),
            (Duration::from_micros(5_962_409), "6s"),
            (Duration::from_micros(1_460_000), "1.5s"),
            (Duration::from_millis(962), "962ms"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(185), "3m 5s"),
            (Duration::from_secs(7800), "2h 10m"),
        ];
        for (d, text) in cases {
            assert_eq!(rounded(d), text, "{d:?}");
        }
        let queued = StepFailure::Timeout {
            limit: Duration::ZERO,
            run_deadline: true,
        };
        assert_eq!(
            queued.to_string(),
            "timed out: the run's deadline had already passed when the step was to start"
        );
        let cut = StepFailure::Timeout {
            limit: Duration::from_micros(5_962_409),
            run_deadline: true,
        };
        assert_eq!(
            cut.to_string(),
            "timed out: the run's deadline ran out 6s into the step"
        );
        let own = StepFailure::Timeout {
            limit: Duration::from_secs(30),
            run_deadline: false,
        };
        assert_eq!(
            own.to_string(),
            "timed out: the step ran past its timeout of 30s"
        );
    }
}
