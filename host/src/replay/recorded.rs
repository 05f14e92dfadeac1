//! A recorded run, as a replay answers from it: each attempt's tape and model calls, handed
//! out in order, with one place where every difference the replay meets is reported.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::deck::Deck;
use super::findings::Findings;
use super::tape::AttemptTape;
use crate::store::{AttemptRecord, ModelCallRecord};

/// How a replay matches what it asks with what the record holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Matching {
    /// Strict: the same request at the same position of the same attempt, or it is
    /// nondeterminism.
    #[default]
    Position,
    /// A candidate: any recorded call of the same step that asked the same is the answer;
    /// what no recorded call answers follows `OnMiss`.
    Request(OnMiss),
}

/// What a candidate does with a call the record cannot answer.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnMiss {
    /// Make it for real: a model call paid from the evaluation budget, an HTTP `GET`
    /// (any other method is refused: a candidate has no side effects).
    Live,
    /// Refuse it: the step sees a refusal.
    #[default]
    Fail,
    /// Refuse it and leave the case out of the evaluation.
    Skip,
}

/// What a candidate replay's calls came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls answered from the record.
    pub answered: AtomicU64,
    /// Calls the record could not answer.
    pub missed: AtomicU64,
    /// Of those, calls made for real.
    pub live: AtomicU64,
    /// What the recorded calls that answered had cost, in millionths of a dollar.
    pub answered_cost_micros: AtomicI64,
    /// A miss under `OnMiss::Skip`: the case is left out.
    pub skipped: AtomicBool,
}

impl Tally {
    /// One more of `counter`.
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a replay answers from. Attempts are matched by step and attempt number: a replay
/// that is deterministic numbers its attempts as the record does.
#[derive(Debug, Default)]
pub struct Recorded {
    tapes: HashMap<(String, u32), AttemptTape>,
    calls: HashMap<(String, u32), Vec<ModelCallRecord>>,
    /// How many model calls of each attempt the replay has taken.
    taken: Mutex<HashMap<(String, u32), usize>>,
    /// Recorded calls a candidate has been answered with: (step, attempt, seq).
    used: Mutex<HashSet<(String, u32, u32)>>,
    /// How what the replay asks is matched with the record.
    pub matching: Matching,
    /// A candidate's evaluation budget: what its live model calls may spend, in dollars,
    /// over the scratch journal's life (`None`: no limit).
    pub budget_usd: Option<f64>,
    /// What a candidate's calls came to.
    pub tally: std::sync::Arc<Tally>,
    /// Where differences are reported.
    pub findings: Findings,
    /// Model calls are never answered from the record (an A/A replay: the recorded version
    /// against itself with live model calls, for the model's own noise).
    pub fresh_models: bool,
}

impl Recorded {
    /// The record of a run: its attempts (with their tapes) and its model calls.
    pub fn new(attempts: &[AttemptRecord], calls: Vec<ModelCallRecord>) -> Self {
        let tapes = attempts
            .iter()
            .filter_map(|a| {
                let tape: AttemptTape = serde_json::from_value(a.tape.clone()?).ok()?;
                Some(((a.step_id.clone(), a.attempt), tape))
            })
            .collect();
        let mut by_attempt: HashMap<(String, u32), Vec<ModelCallRecord>> = HashMap::new();
        for call in calls {
            by_attempt
                .entry((call.step_id.clone(), call.attempt))
                .or_default()
                .push(call);
        }
        for list in by_attempt.values_mut() {
            list.sort_by_key(|c| c.seq);
        }
        Self {
            tapes,
            calls: by_attempt,
            ..Self::default()
        }
    }

    /// The same record, matched as `matching` says.
    pub fn matched_by(mut self, matching: Matching) -> Self {
        self.matching = matching;
        self
    }

    /// For a candidate: the first recorded call of `step` (any attempt) not used yet that
    /// asked `asked` (as [`super::model::asked_of_record`] puts it); it is used from then on.
    pub fn find_model_call(
        &self,
        step: &str,
        asked: &serde_json::Value,
    ) -> Option<ModelCallRecord> {
        if self.fresh_models {
            return None;
        }
        let mut used = self.used.lock().expect("replay cursor lock");
        let mut attempts: Vec<_> = self.calls.keys().filter(|(s, _)| s == step).collect();
        attempts.sort();
        for key in attempts {
            for call in &self.calls[key] {
                let id = (key.0.clone(), key.1, call.seq);
                if !used.contains(&id) && &super::model::asked_of_record(call) == asked {
                    used.insert(id);
                    return Some(call.clone());
                }
            }
        }
        None
    }

    /// The first attempt whose tape went over its cap, and why: such a run cannot be
    /// replayed.
    pub fn incomplete(&self) -> Option<(String, u32, String)> {
        let mut cut: Vec<_> = self
            .tapes
            .iter()
            .filter_map(|((step, attempt), tape)| {
                Some((step.clone(), *attempt, tape.incomplete.clone()?))
            })
            .collect();
        cut.sort();
        cut.into_iter().next()
    }

    /// The deck that plays attempt `attempt` of `step` back (an empty tape when it read
    /// nothing from the host).
    pub fn deck(&self, step: &str, attempt: u32) -> Deck {
        let tape = self
            .tapes
            .get(&(step.to_string(), attempt))
            .cloned()
            .unwrap_or_default();
        match self.matching {
            Matching::Position => Deck::play(tape, self.findings.clone(), step, attempt),
            // A candidate's HTTP may be any of the step's recorded exchanges.
            Matching::Request(on_miss) => {
                let mut exchanges: Vec<_> =
                    self.tapes.iter().filter(|((s, _), _)| s == step).collect();
                exchanges.sort_by_key(|((_, a), _)| *a);
                let mut tape = tape;
                tape.http = exchanges
                    .into_iter()
                    .flat_map(|(_, t)| t.http.clone())
                    .collect();
                Deck::candidate(tape, on_miss, self.tally.clone(), step, attempt)
            }
        }
    }

    /// The next recorded model call of the attempt, and its position (from 1).
    pub fn next_model_call(&self, step: &str, attempt: u32) -> (usize, Option<ModelCallRecord>) {
        let key = (step.to_string(), attempt);
        let mut taken = self.taken.lock().expect("replay cursor lock");
        let at = taken.entry(key.clone()).or_default();
        *at += 1;
        let call = self.calls.get(&key).and_then(|c| c.get(*at - 1)).cloned();
        (*at, call)
    }

    /// Model calls the record holds that the replay never made, reported as differences
    /// (on a strict replay: a candidate may well ask less).
    pub fn report_untaken(&self) {
        if self.matching != Matching::Position {
            return;
        }
        let taken = self.taken.lock().expect("replay cursor lock");
        let mut keys: Vec<_> = self.calls.keys().collect();
        keys.sort();
        for key in keys {
            let from = taken.get(key).copied().unwrap_or(0);
            for call in self.calls[key].iter().skip(from) {
                self.findings.push(super::Nondeterminism::new(
                    &key.0,
                    key.1,
                    format!("model call {}", call.seq),
                    super::model::asked_of_record(call),
                    serde_json::Value::Null,
                ));
            }
        }
    }
}
