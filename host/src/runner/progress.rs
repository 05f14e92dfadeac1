//! Progress events a runner reports while it drives a run (for the CLI's live display).

use std::time::Duration;

/// Something that happened to a step.
#[derive(Debug, Clone)]
pub enum Progress {
    /// An attempt started.
    Started {
        /// The step.
        step: String,
        /// Its attempt number.
        attempt: u32,
    },
    /// An attempt succeeded.
    Succeeded {
        /// The step.
        step: String,
        /// How long it took.
        elapsed: Duration,
        /// The route it chose.
        route: Option<String>,
        /// Its confidence.
        confidence: Option<f64>,
    },
    /// An attempt failed.
    Failed {
        /// The step.
        step: String,
        /// The typed failure, as text.
        failure: String,
    },
    /// The step was skipped.
    Skipped {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
}
