//! Choosing real cases for a person to check: deterministic, stratified and mergeable.
//!
//! A case (a run's step) gets a number ρ in [0, 1) from a hash of a salt, the run and the step,
//! so every host, and the same host after a restart, makes the same choice without asking
//! anyone: a case is sampled when ρ is below its stratum's rate, and its inclusion probability
//! is that rate. A stratum short of its minimum at the end of a period is topped up from the
//! cases with the smallest ρ it saw (a bottom-k set, which merges across hosts by keeping the k
//! smallest of the union), with the probability that implies.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A case's place in the sampling order: the first 8 bytes of SHA-256 over the salt, the run id
/// and the step id, each followed by a zero byte (so `("ab", "c")` and `("a", "bc")` differ),
/// as a fraction of 2⁶⁴ with 53 bits kept, which a double holds exactly.
pub fn rho(salt: &str, run_id: &str, step_id: &str) -> f64 {
    let mut hash = Sha256::new();
    for part in [salt, run_id, step_id] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let head = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
    (head >> 11) as f64 / (1u64 << 53) as f64
}

/// A confidence's stratum: its tenth, `0.7-0.8`; a step without a confidence is `none`.
pub fn confidence_bucket(confidence: Option<f64>) -> String {
    match confidence {
        Some(c) if c.is_finite() => {
            let tenth = ((c.clamp(0.0, 1.0) * 10.0).floor() as u32).min(9);
            format!(
                "0.{tenth}-{}",
                if tenth == 9 {
                    "1.0".into()
                } else {
                    format!("0.{}", tenth + 1)
                }
            )
        }
        _ => "none".into(),
    }
}

/// How a step samples its cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingPlan {
    /// The share of cases sampled in the normal course.
    pub rate: f64,
    /// Cases each stratum gets per period at least (topped up at the period's end).
    pub min_per_stratum: usize,
    /// What the rate is multiplied by while the step's drift alert is open…
    pub boost_on_drift: f64,
    /// …up to this.
    pub max_rate: f64,
}

impl Default for SamplingPlan {
    fn default() -> Self {
        Self {
            rate: 0.02,
            min_per_stratum: 5,
            boost_on_drift: 5.0,
            max_rate: 0.25,
        }
    }
}

impl SamplingPlan {
    /// The rate in force: boosted only while the step is drifting.
    pub fn rate(&self, drifting: bool) -> f64 {
        if drifting {
            (self.rate * self.boost_on_drift).min(self.max_rate.max(self.rate))
        } else {
            self.rate
        }
    }

    /// Whether the case at `rho` is sampled as it happens.
    pub fn sampled(&self, rho: f64, drifting: bool) -> bool {
        rho < self.rate(drifting)
    }
}

/// One case a stratum saw: its ρ and its id.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct Seen {
    /// The case's ρ.
    pub rho: f64,
    /// The run and step, `run-id/step-id`.
    pub case: String,
}

/// The `k` cases with the smallest ρ a stratum saw in a period.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BottomK {
    k: usize,
    kept: Vec<Seen>,
}

impl BottomK {
    /// An empty set that keeps `k`.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            kept: Vec::new(),
        }
    }

    /// Offers a case; it stays if it is among the `k` smallest so far.
    pub fn offer(&mut self, seen: Seen) {
        let at = self
            .kept
            .partition_point(|s| s.rho < seen.rho || (s.rho == seen.rho && s.case < seen.case));
        if at < self.k && self.kept.get(at) != Some(&seen) {
            self.kept.insert(at, seen);
            self.kept.truncate(self.k);
        }
    }

    /// The union of two hosts' sets, cut to the `k` smallest: what one host would have kept.
    pub fn merge(&mut self, other: &BottomK) {
        for seen in &other.kept {
            self.offer(seen.clone());
        }
    }

    /// The kept cases, smallest ρ first.
    pub fn kept(&self) -> &[Seen] {
        &self.kept
    }
}

/// A sampled case and the probability it had of being chosen (its weight is the inverse).
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// `run-id/step-id`.
    pub case: String,
    /// Its inclusion probability.
    pub probability: f64,
}

/// At a period's end: the cases to top a stratum up with, when it sampled fewer than
/// `min_per_stratum` of its `seen` cases. The smallest-ρ cases not already sampled come first;
/// taking the cases below the (m + 1)-th smallest ρ is sampling at that ρ, so each gets it as
/// its probability (at least the rate it already had).
pub fn top_up(plan: &SamplingPlan, bottom: &BottomK, already: usize, seen: usize) -> Vec<Chosen> {
    let want = plan.min_per_stratum.min(seen);
    if already >= want {
        return Vec::new();
    }
    let fresh: Vec<&Seen> = bottom
        .kept()
        .iter()
        .filter(|s| s.rho >= plan.rate)
        .collect();
    let take = (want - already).min(fresh.len());
    let cut = fresh.get(take).map_or(1.0, |s| s.rho);
    fresh[..take]
        .iter()
        .map(|s| Chosen {
            case: s.case.clone(),
            probability: cut.max(plan.rate),
        })
        .collect()
}

