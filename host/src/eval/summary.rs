//! An evaluation's aggregates over its cases: agreement with Wilson intervals, the route
//! confusion matrix, the confidence shift, review, cost and latency per run, and accuracy
//! against the decisions humans made on the recorded runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::case::Case;
use super::stats::{Rate, Shift, mean, percentile, shift, wilson};

/// What an evaluation found, over every case it could evaluate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Recorded runs selected.
    pub cases: u64,
    /// Of those, evaluated (not skipped).
    pub evaluated: u64,
    /// Left out: a miss under `--on-miss skip`, or a run that cannot be replayed.
    pub skipped: u64,
    /// New failures plus cases that could not run: what a gate of `errors == 0` forbids.
    pub errors: u64,
    /// Cases the candidate failed where the recorded run did not.
    pub new_failures: u64,
    /// Cases whose every step's output is the same (ignored paths aside).
    pub output_agreement: Rate,
    /// Steps with a route (in either version) whose route is the same.
    pub route_agreement: Rate,
    /// Step → recorded route → candidate route → cases (`none` for no route).
    pub confusion: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
    /// Candidate − recorded confidence, over steps with both.
    pub confidence_shift: Shift,
    /// Share of cases with a review: recorded, and the candidate's would-review share.
    pub review_rate: Change,
    /// Model cost per run in dollars.
    pub cost_per_run: Paired,
    /// The steps' own time per run in milliseconds (answered calls take none).
    pub latency_per_run: Paired,
    /// Against human decisions on the recorded runs, when there are any.
    pub accuracy: Option<Accuracy>,
    /// Calls over every case: answered from the record, missed, made live.
    pub calls: BTreeMap<String, u64>,
    /// Cases with at least one regression.
    pub regressions: u64,
    /// The A/A noise floor (`--aa N`), when asked for.
    pub aa: Option<NoiseFloor>,
}

/// The recorded version replayed against itself with every model call made again: how
/// often the model's own noise alone changes an output or a route. A candidate's
/// disagreement is worth reading only above this floor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoiseFloor {
    /// Runs replayed.
    pub runs: u64,
    /// Of them, with every step's output the same.
    pub output_agreement: Rate,
    /// Routed steps whose route is the same.
    pub route_agreement: Rate,
    /// Model calls made live.
    pub live_calls: u64,
    /// What they cost, in dollars (from the evaluation budget).
    pub cost_usd: f64,
}

/// A share before and after.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// Recorded.
    pub baseline: f64,
    /// Candidate.
    pub candidate: f64,
    /// candidate − baseline.
    pub delta: f64,
}

/// A per-run figure for both versions.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Paired {
    /// Recorded mean.
    pub baseline_mean: f64,
    /// Candidate mean.
    pub candidate_mean: f64,
    /// Recorded 95th percentile.
    pub baseline_p95: f64,
    /// Candidate 95th percentile.
    pub candidate_p95: f64,
    /// The mean per-run difference, with its interval.
    pub delta: Shift,
    /// (candidate mean − baseline mean) ÷ baseline mean, in percent (0 when the baseline is 0).
    pub delta_pct: f64,
}

/// How often each version's output is the one a human let stand or wrote.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Accuracy {
    /// The recorded version.
    pub baseline: Rate,
    /// The candidate.
    pub candidate: Rate,
}

/// The summary of `cases`.
pub fn summarize(cases: &[Case]) -> Summary {
    let evaluated: Vec<&Case> = cases.iter().filter(|c| !c.skipped).collect();
    let n = evaluated.len() as u64;
    let count = |f: &dyn Fn(&Case) -> bool| evaluated.iter().filter(|c| f(c)).count() as u64;
    let new_failures = count(&|c| c.new_failure);
    let unrunnable = cases.iter().filter(|c| c.error.is_some()).count() as u64;

    let mut confusion: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    let (mut routed, mut same_route) = (0, 0);
    let mut deltas = Vec::new();
    for case in &evaluated {
        for step in &case.steps {
            if let (Some(a), Some(b)) = step.confidence {
                deltas.push(b - a);
            }
            if step.route == (None, None) {
                continue;
            }
            routed += 1;
            same_route += u64::from(step.route.0 == step.route.1);
            let name = |r: &Option<String>| r.clone().unwrap_or_else(|| "none".into());
            *confusion
                .entry(step.step.clone())
                .or_default()
                .entry(name(&step.route.0))
                .or_default()
                .entry(name(&step.route.1))
                .or_default() += 1;
        }
    }
    let share = |x: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    let (reviewed, would_review) = (
        count(&|c| c.recorded_review),
        count(&|c| c.candidate_review),
    );
    let human: Vec<&(String, bool, bool)> = evaluated.iter().flat_map(|c| &c.human).collect();
    let accuracy = (!human.is_empty()).then(|| Accuracy {
        baseline: wilson(
            human.iter().filter(|h| h.1).count() as u64,
            human.len() as u64,
        ),
        candidate: wilson(
            human.iter().filter(|h| h.2).count() as u64,
            human.len() as u64,
        ),
    });
    let total = |pick: fn(&Case) -> u64| evaluated.iter().map(|c| pick(c)).sum::<u64>();
    let calls = BTreeMap::from([
        ("answered".to_string(), total(|c| c.calls.0)),
        ("missed".to_string(), total(|c| c.calls.1)),
        ("live".to_string(), total(|c| c.calls.2)),
    ]);
    Summary {
        cases: cases.len() as u64,
        evaluated: n,
        skipped: cases.len() as u64 - n,
        errors: new_failures + unrunnable,
        new_failures,
        output_agreement: wilson(count(&|c| c.output_same), n),
        route_agreement: wilson(same_route, routed),
        confusion,
        confidence_shift: shift(&deltas),
        review_rate: Change {
            baseline: share(reviewed),
            candidate: share(would_review),
            delta: share(would_review) - share(reviewed),
        },
        cost_per_run: paired(&evaluated, |c| {
            (c.cost_micros.0 as f64 / 1e6, c.cost_micros.1 as f64 / 1e6)
        }),
        latency_per_run: paired(&evaluated, |c| {
            (c.latency_us.0 as f64 / 1e3, c.latency_us.1 as f64 / 1e3)
        }),
        accuracy,
        calls,
        regressions: count(&|c| !c.regressions.is_empty()),
        aa: None,
    }
}

fn paired(cases: &[&Case], figure: impl Fn(&Case) -> (f64, f64)) -> Paired {
    let pairs: Vec<(f64, f64)> = cases.iter().map(|c| figure(c)).collect();
    let baseline: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let candidate: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let deltas: Vec<f64> = pairs.iter().map(|p| p.1 - p.0).collect();
    let (b, c) = (mean(&baseline), mean(&candidate));
    Paired {
        baseline_mean: b,
        candidate_mean: c,
        baseline_p95: percentile(&baseline, 95.0),
        candidate_p95: percentile(&candidate, 95.0),
        delta: shift(&deltas),
        delta_pct: if b == 0.0 { 0.0 } else { (c - b) / b * 100.0 },
    }
}
