//! What a rollout is asked to do: the weights it ramps through, how long it holds each, how
//! many runs an arm needs before a check may decide, and the thresholds each check applies.
//! Checked once, at the start, so that a rollout never discovers half way that its plan
//! cannot finish.

use serde::{Deserialize, Serialize};

/// The ramp and its pace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The candidate's share of new runs at each step, in percent: rising, ending at 100.
    /// Reaching 100 is the promotion; every earlier step is analysed.
    #[serde(deserialize_with = "whole::percents")]
    pub steps: Vec<u32>,
    /// The least time a step is held before a pass may move it on (ms).
    #[serde(default = "defaults::hold_ms", deserialize_with = "whole::i64")]
    pub hold_ms: i64,
    /// How often a step is checked (ms).
    #[serde(default = "defaults::interval_ms", deserialize_with = "whole::i64")]
    pub interval_ms: i64,
    /// How long a step may stay inconclusive before the rollout pauses (ms).
    #[serde(default = "defaults::max_hold_ms", deserialize_with = "whole::i64")]
    pub max_hold_ms: i64,
    /// Ended runs each arm needs in the step's window before a check decides anything.
    #[serde(default = "defaults::min_runs", deserialize_with = "whole::u64")]
    pub min_runs: u64,
    /// What a check compares, and how far the candidate may be worse.
    #[serde(default)]
    pub analysis: Thresholds,
}

/// How far the candidate may fall behind the stable version before a check fails it.
///
/// Rates are judged on the one-sided 95% Newcombe interval of (candidate − stable): a check
/// fails when its lower end is above the tolerance (the candidate is worse for sure) and
/// passes when its upper end is below it (it is not worse by that much); in between it has
/// not decided. Latency and cost are judged on ratios with an absolute slack, so that a step
/// going from 1 ms to 2 ms, or from nothing to a fraction of a cent, is not a regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// The failed share of ended runs may be this much higher.
    pub failure_rate: f64,
    /// The rejected share of reviewed runs may be this much higher.
    pub review_reject_rate: f64,
    /// The candidate's p95 run latency may be this many times the stable one's…
    pub p95_latency_ratio: f64,
    /// …plus this many milliseconds.
    pub latency_slack_ms: f64,
    /// The candidate's mean cost per run may be this many times the stable one's…
    pub cost_ratio: f64,
    /// …plus this many dollars.
    pub cost_slack_usd: f64,
    /// The mean confidence may drop by this much.
    pub confidence_drop: f64,
    /// The route mix fails when it differs significantly (chi-square at this level)…
    pub route_alpha: f64,
    /// …and by at least this Jensen–Shannon distance (so a big sample's trivia never fails).
    pub route_distance: f64,
    /// Rolled back at once when the candidate's failure rate exceeds this…
    pub critical_failure_rate: f64,
    /// …over at least this many of its ended runs, whatever `min_runs` says.
    #[serde(deserialize_with = "whole::u64")]
    pub critical_min_runs: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            failure_rate: 0.10,
            review_reject_rate: 0.10,
            p95_latency_ratio: 1.5,
            latency_slack_ms: 50.0,
            cost_ratio: 1.25,
            cost_slack_usd: 0.0001,
            confidence_drop: 0.10,
            route_alpha: 0.01,
            route_distance: 0.10,
            critical_failure_rate: 0.20,
            critical_min_runs: 10,
        }
    }
}

/// Whole numbers as JSON may write them: `40` or `40.0` (JSON Schema's integers include
/// both, and clients that hold every number as a double send the second). Values past the
/// field's range are held at its end, where the plan's own checks name them. Other request
/// bodies use it too (`serve/monitor.rs`).
pub(crate) mod whole {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    type Whole = serde_json::Number;

    /// The number, as a whole `i128` (casts from a double saturate); a fraction is refused.
    fn whole<E: serde::de::Error>(n: Whole) -> Result<i128, E> {
        if let Some(v) = n.as_u64() {
            return Ok(i128::from(v));
        }
        if let Some(v) = n.as_i64() {
            return Ok(i128::from(v));
        }
        match n.as_f64() {
            Some(v) if v.fract() == 0.0 => Ok(v as i128),
            _ => Err(E::custom(format!("{n} is not a whole number"))),
        }
    }

    pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = whole::<D::Error>(Whole::deserialize(d)?)?;
        Ok(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    pub(super) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = whole::<D::Error>(Whole::deserialize(d)?)?;
        Ok(v.clamp(0, i128::from(u64::MAX)) as u64)
    }

    pub(super) fn percents<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        Vec::<Whole>::deserialize(d)?
            .into_iter()
            .map(|n| {
                whole::<D::Error>(n)
                    .map(|v| v.clamp(0, i128::from(u32::MAX)) as u32)
                    .map_err(|e| D::Error::custom(format!("`steps`: {e}")))
            })
            .collect()
    }
}

