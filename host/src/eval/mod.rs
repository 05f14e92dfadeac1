//! `weir eval`: a candidate (other plugins for some steps, or another workflow version) run
//! against many recorded production runs, with the model's and the network's answers taken
//! from the record where the candidate asks what was asked, so the differences are what the
//! change did and not the model's noise. Per case a structural diff of every step; over all
//! of them agreement with Wilson intervals, a route confusion matrix, the confidence shift,
//! review, cost and latency per run, and accuracy against human decisions; regressions first.

pub mod case;
mod gate;
pub mod report;
pub mod stats;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

pub use case::{Case, CaseStep, Regression};
pub use gate::Gate;
pub use summary::{NoiseFloor, Summary};

use crate::engine::Host;
use crate::model::Models;
use crate::replay::{Options, Scratch};
use crate::store::{RunFilter, RunStatus, Store};

/// Which recorded runs an evaluation takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The workflow.
    pub workflow: String,
    /// Only this version.
    pub version: Option<String>,
    /// Only runs that ended so.
    pub status: Option<RunStatus>,
    /// Only runs created at or after this (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only runs where some step took this route.
    pub route: Option<String>,
    /// Only runs with (or without) a review.
    pub reviewed: Option<bool>,
    /// At most this many cases.
    pub limit: usize,
    /// Take cases evenly across the recorded runs' routes (each distinct set of step routes
    /// a stratum), so a rare route is not crowded out by a common one.
    pub stratify_by_route: bool,
}

/// An evaluation and what it found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Experiment {
    /// The workflow evaluated.
    pub workflow: String,
    /// What ran in place of the recorded version.
    pub candidate: String,
    /// The aggregates.
    pub summary: Summary,
    /// Every case, those with regressions first (worst first), then the rest in run order.
    pub cases: Vec<Case>,
}

/// How many cases an evaluation replays at once.
const CASES_AT_ONCE: usize = 4;

/// Runs the candidate in `options` against the runs `selection` picks from `store`.
pub async fn evaluate(
    host: &Host,
    store: &Arc<dyn Store>,
    models: &Models,
    selection: &Selection,
    options: &Options,
    ignore: &[String],
    candidate: String,
) -> anyhow::Result<Experiment> {
    let runs = select(store.as_ref(), selection).await?;
    // One scratch journal for every case: live calls share the one evaluation budget.
    let scratch = Scratch::new()?;
    let scratch = &scratch;
    // A few cases at a time: a case mostly waits on the journal (and, for a live miss, on
    // the model), so they overlap well; `buffered` keeps the cases in selection order.
    let mut cases: Vec<Case> = futures_util::stream::iter(&runs)
        .map(|run_id| async move {
            let reviews = store.reviews(None, Some(run_id)).await?;
            let replayed =
                crate::replay::replay(host, store, models, run_id, options, scratch).await;
            anyhow::Ok(match replayed {
                Ok(report) => Case::of(&report, &reviews, ignore),
                Err(e) => Case::failed(run_id, e.to_string()),
            })
        })
        .buffered(CASES_AT_ONCE)
        .try_collect()
        .await?;
    let summary = summary::summarize(&cases);
    // Regressions first, the worst kind first; the sort is stable, so run order otherwise.
    cases.sort_by_key(|c| (c.worst.is_none(), c.worst));
    Ok(Experiment {
        workflow: selection.workflow.clone(),
        candidate,
        summary,
        cases,
    })
}

/// The A/A noise floor: the first `runs` of `selection` replayed as recorded, with every
/// model call made again (paid from `budget_usd`, never the workflow's budgets) and every
/// HTTP exchange, clock and random byte still from the record.
pub async fn noise_floor(
    host: &Host,
    store: &Arc<dyn Store>,
    models: &Models,
    selection: &Selection,
    runs: usize,
    budget_usd: f64,
    ignore: &[String],
) -> anyhow::Result<NoiseFloor> {
    let selection = Selection {
        limit: runs,
        ..selection.clone()
    };
    let options = Options {
        matching: crate::replay::Matching::Request(crate::replay::OnMiss::Live),
        budget_usd: Some(budget_usd),
        fresh_models: true,
        ..Options::default()
    };
    let aa = evaluate(
        host,
        store,
        models,
        &selection,
        &options,
        ignore,
        "A/A".into(),
    )
    .await?;
    let s = aa.summary;
    let cost = aa.cases.iter().map(|c| c.cost_micros.1).sum::<i64>();
    Ok(NoiseFloor {
        runs: s.evaluated,
        output_agreement: s.output_agreement,
        route_agreement: s.route_agreement,
        live_calls: s.calls.get("live").copied().unwrap_or(0),
        cost_usd: cost as f64 / 1e6,
    })
}

/// The ids of the runs `selection` takes, newest first (or spread over the strata).
async fn select(store: &dyn Store, selection: &Selection) -> anyhow::Result<Vec<String>> {
    let limit = selection.limit.max(1);
    // Stratifying needs more runs than it keeps, to have some of every route.
    let fetch = if selection.stratify_by_route {
        (limit * 10).min(10_000)
    } else {
        limit
    };
    let runs = store
        .list_runs(&RunFilter {
            workflow: Some(selection.workflow.clone()),
            version: selection.version.clone(),
            status: selection.status,
            since_ms: selection.since_ms,
            route: selection.route.clone(),
            has_review: selection.reviewed,
            limit: Some(fetch as u32),
            ..RunFilter::default()
        })
        .await?;
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| !matches!(r.status, RunStatus::Pending | RunStatus::Running))
        .collect();
    if !selection.stratify_by_route {
        return Ok(runs.into_iter().take(limit).map(|r| r.id).collect());
    }
    let mut strata: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in runs {
        let routes: Vec<String> = store
            .steps(&run.id)
            .await?
            .into_iter()
            .filter_map(|s| s.route.map(|r| format!("{}={r}", s.step_id)))
            .collect();
        strata.entry(routes.join(",")).or_default().push(run.id);
    }
    // Round robin over the strata, newest first within each.
    let mut taken = Vec::new();
    let mut round = 0;
    while taken.len() < limit {
        let before = taken.len();
        for ids in strata.values() {
            if let Some(id) = ids.get(round)
                && taken.len() < limit
            {
                taken.push(id.clone());
            }
        }
        if taken.len() == before {
            break;
        }
        round += 1;
    }
    Ok(taken)
}
