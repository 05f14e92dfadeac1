//! One check of a rollout: both arms' figures over the same window, every metric's verdict,
//! and the check's verdict. A pure function of the figures and the thresholds, so that a
//! check journaled months ago can be decided again and must come out the same.
//!
//! The order of judgement is the order of harm: a critical failure rate rolls back at once,
//! whatever else holds; an arm below `min_runs` is inconclusive (never a failure: too few
//! runs prove nothing either way); then one failing metric fails the check, and it passes
//! only when every metric passes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::figures::{ArmFigures, Moments, Window};
use super::plan::Thresholds;
use crate::eval::stats::{Z95_ONE_SIDED, newcombe};
use crate::monitor::stats::{chi_square_homogeneity, js_distance};

/// Reviews an arm needs before its rejection rate is judged.
const MIN_REVIEWS: u64 = 10;
/// Values a step needs in each arm before its route mix or confidence is judged: one
/// run on a rare branch decides nothing.
const MIN_PER_STEP: u64 = 10;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every metric is within its tolerance.
    Pass,
    /// Some metric is worse than its tolerance allows.
    Fail,
    /// The candidate's failure rate is over the critical cap: roll back now.
    Critical,
    /// Too few runs, or a metric that has not decided yet.
    Inconclusive,
}

/// One metric's verdict, and the figures it stood on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metric {
    /// `failure_rate`, `review_reject_rate`, `p95_latency_ms`, `cost_per_run`,
    /// `route_distribution:<step>` or `confidence:<step>`.
    pub name: String,
    /// The stable arm's value.
    pub stable: f64,
    /// The candidate's value.
    pub candidate: f64,
    /// The interval or bound the verdict compared with the tolerance, where there is one.
    pub lo: Option<f64>,
    /// Its upper end.
    pub hi: Option<f64>,
    /// What the candidate may not exceed (or, for confidence, fall below).
    pub limit: f64,
    /// `pass`, `fail` or `inconclusive`; `None` when the metric had nothing to judge.
    pub verdict: Option<Verdict>,
    /// Why, in a sentence.
    pub why: String,
}

/// A check: the window, both arms, every metric, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// The runs it read.
    pub window: Window,
    /// The stable arm.
    pub stable: ArmFigures,
    /// The candidate.
    pub candidate: ArmFigures,
    /// Each metric's verdict.
    pub metrics: Vec<Metric>,
    /// The check's verdict.
    pub verdict: Verdict,
    /// Why, in a sentence.
    pub why: String,
}

/// Judges two arms' figures.
pub fn analyse(
    thresholds: &Thresholds,
    min_runs: u64,
    window: Window,
    stable: ArmFigures,
    candidate: ArmFigures,
) -> Check {
    let t = thresholds;
    let failure = rate(
        "failure_rate",
        (candidate.failed, candidate.runs),
        (stable.failed, stable.runs),
        t.failure_rate,
    );
    let critical = candidate.runs >= t.critical_min_runs
        && ratio(candidate.failed, candidate.runs) > t.critical_failure_rate;
    let mut metrics = vec![failure];
    metrics.push(
        if candidate.reviewed < MIN_REVIEWS || stable.reviewed < MIN_REVIEWS {
            skipped(
                "review_reject_rate",
                format!(
                    "fewer than {MIN_REVIEWS} reviewed runs in an arm ({} stable, {} candidate)",
                    stable.reviewed, candidate.reviewed
                ),
            )
        } else {
            rate(
                "review_reject_rate",
                (candidate.rejected, candidate.reviewed),
                (stable.rejected, stable.reviewed),
                t.review_reject_rate,
            )
        },
    );
    metrics.push(match (stable.p95_latency_ms, candidate.p95_latency_ms) {
        (Some(s), Some(c)) => bounded(
            "p95_latency_ms",
            s,
            c,
            s * t.p95_latency_ratio + t.latency_slack_ms,
        ),
        _ => skipped("p95_latency_ms", "no run without a review in an arm".into()),
    });
    metrics.push(bounded(
        "cost_per_run",
        stable.cost_per_run_usd,
        candidate.cost_per_run_usd,
        stable.cost_per_run_usd * t.cost_ratio + t.cost_slack_usd,
    ));
    let steps: BTreeSet<&String> = stable
        .routes
        .keys()
        .chain(candidate.routes.keys())
        .collect();
    for step in steps {
        metrics.push(routes(t, step, &stable, &candidate));
    }
    for (step, s) in &stable.confidence {
        match candidate.confidence.get(step) {
            Some(c) if s.n >= MIN_PER_STEP && c.n >= MIN_PER_STEP => {
                metrics.push(confidence(t, step, s, c));
            }
            other => metrics.push(skipped(
                &format!("confidence:{step}"),
                format!(
                    "fewer than {MIN_PER_STEP} confidences in an arm ({} stable, {} candidate)",
                    s.n,
                    other.map_or(0, |c| c.n)
                ),
            )),
        }
    }

    let (verdict, why) = if critical {
        (
            Verdict::Critical,
            format!(
                "the candidate failed {} of {} runs, over the critical {:.0}%",
                candidate.failed,
                candidate.runs,
                t.critical_failure_rate * 100.0
            ),
        )
    } else if stable.runs < min_runs || candidate.runs < min_runs {
        (
            Verdict::Inconclusive,
            format!(
                "too few ended runs: {} stable and {} candidate, {min_runs} needed in each",
                stable.runs, candidate.runs
            ),
        )
    } else if let Some(failed) = metrics.iter().find(|m| m.verdict == Some(Verdict::Fail)) {
        (Verdict::Fail, format!("{}: {}", failed.name, failed.why))
    } else if let Some(open) = metrics
        .iter()
        .find(|m| m.verdict == Some(Verdict::Inconclusive))
    {
        (
            Verdict::Inconclusive,
            format!("{}: {}", open.name, open.why),
        )
    } else {
        (Verdict::Pass, "every metric is within its tolerance".into())
    };
    Check {
        window,
        stable,
        candidate,
        metrics,
        verdict,
        why,
    }
}

