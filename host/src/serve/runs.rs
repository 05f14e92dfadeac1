//! `/v1/runs`: submit (optionally waiting for the end), inspect, list, cancel, and follow a
//! run's events as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

use super::App;
use super::catalog::LookupError;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBytes, ApiJson, ApiQuery};
use super::params::{ListQuery, SubmitQuery};
use crate::registry::RegistryError;
use crate::runner::{CancelError, SubmitError};
use crate::store::{AttemptRecord, RunFilter, RunRecord, RunStatus, StepRecord};

/// How often a waiter re-reads the journal even without a change notice (a run driven by
/// another process sends none).
const POLL: Duration = Duration::from_millis(250);

/// A run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "workflow": "ticket-triage",
    "input": {"subject": "Refund", "body": "I was charged twice for my order"},
    "idempotency_key": "ticket-4711"
}))]
pub struct CreateRun {
    /// Workflow name.
    pub workflow: String,
    /// Workflow version; the highest active one when absent.
    pub version: Option<String>,
    /// The run input (checked against the workflow's input schema).
    pub input: Value,
    /// Submitting again with the same key, workflow version and input returns the existing
    /// run; the key with another workflow, version or input is a conflict (409). Not empty.
    #[schema(min_length = 1)]
    pub idempotency_key: Option<String>,
}

/// A submitted run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSubmitted {
    /// False when the idempotency key returned an existing run.
    pub created: bool,
    /// The run as it stands (ended, when waited for and it ended in time).
    pub run: RunRecord,
}

/// A run with its steps and attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    pub run: RunRecord,
    /// Its steps, in workflow order (each with the plugin digest it is pinned to).
    pub steps: Vec<StepRecord>,
    /// Every attempt.
    pub attempts: Vec<AttemptRecord>,
    /// Every model call, with its request, response, tokens and cost.
    pub model_calls: Vec<crate::store::ModelCallRecord>,
    /// What the run consumed.
    pub usage: RunUsage,
    /// What the workflow's `[redact]` took out of the run, and where.
    pub redacted: Vec<crate::redaction::Redaction>,
}

/// What a run consumed, over all its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunUsage {
    /// Attempts made.
    pub attempts: usize,
    /// Wall-clock time of all attempts together.
    pub latency_us: u64,
    /// Fuel consumed by metered attempts.
    pub fuel: u64,
    /// The highest peak memory of any attempt.
    pub memory_peak: u64,
    /// Model tokens, prompt and generated.
    pub model_tokens: u64,
    /// Model spend in millionths of a US dollar.
    pub model_cost_micros: i64,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// Pass as `before` for the next page; null on the last page.
    pub next: Option<String>,
}

/// One server-sent event of `GET /v1/runs/{id}/events`, as the stream carries it. Only
/// documents the stream: events are written by axum's SSE encoder.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the wire format for the OpenAPI document"
)]
pub struct SseEvent {
    /// The journal event's sequence number (absent on `done`); send it back as
    /// `Last-Event-ID` to resume after it.
    id: Option<String>,
    /// The journal event's kind (`run_created`, `step_started`, …), `done`, or `shutdown`.
    event: String,
    /// JSON text: the journal event (`EventRecord`); for `done` the settled run
    /// (`RunRecord`); for `shutdown` `{"message", "last_event_id"}`.
    data: String,
}

/// The last event of a stream the server ends because it is shutting down: the client
/// reconnects (to another host, or after the restart) with `Last-Event-ID` and misses nothing.
fn going_away(last_event_id: i64) -> Event {
    Event::default()
        .event("shutdown")
        .json_data(json!({
            "message": "the server is shutting down; reconnect with Last-Event-ID to resume the stream",
            "last_event_id": last_event_id,
        }))
        .unwrap_or_default()
}

/// Why a run is cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// Recorded with the run.
    pub reason: Option<String>,
}