/// Cases per stratum, to check minimums and rates.
pub fn per_stratum<'a>(strata: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for s in strata {
        *counts.entry(s).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::stats::chi_square_homogeneity;

    #[test]
    fn rho_is_pinned() {
        // Golden: the hash and its mapping must never change, or hosts of two versions would
        // sample different cases. (The digest starts aaeb7a8d7c18097d.)
        let r = rho("v1", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "classify");
        assert_eq!(r, 0.6676556201383336);
        assert_ne!(rho("ab", "c", "s"), rho("a", "bc", "s"));
        assert_ne!(
            r,
            rho("v2", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "classify")
        );
    }

    #[test]
    fn rho_is_uniform() {
        let mut histogram = vec![0u64; 20];
        for i in 0..20_000 {
            let r = rho("v1", &format!("run-{i}"), "classify");
            assert!((0.0..1.0).contains(&r));
            histogram[(r * 20.0) as usize] += 1;
        }
        let even = vec![1000u64; 20];
        let test = chi_square_homogeneity(&even, &histogram);
        assert!(test.p_value > 0.001, "{test:?} {histogram:?}");
    }

    #[test]
    fn the_rate_is_boosted_only_while_drifting_and_capped() {
        let plan = SamplingPlan::default();
        assert_eq!(plan.rate(false), 0.02);
        assert_eq!(plan.rate(true), 0.1);
        let high = SamplingPlan { rate: 0.2, ..plan };
        assert_eq!(high.rate(true), 0.25);
        assert!(plan.sampled(0.05, true) && !plan.sampled(0.05, false));
    }

    #[test]
    fn bottom_k_merged_across_hosts_equals_one_host() {
        let cases: Vec<Seen> = (0..500)
            .map(|i| Seen {
                rho: rho("v1", &format!("run-{i}"), "s"),
                case: format!("run-{i}/s"),
            })
            .collect();
        let mut one = BottomK::new(10);
        cases.iter().for_each(|c| one.offer(c.clone()));
        let (mut a, mut b) = (BottomK::new(10), BottomK::new(10));
        for (i, c) in cases.iter().enumerate() {
            if i % 3 == 0 { &mut a } else { &mut b }.offer(c.clone());
        }
        // The same case seen by both hosts is kept once.
        b.offer(cases[0].clone());
        a.merge(&b);
        assert_eq!(a, one);
        let mut smallest: Vec<f64> = cases.iter().map(|c| c.rho).collect();
        smallest.sort_by(f64::total_cmp);
        assert_eq!(
            one.kept().iter().map(|s| s.rho).collect::<Vec<_>>(),
            smallest[..10]
        );
    }

    #[test]
    fn a_short_stratum_is_topped_up_to_its_minimum() {
        let plan = SamplingPlan::default();
        // A rare stratum: 40 cases in the period, of which the rate sampled those below 0.02.
        let seen: Vec<Seen> = (0..40)
            .map(|i| Seen {
                rho: rho("v1", &format!("rare-{i}"), "s"),
                case: format!("rare-{i}/s"),
            })
            .collect();
        let already = seen.iter().filter(|s| plan.sampled(s.rho, false)).count();
        let mut bottom = BottomK::new(plan.min_per_stratum + already);
        seen.iter().for_each(|s| bottom.offer(s.clone()));
        let added = top_up(&plan, &bottom, already, seen.len());
        assert_eq!(already + added.len(), plan.min_per_stratum);
        assert!(
            added
                .iter()
                .all(|c| c.probability > plan.rate && c.probability <= 1.0)
        );
        // Nothing is chosen twice, and a full stratum gets nothing more.
        let sampled: Vec<&str> = seen
            .iter()
            .filter(|s| plan.sampled(s.rho, false))
            .map(|s| s.case.as_str())
            .collect();
        assert!(added.iter().all(|c| !sampled.contains(&c.case.as_str())));
        assert!(top_up(&plan, &bottom, plan.min_per_stratum, seen.len()).is_empty());
    }

    #[test]
    fn strata_cross_route_and_confidence_tenth() {
        assert_eq!(confidence_bucket(Some(0.73)), "0.7-0.8");
        assert_eq!(confidence_bucket(Some(1.0)), "0.9-1.0");
        assert_eq!(confidence_bucket(None), "none");
        let counts = per_stratum(["a", "b", "a"]);
        assert_eq!(counts["a"], 2);
    }
}
