//! What each arm of a rollout did in a window, read from the journal: how many runs ended and
//! how many failed, how many were reviewed and rejected, their latency, their model cost,
//! and, per step, the routes they took and the confidence they reported.
//!
//! Figures are summaries, not lists, so that every check can journal the figures it decided
//! on and `weir rollout explain` can decide again from them alone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::eval::stats::percentile;
use crate::store::{ReviewStatus, RunFilter, RunRecord, RunStatus, Store};

/// The most runs an arm's window reads (the newest): a check stays a bounded read however
/// long a step is held at a high weight.
pub const MAX_WINDOW_RUNS: usize = 2_000;

/// Runs a page of the window reads at a time.
const PAGE: u32 = 500;

/// One arm's figures over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArmFigures {
    /// The workflow version.
    pub version: String,
    /// Runs that ended (succeeded or failed; cancelled runs say nothing about the version).
    pub runs: u64,
    /// Of them, failed (a reviewer's rejection is not counted here but in `rejected`).
    pub failed: u64,
    /// Ended runs with a decided review.
    pub reviewed: u64,
    /// Of them, with a review rejected.
    pub rejected: u64,
    /// p95 of run latency (creation to end, ms), over ended runs without a review (a
    /// person's wait is not the version's latency); `None` without such runs.
    pub p95_latency_ms: Option<f64>,
    /// Mean model cost per ended run, in dollars.
    pub cost_per_run_usd: f64,
    /// Per step: how many ended runs took each route.
    pub routes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per step: the confidences reported.
    pub confidence: BTreeMap<String, Moments>,
}

/// Count, mean and variance of a sample, kept so that two arms' means can be compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Moments {
    /// Values.
    pub n: u64,
    /// Their mean.
    pub mean: f64,
    /// Their sample variance (0 below two values).
    pub variance: f64,
}

impl Moments {
    /// The moments of `values`.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let variance = if n < 2 {
            0.0
        } else {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        Self {
            n: n as u64,
            mean,
            variance,
        }
    }
}

/// The window a check reads: runs created in `[since_ms, until_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    /// From (ms since the Unix epoch).
    pub since_ms: i64,
    /// To.
    pub until_ms: i64,
}

/// Reads `version`'s figures for `window`. Only runs that had ended by `window.until_ms`
/// count, so that figures read again later (by `explain`) see the same runs.
pub async fn gather(
    store: &dyn Store,
    workflow: &str,
    version: &str,
    window: Window,
) -> anyhow::Result<ArmFigures> {
    let runs = ended_runs(store, workflow, version, window).await?;
    let reviewed = reviewed(store, &runs).await?;
    let mut figures = ArmFigures {
        version: version.to_string(),
        runs: runs.len() as u64,
        ..ArmFigures::default()
    };
    let mut latencies = Vec::new();
    let mut cost_micros = 0i64;
    let mut confidences: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in &runs {
        // A reviewer's rejection is counted as a rejection, not as the version failing.
        let rejected_by_review = run
            .failure
            .as_ref()
            .is_some_and(|f| f["failure"]["kind"] == "review_rejected");
        if run.status == RunStatus::Failed && !rejected_by_review {
            figures.failed += 1;
        }
        match reviewed.get(&run.id) {
            Some(rejected) => {
                figures.reviewed += 1;
                figures.rejected += u64::from(*rejected);
            }
            None => latencies.push((run.updated_ms - run.created_ms) as f64),
        }
        cost_micros += store
            .model_calls(&run.id)
            .await?
            .iter()
            .map(|c| c.cost_micros)
            .sum::<i64>();
        for step in store.steps(&run.id).await? {
            if let Some(route) = step.route {
                *figures
                    .routes
                    .entry(step.step_id.clone())
                    .or_default()
                    .entry(route)
                    .or_default() += 1;
            }
            if let Some(confidence) = step.confidence {
                confidences
                    .entry(step.step_id)
                    .or_default()
                    .push(confidence);
            }
        }
    }
    figures.p95_latency_ms = (!latencies.is_empty()).then(|| percentile(&latencies, 95.0));
    if !runs.is_empty() {
        figures.cost_per_run_usd = cost_micros as f64 / 1e6 / runs.len() as f64;
    }
    figures.confidence = confidences
        .into_iter()
        .map(|(step, values)| (step, Moments::of(&values)))
        .collect();
    Ok(figures)
}

/// The window's runs of `version` that had ended by its end, newest first, at most
/// [`MAX_WINDOW_RUNS`].
async fn ended_runs(
    store: &dyn Store,
    workflow: &str,
    version: &str,
    window: Window,
) -> anyhow::Result<Vec<RunRecord>> {
    let mut ended = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_runs(&RunFilter {
                workflow: Some(workflow.to_string()),
                version: Some(version.to_string()),
                since_ms: Some(window.since_ms),
                until_ms: Some(window.until_ms + 1),
                limit: Some(PAGE),
                before: before.clone(),
                ..RunFilter::default()
            })
            .await?;
        let full = page.len() == PAGE as usize;
        before = page.last().map(|r| r.id.clone());
        ended.extend(page.into_iter().filter(|r| {
            matches!(r.status, RunStatus::Succeeded | RunStatus::Failed)
                && r.updated_ms <= window.until_ms
        }));
        if !full || ended.len() >= MAX_WINDOW_RUNS {
            break;
        }
    }
    ended.truncate(MAX_WINDOW_RUNS);
    Ok(ended)
}

/// Of `runs`, those with a decided review, and whether one was rejected.
async fn reviewed(store: &dyn Store, runs: &[RunRecord]) -> anyhow::Result<BTreeMap<String, bool>> {
    let ids: BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut decided = BTreeMap::new();
    for run_id in ids {
        let reviews = store.reviews(None, Some(run_id)).await?;
        let statuses: Vec<ReviewStatus> = reviews
            .iter()
            .map(|r| r.status)
            .filter(|s| !matches!(s, ReviewStatus::Pending | ReviewStatus::Closed))
            .collect();
        if !statuses.is_empty() {
            decided.insert(
                run_id.to_string(),
                statuses.contains(&ReviewStatus::Rejected),
            );
        }
    }
    Ok(decided)
}