mod defaults {
    pub(super) fn hold_ms() -> i64 {
        30 * 60 * 1000
    }
    pub(super) fn interval_ms() -> i64 {
        5 * 60 * 1000
    }
    pub(super) fn max_hold_ms() -> i64 {
        4 * hold_ms()
    }
    pub(super) fn min_runs() -> u64 {
        40
    }
}

impl Plan {
    /// A plan with these steps and the documented defaults for the rest.
    pub fn with_steps(steps: Vec<u32>) -> Self {
        Self {
            steps,
            hold_ms: defaults::hold_ms(),
            interval_ms: defaults::interval_ms(),
            max_hold_ms: defaults::max_hold_ms(),
            min_runs: defaults::min_runs(),
            analysis: Thresholds::default(),
        }
    }

    /// Every problem with the plan, each naming its field; empty when it can run.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.steps.is_empty() {
            problems.push("`steps` is empty: give the weights to ramp through, ending at 100 (e.g. 5,25,50,100)".to_string());
        }
        for pair in self.steps.windows(2) {
            if pair[1] <= pair[0] {
                problems.push(format!(
                    "`steps` must rise: {} comes after {}",
                    pair[1], pair[0]
                ));
            }
        }
        if let Some(bad) = self.steps.iter().find(|w| **w == 0 || **w > 100) {
            problems.push(format!("`steps`: {bad} is not a percentage in 1..=100"));
        }
        if self.steps.last().is_some_and(|w| *w != 100) {
            problems.push(format!(
                "`steps` must end at 100 (the promotion), not {}",
                self.steps.last().unwrap_or(&0)
            ));
        }
        for (name, ms) in [
            ("hold", self.hold_ms),
            ("interval", self.interval_ms),
            ("max_hold", self.max_hold_ms),
        ] {
            if ms < 0 {
                problems.push(format!("`{name}` is negative"));
            }
        }
        if self.max_hold_ms < self.hold_ms {
            problems.push(format!(
                "`max_hold` ({} ms) is shorter than `hold` ({} ms): a step could pause before it may pass",
                self.max_hold_ms, self.hold_ms
            ));
        }
        if self.min_runs == 0 {
            problems.push("`min_runs` must be at least 1".to_string());
        }
        let t = &self.analysis;
        for (name, value) in [
            ("analysis.failure_rate", t.failure_rate),
            ("analysis.review_reject_rate", t.review_reject_rate),
            ("analysis.confidence_drop", t.confidence_drop),
            ("analysis.route_distance", t.route_distance),
            ("analysis.critical_failure_rate", t.critical_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("`{name}` is {value}, not in 0..=1"));
            }
        }
        if !(t.route_alpha > 0.0 && t.route_alpha < 1.0) {
            problems.push(format!(
                "`analysis.route_alpha` is {}, not in (0, 1)",
                t.route_alpha
            ));
        }
        for (name, value) in [
            ("analysis.p95_latency_ratio", t.p95_latency_ratio),
            ("analysis.cost_ratio", t.cost_ratio),
        ] {
            if !(value >= 1.0 && value.is_finite()) {
                problems.push(format!("`{name}` is {value}: a ratio of at least 1"));
            }
        }
        for (name, value) in [
            ("analysis.latency_slack_ms", t.latency_slack_ms),
            ("analysis.cost_slack_usd", t.cost_slack_usd),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                problems.push(format!("`{name}` is {value}, not a non-negative number"));
            }
        }
        problems
    }
}

/// Parses `5,25,50,100`.
pub fn parse_steps(text: &str) -> Result<Vec<u32>, String> {
    text.split(',')
        .map(str::trim)
        .map(|w| {
            w.trim_end_matches('%')
                .parse::<u32>()
                .map_err(|_| format!("`{w}` in steps `{text}` is not a whole percentage"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_ramp_to_100_has_no_problems() {
        assert!(Plan::with_steps(vec![5, 25, 50, 100]).problems().is_empty());
        assert_eq!(parse_steps("5, 25%,100").unwrap(), vec![5, 25, 100]);
    }

    #[test]
    fn whole_numbers_may_be_written_as_doubles_and_fractions_are_refused() {
        let plan: Plan =
            serde_json::from_str(r#"{"steps": [5.0, 100], "min_runs": 40.0, "hold_ms": 0}"#)
                .unwrap();
        assert_eq!(
            (plan.steps, plan.min_runs, plan.hold_ms),
            (vec![5, 100], 40, 0)
        );
        let err = serde_json::from_str::<Plan>(r#"{"steps": [5.5, 100]}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("`steps`: 5.5 is not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut plan = Plan::with_steps(vec![50, 25, 90]);
        plan.min_runs = 0;
        plan.max_hold_ms = 1;
        plan.analysis.route_alpha = 0.0;
        let problems = plan.problems().join("\n");
        for expected in [
            "`steps` must rise: 25 comes after 50",
            "`steps` must end at 100 (the promotion), not 90",
            "`max_hold`",
            "`min_runs`",
            "`analysis.route_alpha`",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
        assert!(parse_steps("5,x").unwrap_err().contains("`x`"));
    }
}