fn ratio(hits: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { hits as f64 / n as f64 }
}

/// A rate the candidate may exceed by `tolerance`: judged on the one-sided 95% Newcombe
/// bounds of the difference.
fn rate(name: &str, candidate: (u64, u64), stable: (u64, u64), tolerance: f64) -> Metric {
    let d = newcombe(candidate.0, candidate.1, stable.0, stable.1, Z95_ONE_SIDED);
    let (verdict, why) = if d.lo > tolerance {
        (
            Verdict::Fail,
            format!(
                "the candidate is worse by at least {:.3} (tolerance {tolerance})",
                d.lo
            ),
        )
    } else if d.hi < tolerance {
        (
            Verdict::Pass,
            format!(
                "the candidate is worse by at most {:.3} (tolerance {tolerance})",
                d.hi
            ),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "the difference lies in {:.3}..{:.3}, across the tolerance {tolerance}",
                d.lo, d.hi
            ),
        )
    };
    Metric {
        name: name.to_string(),
        stable: ratio(stable.0, stable.1),
        candidate: ratio(candidate.0, candidate.1),
        lo: Some(d.lo),
        hi: Some(d.hi),
        limit: tolerance,
        verdict: Some(verdict),
        why,
    }
}

/// A value the candidate may not exceed.
fn bounded(name: &str, stable: f64, candidate: f64, limit: f64) -> Metric {
    let pass = candidate <= limit;
    Metric {
        name: name.to_string(),
        stable,
        candidate,
        lo: None,
        hi: None,
        limit,
        verdict: Some(if pass { Verdict::Pass } else { Verdict::Fail }),
        why: format!(
            "{candidate:.6} against {stable:.6}, at most {limit:.6} allowed{}",
            if pass { "" } else { ": over" }
        ),
    }
}

fn skipped(name: &str, why: String) -> Metric {
    Metric {
        name: name.to_string(),
        stable: 0.0,
        candidate: 0.0,
        lo: None,
        hi: None,
        limit: 0.0,
        verdict: None,
        why,
    }
}

/// The route mix of one step: fails when it differs both significantly and materially.
fn routes(t: &Thresholds, step: &str, stable: &ArmFigures, candidate: &ArmFigures) -> Metric {
    let empty = Default::default();
    let (s, c) = (
        stable.routes.get(step).unwrap_or(&empty),
        candidate.routes.get(step).unwrap_or(&empty),
    );
    let labels: BTreeSet<&String> = s.keys().chain(c.keys()).collect();
    let counts = |m: &std::collections::BTreeMap<String, u64>| -> Vec<u64> {
        labels
            .iter()
            .map(|l| m.get(*l).copied().unwrap_or(0))
            .collect()
    };
    let (sc, cc) = (counts(s), counts(c));
    let name = format!("route_distribution:{step}");
    let (ns, nc) = (sc.iter().sum::<u64>(), cc.iter().sum::<u64>());
    if ns < MIN_PER_STEP && nc < MIN_PER_STEP || ns.min(nc) > 0 && ns.min(nc) < MIN_PER_STEP {
        return skipped(
            &name,
            format!(
                "fewer than {MIN_PER_STEP} routed runs in an arm ({ns} stable, {nc} candidate)"
            ),
        );
    }
    if ns.min(nc) == 0 {
        // The step routes in one arm and never in the other: the candidate changed its shape.
        return Metric {
            name,
            stable: ns as f64,
            candidate: nc as f64,
            lo: None,
            hi: None,
            limit: 0.0,
            verdict: Some(Verdict::Fail),
            why: format!("the step routed {ns} stable runs and {nc} candidate runs"),
        };
    }
    let test = chi_square_homogeneity(&sc, &cc);
    let distance = js_distance(&sc, &cc);
    let fail = test.p_value < t.route_alpha && distance >= t.route_distance;
    Metric {
        name,
        stable: 0.0,
        candidate: distance,
        lo: None,
        hi: Some(test.p_value),
        limit: t.route_distance,
        verdict: Some(if fail { Verdict::Fail } else { Verdict::Pass }),
        why: format!(
            "Jensen–Shannon distance {distance:.3} (at most {} allowed), chi-square p = {:.4} (alpha {})",
            t.route_distance, test.p_value, t.route_alpha
        ),
    }
}

