//! The pages: the runs (filtered in the URL, paged by keyset) and one run.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

use super::filters::{FILTERS, RunsFilter};
use super::render::{error, page, page_part, viewer};
use super::session::Viewer;
use super::waterfall;
use crate::serve::App;
use crate::store::{RunFilter, RunRecord, RunStatus};

/// Runs a page shows.
pub const PAGE_SIZE: u32 = 50;

/// A run as a row of the runs page.
#[derive(Serialize)]
struct Row {
    id: String,
    workflow: String,
    version: String,
    status: String,
    created: String,
    duration: String,
}

pub(super) fn timestamp(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// A duration for people: `850 ms`, `12.4 s`, `3 min 5 s`.
pub(super) fn duration(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn row(run: &RunRecord) -> Row {
    Row {
        id: run.id.clone(),
        workflow: run.workflow.clone(),
        version: run.version.clone(),
        status: run.status.to_string(),
        created: timestamp(run.created_ms),
        duration: if run.status.is_final() {
            duration(run.updated_ms - run.created_ms)
        } else {
            String::new()
        },
    }
}

/// The page for a journal that could not be read; the error itself goes to the log.
pub(super) fn unreadable(e: &anyhow::Error, what: &str) -> Response {
    tracing::error!(error = %format!("{e:#}"), "the dashboard cannot read {what}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The journal could not be read.",
    )
}

/// `/ui`: the runs, newest first, filtered as the URL says (see [`super::filters`]), from
/// `before` a run id.
pub(super) async fn runs(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let filters = match RunsFilter::parse(&query) {
        Ok(filters) => filters,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let filter = RunFilter {
        limit: Some(PAGE_SIZE),
        before: query.get("before").filter(|v| !v.is_empty()).cloned(),
        ..filters.filter.clone()
    };
    let runs = match app.store().list_runs(&filter).await {
        Ok(runs) => runs,
        Err(e) => return unreadable(&e, "runs"),
    };
    // The next page keeps the filters and starts after the last run shown.
    let next = (runs.len() == PAGE_SIZE as usize)
        .then(|| runs.last())
        .flatten()
        .map(|last| filters.next_page(&last.id));
    let form: HashMap<&str, String> = FILTERS.iter().map(|f| (*f, filters.value(f))).collect();
    let statuses = RunStatus::NAMES;
    page(
        StatusCode::OK,
        "runs.html",
        context! {
            rows => runs.iter().map(row).collect::<Vec<_>>(),
            form => form,
            statuses => statuses,
            next => next,
            viewer => viewer(&who),
        },
    )
}

/// `/ui/runs/{id}/events`: the run's event stream for the page's script, followed through
/// a review wait until the run ends.
pub(super) async fn run_events(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    crate::serve::event_stream(app, id, &headers, RunStatus::is_final)
        .await
        .into_response()
}

/// Whether the page's script asks for the main part alone (to swap it in).
fn wants_fragment(headers: &HeaderMap) -> bool {
    headers
        .get(FRAGMENT_HEADER)
        .is_some_and(|v| v.as_bytes() == b"main")
}

/// The header the page's script sets to get a page's main part alone.
pub(super) const FRAGMENT_HEADER: &str = "x-weir-fragment";

/// `/ui/runs/{id}`: one run, its steps and its waterfall (its main part alone when the
/// page's script asks, to follow a run that has not ended).
pub(super) async fn run(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = app.store();
    let run = match store.get_run(&id).await {
        Ok(Some(run)) => run,
        Ok(None) => return error(StatusCode::NOT_FOUND, &format!("There is no run {id}.")),
        Err(e) => return unreadable(&e, "a run"),
    };
    let (steps, attempts) = match tokio::try_join!(store.steps(&id), store.attempts(&id)) {
        Ok(both) => both,
        Err(e) => return unreadable(&e, "a run's steps"),
    };
    let pretty = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    let steps: Vec<_> = steps
        .iter()
        .map(|s| {
            context! {
                id => s.step_id,
                status => s.status.to_string(),
                attempts => s.attempts,
                confidence => s.confidence.map(|c| format!("{c:.2}")),
                route => s.route,
                reason => s.skip_reason,
            }
        })
        .collect();
    let block = wants_fragment(&headers).then_some("main");
    let mut response = page_part(
        StatusCode::OK,
        "run.html",
        block,
        context! {
            live => !run.status.is_final(),
            run => row(&run),
            input => serde_json::to_string_pretty(&run.input).unwrap_or_default(),
            output => pretty(&run.output),
            failure => pretty(&run.failure),
            review => pretty(&run.review),
            key => run.idempotency_key,
            steps => steps,
            waterfall => minijinja::Value::from_safe_string(waterfall::svg(&run, &attempts)),
            viewer => viewer(&who),
        },
    );
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static(FRAGMENT_HEADER));
    response
}
