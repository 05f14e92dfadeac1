//! `POST /v1/runs/{id}/replay`: a recorded run again, in the three modes `weir replay` has.
//! Strict (no body) and candidate replays run in a scratch journal of their own and answer
//! with the report (see `replay`); a rerun from a step is a new run in the real journal.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiBytes;
use crate::replay::{Matching, OnMiss, Options, ReplayError, ReplayReport, Scratch};
use crate::store::RunRecord;

/// What to replay the run as. No body, `null` or an empty object is a strict replay.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Candidate plugins by step id, each `sha256:<digest>` of a plugin in the store (a
    /// candidate replay). Files on the server are not reachable through the API.
    #[serde(default)]
    pub steps: BTreeMap<String, String>,
    /// A registered workflow version to run the recorded input through, `name@version`
    /// (a candidate replay).
    #[serde(default)]
    pub candidate: Option<String>,
    /// A candidate's call the record cannot answer: refused (`fail`), made for real (`live`,
    /// paid from `budget_usd`), or refused with the run left out (`skip`).
    #[serde(default)]
    pub on_miss: Option<OnMiss>,
    /// What live calls may spend, in dollars: at most, and by default, the server's
    /// `--replay-budget-usd` ($1 unless set); never the workflow's budgets.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub budget_usd: Option<f64>,
    /// Rerun from this step as a new run in the journal: the steps it does not lead to keep
    /// their recorded results, it and everything after it run again.
    #[serde(default)]
    pub from_step: Option<String>,
    /// With `from_step`: the input that step gets instead of its own (schema-checked).
    /// Given as `null`, it is that input, not an absent one.
    #[serde(default, deserialize_with = "present")]
    pub input: Option<Value>,
}