/// One step's mean confidence: fails when it dropped by more than the tolerance for sure
/// (one-sided 95% normal bound of the difference of means), passes when it surely did not.
fn confidence(t: &Thresholds, step: &str, stable: &Moments, candidate: &Moments) -> Metric {
    let d = candidate.mean - stable.mean;
    let se = (stable.variance / stable.n.max(1) as f64
        + candidate.variance / candidate.n.max(1) as f64)
        .sqrt();
    let (lo, hi) = (d - Z95_ONE_SIDED * se, d + Z95_ONE_SIDED * se);
    let limit = -t.confidence_drop;
    let verdict = if hi < limit {
        Verdict::Fail
    } else if lo > limit {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    Metric {
        name: format!("confidence:{step}"),
        stable: stable.mean,
        candidate: candidate.mean,
        lo: Some(lo),
        hi: Some(hi),
        limit,
        verdict: Some(verdict),
        why: format!(
            "the mean moved by {d:.3} ({lo:.3}..{hi:.3}); a drop of {} is allowed",
            t.confidence_drop
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(runs: u64, failed: u64) -> ArmFigures {
        ArmFigures {
            version: "1.0.0".into(),
            runs,
            failed,
            p95_latency_ms: Some(20.0),
            ..ArmFigures::default()
        }
    }

    const WINDOW: Window = Window {
        since_ms: 0,
        until_ms: 1,
    };

    fn check(stable: ArmFigures, candidate: ArmFigures) -> Check {
        analyse(&Thresholds::default(), 40, WINDOW, stable, candidate)
    }

    #[test]
    fn identical_arms_pass_and_a_clearly_worse_one_fails() {
        assert_eq!(check(arm(40, 0), arm(40, 0)).verdict, Verdict::Pass);
        // 12 of 60 failing against 0 of 60: Newcombe's lower bound is above 0.1.
        let worse = check(arm(60, 0), arm(60, 12));
        assert_eq!(worse.verdict, Verdict::Fail, "{worse:?}");
        assert!(worse.why.starts_with("failure_rate"), "{}", worse.why);
    }

    #[test]
    fn too_few_runs_is_inconclusive_but_a_critical_rate_is_not() {
        let few = check(arm(5, 0), arm(5, 1));
        assert_eq!(few.verdict, Verdict::Inconclusive);
        assert!(few.why.contains("40 needed"), "{}", few.why);
        let critical = check(arm(5, 0), arm(10, 3));
        assert_eq!(critical.verdict, Verdict::Critical, "{}", critical.why);
        // 2 of 10 is not over 20%.
        assert_eq!(check(arm(5, 0), arm(10, 2)).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_changed_route_mix_fails_only_when_it_is_material() {
        let mix = |a: u64, b: u64| {
            let mut f = arm(200, 0);
            f.routes.insert(
                "classify".into(),
                [("billing".to_string(), a), ("tech".to_string(), b)].into(),
            );
            f
        };
        let moved = check(mix(100, 100), mix(180, 20));
        assert_eq!(moved.verdict, Verdict::Fail, "{}", moved.why);
        assert!(moved.why.starts_with("route_distribution:classify"));
        assert_eq!(check(mix(100, 100), mix(104, 96)).verdict, Verdict::Pass);
        // The candidate stopped routing the step at all.
        let gone = check(mix(100, 100), arm(200, 0));
        assert_eq!(gone.verdict, Verdict::Fail, "{}", gone.why);
        // Three routed runs against two decide nothing.
        assert_eq!(check(mix(2, 1), mix(1, 1)).verdict, Verdict::Pass);
    }

    #[test]
    fn dearer_slower_or_less_confident_candidates_fail() {
        let mut dear = arm(40, 0);
        dear.cost_per_run_usd = 0.01;
        let mut cheap = arm(40, 0);
        cheap.cost_per_run_usd = 0.005;
        assert_eq!(check(cheap.clone(), dear.clone()).verdict, Verdict::Fail);
        assert_eq!(check(dear, cheap).verdict, Verdict::Pass);

        let mut slow = arm(40, 0);
        slow.p95_latency_ms = Some(200.0);
        assert_eq!(check(arm(40, 0), slow).verdict, Verdict::Fail);

        let sure = |mean| {
            let mut f = arm(40, 0);
            f.confidence.insert(
                "classify".into(),
                Moments {
                    n: 40,
                    mean,
                    variance: 0.01,
                },
            );
            f
        };
        let unsure = check(sure(0.9), sure(0.6));
        assert_eq!(unsure.verdict, Verdict::Fail, "{}", unsure.why);
        assert_eq!(check(sure(0.9), sure(0.88)).verdict, Verdict::Pass);
    }
}