/// Submits a run.
#[utoipa::path(post, path = "/v1/runs", operation_id = "submitRun", tag = "runs", request_body = CreateRun, params(SubmitQuery),
    responses(
        (status = 201, description = "Run created and queued (and, with `wait`, its state when it ended or the wait ran out)", body = RunSubmitted),
        (status = 200, description = "The idempotency key returned an existing run", body = RunSubmitted),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Idempotency key used for another workflow, version or input (`details` names the existing run), or the workflow version is retired", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Input does not match the workflow's input schema", body = ErrorBody),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorBody),
        (status = 503, description = "Shutting down, or still loading its workflows (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn submit(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    ApiJson(body): ApiJson<CreateRun>,
) -> Result<Response, ApiError> {
    if app.shutting_down() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    let wait = query.wait()?;
    // Without a version asked for, the workflow's rollout (if it ever had one) decides.
    let run_id = uuid::Uuid::now_v7().to_string();
    let chosen = match &body.version {
        Some(_) => None,
        None => crate::rollout::driver::choose(
            app.runner.store().as_ref(),
            &body.workflow,
            body.idempotency_key.as_deref(),
            &run_id,
        )
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map(|(version, _, _)| version),
    };
    let loaded = app
        .catalog
        .lookup(
            &body.workflow,
            chosen.as_deref().or(body.version.as_deref()),
        )
        .await
        .map_err(|e| match e {
            LookupError::Retired(message) => ApiError::conflict(message),
            // Just after a start, the workflow may be one the catalog is still loading.
            LookupError::Registry(RegistryError::Store(_)) if !app.catalog.ready() => {
                ApiError::starting()
            }
            LookupError::Registry(RegistryError::Store(e)) => ApiError::not_found(format!("{e:#}")),
            LookupError::Registry(RegistryError::Invalid(d)) => {
                ApiError::internal(&anyhow::anyhow!("{d}"))
            }
        })?;
    let admission = app.admission()?;
    let (run, created) = app
        .runner
        .submit_as(&loaded, body.input, body.idempotency_key, Some(run_id))
        .await
        .map_err(|e| match e {
            SubmitError::InvalidInput {
                workflow,
                violations,
            } => ApiError::invalid_input(
                format!("the input does not match the input schema of {workflow}"),
                json!({ "violations": violations }),
            ),
            SubmitError::Idempotency(e) => match e.existing() {
                Some((run_id, workflow, version)) => ApiError::conflict_with(
                    e.to_string(),
                    json!({"run_id": run_id, "workflow": workflow, "version": version}),
                ),
                None => ApiError::bad_request(format!("`idempotency_key`: {e}")),
            },
            SubmitError::Store(e) | SubmitError::Execute(e) => ApiError::internal(&e),
        })?;
    if created {
        app.queue.enqueue(admission, run.id.clone());
    }
    let run = match wait {
        Some(limit) => wait_for(&app, run, limit).await?,
        None => run,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(RunSubmitted { created, run })).into_response())
}

/// Whether a run has stopped moving on its own.
fn settled(status: RunStatus) -> bool {
    status.is_final() || status == RunStatus::AwaitingReview
}

/// The run once it has settled, or as it stands when `limit` runs out or the server stops.
async fn wait_for(app: &App, run: RunRecord, limit: Duration) -> Result<RunRecord, ApiError> {
    let mut changes = app.runner.subscribe();
    let mut closing = app.closing.clone();
    let deadline = tokio::time::Instant::now() + limit;
    let mut run = run;
    loop {
        if settled(run.status) {
            return Ok(run);
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Ok(run),
            _ = closing.wait_for(|closing| *closing) => return Ok(run),
            () = tokio::time::sleep(POLL) => {}
            changed = changes.recv() => {
                if matches!(&changed, Ok(id) if *id != run.id) {
                    continue;
                }
            }
        }
        run = app
            .runner
            .store()
            .get_run(&run.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("run {} vanished", run.id)))?;
    }
}

/// One run, its steps, attempts and usage.
#[utoipa::path(get, path = "/v1/runs/{id}", operation_id = "getRun", tag = "runs", params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunDetail),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<axum::Json<RunDetail>, ApiError> {
    let store = app.runner.store();
    let run = store
        .get_run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
    let steps = store.steps(&id).await?;
    let attempts = store.attempts(&id).await?;
    let model_calls = store.model_calls(&id).await?;
    let usage = RunUsage {
        model_tokens: model_calls
            .iter()
            .map(|c| c.prompt_tokens + c.completion_tokens)
            .sum(),
        model_cost_micros: model_calls.iter().map(|c| c.cost_micros).sum(),
        attempts: attempts.len(),
        latency_us: attempts.iter().filter_map(|a| a.latency_us).sum(),
        fuel: attempts.iter().filter_map(|a| a.fuel).sum(),
        memory_peak: attempts
            .iter()
            .filter_map(|a| a.memory_peak)
            .max()
            .unwrap_or(0),
    };
    let redacted = crate::redaction::listed(&store.events(&id).await?);
    Ok(axum::Json(RunDetail {
        run,
        steps,
        attempts,
        model_calls,
        usage,
        redacted,
    }))
}

