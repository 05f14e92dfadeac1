//! One case of an evaluation: a recorded run beside the candidate's replay of it, step by
//! step, with what differs and whether it is a regression.

use serde::Serialize;
use serde_json::Value;

use crate::replay::ReplayReport;
use crate::store::{ReviewRecord, ReviewStatus, RunStatus};

/// A recorded run and the candidate's replay of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Case {
    /// The recorded run.
    pub run_id: String,
    /// Left out: a call was missed under `--on-miss skip`, or the replay could not run.
    pub skipped: bool,
    /// Why the case could not run, when it could not.
    pub error: Option<String>,
    /// The recorded run's status.
    pub recorded_status: Option<RunStatus>,
    /// The candidate's.
    pub candidate_status: Option<RunStatus>,
    /// The candidate failed where the recorded run did not.
    pub new_failure: bool,
    /// The run outputs are the same (ignored paths aside).
    pub output_same: bool,
    /// Each step both ran.
    pub steps: Vec<CaseStep>,
    /// The recorded run had a review.
    pub recorded_review: bool,
    /// The candidate would have asked for one.
    pub candidate_review: bool,
    /// Cost in millionths of a dollar, recorded and candidate.
    pub cost_micros: (i64, i64),
    /// The steps' time in microseconds, recorded and candidate.
    pub latency_us: (u64, u64),
    /// Calls answered from the record, missed, and made live.
    pub calls: (u64, u64, u64),
    /// Where a human decided on the recorded run: whether each version's output is the one
    /// the human let stand (approved) or wrote (edited): (baseline right, candidate right).
    pub human: Vec<(String, bool, bool)>,
    /// Why this case is a regression, worst first; empty when it is not one.
    pub regressions: Vec<String>,
    /// The worst kind of regression in it, when there is one: what cases are ordered by.
    pub worst: Option<Regression>,
}

/// Kinds of regression, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Regression {
    /// A step left the route a reviewer approved on the recorded run.
    LeftApprovedRoute,
    /// The candidate failed where the recorded run did not.
    NewFailure,
    /// A step's confidence fell by [`CONFIDENCE_DROP`] or more.
    ConfidenceDrop,
    /// The run cost more.
    CostRose,
}

/// One step of a case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseStep {
    /// The step.
    pub step: String,
    /// Routes, recorded and candidate.
    pub route: (Option<String>, Option<String>),
    /// Confidences, recorded and candidate.
    pub confidence: (Option<f64>, Option<f64>),
    /// The output is the same (ignored paths aside).
    pub output_same: bool,
    /// The JSON Patch from the recorded output to the candidate's, ignored paths left out.
    #[schema(value_type = Vec<Object>)]
    pub diff: Value,
}

/// A confidence drop this large (or more) is a regression.
pub const CONFIDENCE_DROP: f64 = 0.1;

impl Case {
    /// A case that could not be evaluated.
    pub fn failed(run_id: &str, error: String) -> Self {
        Self {
            run_id: run_id.to_string(),
            skipped: true,
            error: Some(error),
            recorded_status: None,
            candidate_status: None,
            new_failure: false,
            output_same: false,
            steps: Vec::new(),
            recorded_review: false,
            candidate_review: false,
            cost_micros: (0, 0),
            latency_us: (0, 0),
            calls: (0, 0, 0),
            human: Vec::new(),
            regressions: Vec::new(),
            worst: None,
        }
    }

