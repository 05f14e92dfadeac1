//! What a replay found that differs from the record: a typed `nondeterminism` report that
//! names the step, the attempt, the position on its tape, and what was expected and got, as
//! values and as a JSON diff (RFC 6902 operations that turn the expected into what came).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

/// One difference between a replayed attempt and its record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Nondeterminism {
    /// The step.
    pub step: String,
    /// The attempt (as numbered in the recorded run).
    pub attempt: u32,
    /// Where on the attempt's tape: `model call 2`, `http request 1`, `wall clock read 7`,
    /// `random bytes 32..48`, or `input` / `output` / `route` / `confidence` / `status`.
    pub position: String,
    /// What the record holds there (`null` when the record ends before it).
    pub expected: Value,
    /// What the replay did there (`null` when the replay stopped short of it).
    pub got: Value,
    /// The JSON Patch from `expected` to `got`.
    #[schema(value_type = Vec<Object>)]
    pub diff: Value,
}

impl Nondeterminism {
    /// A finding at `position`, with its diff computed.
    pub fn new(step: &str, attempt: u32, position: String, expected: Value, got: Value) -> Self {
        let diff = serde_json::to_value(json_patch::diff(&expected, &got)).unwrap_or(Value::Null);
        Self {
            step: step.to_string(),
            attempt,
            position,
            expected,
            got,
            diff,
        }
    }
}

/// Where the attempts of one replay report what they found; shared by every attempt of it.
#[derive(Debug, Clone, Default)]
pub struct Findings(Arc<Mutex<Vec<Nondeterminism>>>);

impl Findings {
    /// Adds a finding (the first 1,000; a replay that drifts that far says enough).
    pub fn push(&self, finding: Nondeterminism) {
        let mut all = self.0.lock().expect("findings lock");
        if all.len() < MAX_FINDINGS {
            all.push(finding);
        }
    }

    /// Everything found so far, in the order it was found.
    pub fn take(&self) -> Vec<Nondeterminism> {
        std::mem::take(&mut *self.0.lock().expect("findings lock"))
    }
}

const MAX_FINDINGS: usize = 1000;