/// A field that is there, `null` included: serde reads a `null` `Option` as absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Replays a run. With no body it is strict: same workflow version and plugins, every model
/// call, HTTP exchange, clock read and random byte from the record, nothing sent; the
/// report says whether it came out the same and lists every difference (`nondeterminism`)
/// with its position. With `steps` or `candidate` it is a candidate replay, whose report
/// shows what the change did. With `from_step` it reruns the run from that step as a new
/// run (201), linked to its source.
#[utoipa::path(post, path = "/v1/runs/{id}/replay", operation_id = "replayRun", tag = "runs", params(("id" = String, Path, description = "Run id")),
    request_body(content = Option<ReplayRequest>, description = "Optional: a candidate, or the step to rerun from", content_type = "application/json"),
    responses(
        (status = 200, description = "The replay's report (strict or candidate)", body = ReplayReport),
        (status = 201, description = "The rerun from `from_step`, as it ended (or parked for review)", body = RunRecord),
        (status = 400, description = "The body is not a replay request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such run, or no such candidate plugin or workflow version", body = ErrorBody),
        (status = 409, description = "The run cannot be replayed (still running, purged, a tape over its cap, or no such step to rerun from)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "A rerun: the queue is full", body = ErrorBody),
        (status = 503, description = "A rerun: the server is shutting down", body = ErrorBody),
        (status = 422, description = "A candidate that does not fit the run (a step it does not have, a plugin that is not a digest), a negative budget or one over the server's cap, or `on_miss`, `budget_usd` or `input` without what they go with", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    State(app): State<App>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let request: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        // `null` is no request too, as the optional body's schema allows.
        serde_json::from_slice::<Option<ReplayRequest>>(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a replay request: {e}")))?
            .unwrap_or_default()
    };
    let runner = &app.runner;
    // The run comes first: a candidate for a run that is not there is moot.
    if runner.store().get_run(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no run {id}")));
    }
    if let Some(step) = &request.from_step {
        let candidate_only = !request.steps.is_empty()
            || request.candidate.is_some()
            || request.on_miss.is_some()
            || request.budget_usd.is_some();
        if candidate_only {
            return Err(invalid(
                "`from_step` reruns the recorded version: it takes no `steps`, `candidate`, `on_miss` or `budget_usd`",
            ));
        }
        // A new run in the real journal, so it is admitted as a submission is: not while
        // the server drains, and only with a place in the queue, held while it runs.
        if app.shutting_down() {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        let admission = app.admission()?;
        // On a task of its own, so a client that hangs up does not leave the new run
        // half driven.
        let (runner, step, input) = (runner.clone(), step.clone(), request.input.clone());
        let rerun = tokio::spawn(async move {
            let _admission = admission;
            crate::replay::rerun_from_step(runner.host(), &runner, &id, &step, input).await
        });
        let run: RunRecord = rerun
            .await
            .map_err(|e| ApiError::internal(&anyhow::anyhow!("the rerun's task failed: {e}")))?
            .map_err(replay_error)?;
        return Ok((StatusCode::CREATED, axum::Json(run)).into_response());
    }
    if request.input.is_some() {
        return Err(invalid("`input` goes with `from_step`"));
    }
    let report = if request.steps.is_empty() && request.candidate.is_none() {
        // A strict replay makes no call the record cannot answer: a miss policy or a
        // budget given for one would be silently dropped, so it is refused instead.
        if request.on_miss.is_some() || request.budget_usd.is_some() {
            return Err(invalid(
                "`on_miss` and `budget_usd` go with a candidate (`steps` or `candidate`)",
            ));
        }
        crate::replay::strict(runner.host(), runner.store(), runner.models(), &id).await
    } else {
        let options = candidate(&app, &request).await?;
        let scratch = Scratch::new().map_err(|e| ApiError::internal(&e))?;
        crate::replay::replay(
            runner.host(),
            runner.store(),
            runner.models(),
            &id,
            &options,
            &scratch,
        )
        .await
    };
    Ok(axum::Json(report.map_err(replay_error)?).into_response())
}

/// The candidate a request names, from the store only: digests of stored plugins and
/// registered workflow versions.
async fn candidate(app: &App, request: &ReplayRequest) -> Result<Options, ApiError> {
    let runner = &app.runner;
    let store = runner.store();
    let budget_usd = request.budget_usd.unwrap_or(app.replay_budget_usd);
    if !(budget_usd.is_finite() && budget_usd >= 0.0) {
        return Err(invalid(format!(
            "`budget_usd` is {budget_usd}: give a dollar amount of 0 or more"
        )));
    }
    // Each replay spends in a scratch journal of its own, never from the workflow's
    // budgets: what one may spend is the server's to bound, not the caller's.
    if budget_usd > app.replay_budget_usd {
        return Err(invalid(format!(
            "`budget_usd` is {budget_usd}: this server allows a replay at most ${} (weir serve --replay-budget-usd)",
            app.replay_budget_usd
        )));
    }
    let mut steps = std::collections::HashMap::new();
    for (step, plugin) in &request.steps {
        let Some(digest) = plugin.strip_prefix("sha256:") else {
            return Err(invalid(format!(
                "`steps.{step}` is {plugin:?}: name a stored plugin as sha256:<digest> (upload one with POST /v1/plugins)"
            )));
        };
        if store.get_plugin(digest).await?.is_none() {
            return Err(ApiError::not_found(format!(
                "`steps.{step}`: no plugin sha256:{digest} in the store"
            )));
        }
        let plugin = crate::registry::load_plugin(
            runner.host(),
            store.as_ref(),
            digest,
            &format!("steps.{step}"),
        )
        .await
        .map_err(|e| invalid(format!("{e:#}")))?;
        steps.insert(step.clone(), plugin);
    }
    let workflow = match &request.candidate {
        None => None,
        Some(c) => {
            let Some((name, version)) = c.split_once('@') else {
                return Err(invalid(format!(
                    "`candidate` is {c:?}: name a registered workflow version as name@version"
                )));
            };
            if store.get_workflow(name, Some(version)).await?.is_none() {
                return Err(ApiError::not_found(format!(
                    "`candidate`: no workflow {name}@{version} is registered"
                )));
            }
            let loaded = crate::registry::load_registered(
                runner.host(),
                store.as_ref(),
                name,
                Some(version),
            )
            .await
            .map_err(|e| invalid(format!("`candidate` {c}: {e}")))?;
            Some(std::sync::Arc::new(loaded))
        }
    };
    Ok(Options {
        matching: Matching::Request(request.on_miss.unwrap_or_default()),
        steps,
        workflow,
        budget_usd: Some(budget_usd),
        fresh_models: false,
    })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_input(message, Value::Null)
}

fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::NotFound(_) => ApiError::not_found(e.to_string()),
        ReplayError::NotReplayable { .. } => ApiError::conflict(e.to_string()),
        ReplayError::Candidate(_) => invalid(e.to_string()),
        ReplayError::Failed(e) => ApiError::internal(&e),
    }
}