    /// The case of `report`, with the recorded run's `reviews`, leaving out `ignore`d paths.
    pub fn of(report: &ReplayReport, reviews: &[ReviewRecord], ignore: &[String]) -> Self {
        let mut steps = Vec::new();
        let mut human = Vec::new();
        for compared in &report.steps {
            let (before, after) = (&compared.recorded, &compared.replayed);
            if after.is_null() {
                continue;
            }
            let diff = kept_diff(&before["output"], &after["output"], ignore);
            let output_same = diff.as_array().is_some_and(Vec::is_empty);
            let route = |v: &Value| v["route"].as_str().map(str::to_string);
            let step = CaseStep {
                step: compared.step.clone(),
                route: (route(before), route(after)),
                confidence: (before["confidence"].as_f64(), after["confidence"].as_f64()),
                output_same,
                diff,
            };
            // The recorded step's output is what the reviewer let stand or wrote.
            for review in reviews.iter().filter(|r| r.step_id == step.step) {
                let baseline_right = match review.status {
                    ReviewStatus::Approved => true,
                    ReviewStatus::Edited => review.before == review.after,
                    _ => continue,
                };
                human.push((step.step.clone(), baseline_right, output_same));
            }
            steps.push(step);
        }
        let mut case = Self {
            run_id: report.run_id.clone(),
            skipped: report.skipped,
            error: None,
            recorded_status: Some(report.recorded_status),
            candidate_status: Some(report.replayed_status),
            new_failure: report.replayed_status == RunStatus::Failed
                && report.recorded_status != RunStatus::Failed,
            output_same: steps.iter().all(|s| s.output_same),
            steps,
            recorded_review: !reviews.is_empty(),
            candidate_review: !report.would_review.is_empty(),
            cost_micros: (report.recorded_cost_micros, report.replayed_cost_micros),
            latency_us: (report.recorded_latency_us, report.replayed_latency_us),
            calls: (
                report.calls.answered,
                report.calls.missed,
                report.calls.live,
            ),
            human,
            regressions: Vec::new(),
            worst: None,
        };
        let found = case.find_regressions(reviews);
        case.worst = found.first().map(|(kind, _)| *kind);
        case.regressions = found.into_iter().map(|(_, why)| why).collect();
        case
    }

    /// Regressions, worst first: leaving a route a human approved, a new failure, a
    /// confidence drop, a higher cost.
    fn find_regressions(&self, reviews: &[ReviewRecord]) -> Vec<(Regression, String)> {
        let mut found = Vec::new();
        for step in &self.steps {
            let approved = reviews
                .iter()
                .any(|r| r.step_id == step.step && r.status == ReviewStatus::Approved);
            if approved && step.route.0 != step.route.1 {
                let why = format!(
                    "step {} left the route a reviewer approved ({} → {})",
                    step.step,
                    step.route.0.as_deref().unwrap_or("none"),
                    step.route.1.as_deref().unwrap_or("none")
                );
                found.push((Regression::LeftApprovedRoute, why));
            }
        }
        if self.new_failure {
            let why = "the candidate failed where the recorded run did not".into();
            found.push((Regression::NewFailure, why));
        }
        for step in &self.steps {
            if let (Some(a), Some(b)) = step.confidence
                && a - b >= CONFIDENCE_DROP
            {
                let why = format!("step {} confidence fell {a:.2} → {b:.2}", step.step);
                found.push((Regression::ConfidenceDrop, why));
            }
        }
        if self.cost_micros.1 > self.cost_micros.0 {
            let why = format!(
                "cost rose ${:.6} → ${:.6}",
                self.cost_micros.0 as f64 / 1e6,
                self.cost_micros.1 as f64 / 1e6
            );
            found.push((Regression::CostRose, why));
        }
        found
    }
}

/// The patch from `before` to `after` without the operations on `ignore`d paths (JSON
/// Pointers: a path and everything under it).
pub fn kept_diff(before: &Value, after: &Value, ignore: &[String]) -> Value {
    let patch = json_patch::diff(before, after);
    let kept: Vec<_> = patch
        .0
        .into_iter()
        .filter(|op| {
            let path = op.path().to_string();
            !ignore
                .iter()
                .any(|i| path == *i || path.starts_with(&format!("{i}/")))
        })
        .collect();
    serde_json::to_value(kept).unwrap_or(Value::Null)
}