/// Runs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/runs", operation_id = "listRuns", tag = "runs", params(ListQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<axum::Json<RunPage>, ApiError> {
    let status = query.status()?;
    let limit = query.limit()?;
    let runs = app
        .runner
        .store()
        .list_runs(&RunFilter {
            status,
            workflow: query.workflow,
            limit: Some(limit),
            before: query.before,
            ..RunFilter::default()
        })
        .await?;
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id.clone()))
        .flatten();
    Ok(axum::Json(RunPage { runs, next }))
}

/// Cancels a run that has not ended.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", operation_id = "cancelRun", tag = "runs", params(("id" = String, Path, description = "Run id")),
    request_body(content = CancelRun, description = "Optional reason", content_type = "application/json"),
    responses(
        (status = 200, description = "The cancelled run", body = RunRecord),
        (status = 400, description = "The body is not a cancel request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run has already ended", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<RunRecord>, ApiError> {
    // The body is optional: nothing, or `{"reason": …}`.
    let body: CancelRun = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRun::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a cancel request: {e}")))?
    };
    let reason = body
        .reason
        .unwrap_or_else(|| "cancelled through the API".to_string());
    app.runner
        .cancel(&id, &reason)
        .await
        .map(axum::Json)
        .map_err(|e| match e {
            CancelError::NotFound(_) => ApiError::not_found(e.to_string()),
            CancelError::Ended { .. } => ApiError::conflict(e.to_string()),
            CancelError::Store(e) => ApiError::internal(&e),
        })
}

/// The run's event log as server-sent events, from the start (or after `Last-Event-ID`),
/// live until the run settles; then a final `done` event with the run. A server shutting
/// down ends the stream instead with a `shutdown` event.
#[utoipa::path(get, path = "/v1/runs/{id}/events", operation_id = "runEvents", tag = "runs", params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "Event stream: `id` is the event's sequence number, `event` its kind, `data` the event as JSON; the last event is `done`, whose data is the run, or `shutdown` when the server is going away (reconnect with `Last-Event-ID`)", content_type = "text/event-stream", body = SseEvent),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    event_stream(app, id, &headers, settled).await
}

/// The run's events as server-sent events, live until `ends` says the run's status is its
/// last (the API stops at a review; the dashboard follows the run through it).
pub(crate) async fn event_stream(
    app: App,
    id: String,
    headers: &HeaderMap,
    ends: fn(RunStatus) -> bool,
) -> Result<Response, ApiError> {
    let store = app.runner.store().clone();
    if store.get_run(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no run {id}")));
    }
    let mut after: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut changes = app.runner.subscribe();
    let mut closing = app.closing.clone();
    tokio::spawn(async move {
        let mut going = false;
        loop {
            // Subscribed before reading, so no change between the read and the wait is lost.
            let Ok(Some(run)) = store.get_run(&id).await else {
                return;
            };
            let Ok(log) = store.events(&id).await else {
                return;
            };
            let seen = after;
            for event in log.into_iter().filter(|e| e.seq > seen) {
                after = event.seq;
                let sse = Event::default()
                    .id(event.seq.to_string())
                    .event(event.kind.clone())
                    .json_data(&event)
                    .unwrap_or_default();
                if tx.send(Ok(sse)).await.is_err() {
                    return;
                }
            }
            if ends(run.status) {
                let done = Event::default()
                    .event("done")
                    .json_data(&run)
                    .unwrap_or_default();
                let _ = tx.send(Ok(done)).await;
                return;
            }
            if going {
                // The read above came after the drain ended, so it holds every event the
                // drain wrote: the client resumes from exactly here.
                let _ = tx.send(Ok(going_away(after))).await;
                return;
            }
            let poll = tokio::time::sleep(POLL);
            tokio::pin!(poll);
            loop {
                tokio::select! {
                    // (The watch's guard must not be held across the send.)
                    _ = closing.wait_for(|closing| *closing) => {
                        going = true;
                        break;
                    }
                    () = tx.closed() => return,
                    () = &mut poll => break,
                    changed = changes.recv() => match changed {
                        Ok(changed) if changed != id => {}
                        _ => break,
                    },
                }
            }
        }
    });
    let stream: ReceiverStream<Result<Event, Infallible>> = ReceiverStream::new(rx);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
