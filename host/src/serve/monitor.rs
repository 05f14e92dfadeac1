//! `/v1/monitor/{workflow}/…`: what each step of a workflow has seen and answered (`profile`,
//! from the profiles the journal keeps with every step result), whether it drifted
//! (`drift`), and the baselines it is compared with (`baselines`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use crate::monitor::summary::{self, FeatureSummary};
use crate::store::{BaselinePin, ProfileFilter};

/// A workflow's profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// The workflow.
    pub workflow: String,
    /// One entry per version, step and feature, in that order.
    pub features: Vec<FeatureSummary>,
}

/// Which part of the profile to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// Only this version.
    version: Option<String>,
    /// Only this step.
    step: Option<String>,
    /// Only windows starting at or after this time, ms since the epoch.
    #[param(minimum = 0)]
    since_ms: Option<i64>,
    /// Only windows starting before this time, ms since the epoch.
    #[param(minimum = 0)]
    until_ms: Option<i64>,
}

/// Per version, step and feature: results counted, mean and percentiles, or the most frequent
/// values. A workflow with no profile yet has no features.
#[utoipa::path(get, path = "/v1/monitor/{workflow}/profile", operation_id = "getProfile", tag = "monitoring",
    params(("workflow" = String, Path, description = "Workflow name"), ProfileQuery),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn profile(
    State(app): State<App>,
    Path(workflow): Path<String>,
    ApiQuery(query): ApiQuery<ProfileQuery>,
) -> Result<axum::Json<Profile>, ApiError> {
    for (name, value) in [("since_ms", query.since_ms), ("until_ms", query.until_ms)] {
        if value.is_some_and(|ms| ms < 0) {
            return Err(ApiError::bad_request(format!(
                "`{name}` is negative: give ms since the epoch"
            )));
        }
    }
    let filter = ProfileFilter {
        workflow: workflow.clone(),
        version: query.version,
        step_id: query.step,
        since_ms: query.since_ms,
        until_ms: query.until_ms,
    };
    let rows = app.runner.store().monitor().profiles(&filter).await?;
    Ok(axum::Json(Profile {
        workflow,
        features: summary::summarize(&rows),
    }))
}

/// Every step of a workflow, judged against its baseline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Drift {
    /// The workflow.
    pub workflow: String,
    /// One entry per version and step.
    pub steps: Vec<crate::monitor::status::StepDrift>,
}

/// Per version and step: the baseline it is compared with, its status (`insufficient`, `ok`,
/// `warn` or `alert`), and each feature's statistic, score, threshold, n, evidence and alert.
#[utoipa::path(get, path = "/v1/monitor/{workflow}/drift", operation_id = "getDrift", tag = "monitoring",
    params(("workflow" = String, Path, description = "Workflow name")),
    responses(
        (status = 200, description = "The verdicts", body = Drift),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn drift(
    State(app): State<App>,
    Path(workflow): Path<String>,
) -> Result<axum::Json<Drift>, ApiError> {
    let store = app.runner.store().clone();
    let steps =
        crate::monitor::status::of_workflow(store.as_ref(), &workflow, crate::store::now_ms())
            .await?;
    Ok(axum::Json(Drift { workflow, steps }))
}

/// Every baseline pin of a workflow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pins {
    /// Oldest first; a version's latest pin is its baseline.
    pub pins: Vec<BaselinePin>,
}

/// A baseline to pin: the windows of a time range.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The version whose baseline this becomes (registered).
    #[schema(min_length = 1)]
    pub version: String,
    /// Windows starting at or after this time (ms since the epoch)…
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::rollout::plan::whole::i64")]
    pub from_ms: i64,
    /// …and before this one.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::rollout::plan::whole::i64")]
    pub to_ms: i64,
    /// Whose windows: another registered version (default: `version`'s own).
    pub of: Option<String>,
    /// Why, for the record.
    #[serde(default)]
    pub reason: String,
    /// Who pins it (default: `api`).
    pub by: Option<String>,
}

/// The baseline pins of a workflow, oldest first.
#[utoipa::path(get, path = "/v1/monitor/{workflow}/baselines", operation_id = "listBaselines", tag = "monitoring",
    params(("workflow" = String, Path, description = "Workflow name")),
    responses(
        (status = 200, description = "The pins", body = Pins),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn baselines(
    State(app): State<App>,
    Path(workflow): Path<String>,
) -> Result<axum::Json<Pins>, ApiError> {
    let pins = app
        .runner
        .store()
        .monitor()
        .baseline_pins(&workflow)
        .await?;
    Ok(axum::Json(Pins { pins }))
}

/// Pins a version's baseline to the windows of a time range; journaled with who and why.
#[utoipa::path(post, path = "/v1/monitor/{workflow}/baselines", operation_id = "pinBaseline", tag = "monitoring",
    params(("workflow" = String, Path, description = "Workflow name")), request_body = PinRequest,
    responses(
        (status = 201, description = "Pinned", body = BaselinePin),
        (status = 400, description = "The body is not a pin request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "The version (or `of`) is not a registered version of the workflow", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A range that is empty", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn pin(
    State(app): State<App>,
    Path(workflow): Path<String>,
    ApiJson(body): ApiJson<PinRequest>,
) -> Result<(StatusCode, axum::Json<BaselinePin>), ApiError> {
    // A pin is of a registered version, and of a registered version's windows.
    let store = app.runner.store().clone();
    for version in [Some(&body.version), body.of.as_ref()]
        .into_iter()
        .flatten()
    {
        if store
            .get_workflow(&workflow, Some(version))
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!(
                "no workflow {workflow}@{version} is registered"
            )));
        }
    }
    if body.from_ms < 0 || body.to_ms <= body.from_ms {
        return Err(ApiError::invalid_input(
            format!(
                "`from_ms` {} to `to_ms` {} is no range: give 0 ≤ from_ms < to_ms",
                body.from_ms, body.to_ms
            ),
            serde_json::Value::Null,
        ));
    }
    let pin = BaselinePin {
        workflow,
        source_version: body.of.unwrap_or_else(|| body.version.clone()),
        version: body.version,
        from_ms: body.from_ms,
        to_ms: body.to_ms,
        pinned_by: body.by.unwrap_or_else(|| "api".into()),
        pinned_ms: crate::store::now_ms(),
        reason: body.reason,
    };
    store.monitor().pin_baseline(&pin).await?;
    Ok((StatusCode::CREATED, axum::Json(pin)))
}
