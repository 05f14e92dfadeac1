//! `/v1/rollouts`: start a rollout, follow it, and pause, resume, promote or abort it. The
//! checks themselves run in the background (see `serve::sweep_rollouts`), on every host of a
//! fleet, and count once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBytes, ApiJson, ApiQuery};
use crate::rollout::machine::Order;
use crate::rollout::{Command, Rollout, RolloutError, RolloutEvent, Start, driver};

/// A rollout with its journal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RolloutDetail {
    /// The rollout.
    pub rollout: Rollout,
    /// Every transition and check, in order, with its figures.
    pub events: Vec<RolloutEvent>,
}

/// Rollouts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RolloutList {
    /// Newest first.
    pub rollouts: Vec<Rollout>,
}

/// Which rollouts to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RolloutQuery {
    /// Only this workflow's.
    workflow: Option<String>,
    /// Only those not over.
    #[serde(default)]
    active: bool,
}

/// A person's order.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutOrder {
    /// Who gives it (journaled) [default: `api`].
    #[serde(default)]
    by: Option<String>,
}

/// The orders a rollout takes.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderName {
    /// Hold the weight where it is.
    Pause,
    /// Go on checking.
    Resume,
    /// Give the candidate every new run.
    Promote,
    /// Every new run on the stable version again.
    Abort,
}

fn api_error(e: RolloutError) -> ApiError {
    match e {
        // Well-formed, but not a rollout that can run: what no schema can say (steps that
        // rise to 100, a `to` that is a version, a `from` that is registered).
        RolloutError::Invalid(m) => ApiError::invalid_input(m, serde_json::Value::Null),
        RolloutError::Plan(ref problems) => {
            let details = serde_json::json!({ "problems": problems });
            ApiError::invalid_input(e.to_string(), details)
        }
        RolloutError::NotFound(_) | RolloutError::UnknownWorkflow(_) => {
            ApiError::not_found(e.to_string())
        }
        RolloutError::Conflict(m) => ApiError::conflict(m),
        RolloutError::Store(e) => ApiError::internal(&e),
    }
}

/// Starts a rollout of a workflow to a registered version.
#[utoipa::path(post, path = "/v1/rollouts", operation_id = "startRollout", tag = "rollouts", request_body = Start,
    responses(
        (status = 201, description = "Started: its first step is live, or it is `pending` until its candidate version is registered", body = Rollout),
        (status = 400, description = "The body is not a rollout request", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No version of the workflow is registered", body = ErrorBody),
        (status = 409, description = "The workflow has a rollout in progress", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A plan that cannot run (`details.problems` lists each), a `to` that is not a version or is the version new runs start on already, or a `from` version that is not registered (or none to default to)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn start(
    State(app): State<App>,
    ApiJson(body): ApiJson<Start>,
) -> Result<(StatusCode, axum::Json<Rollout>), ApiError> {
    let rollout = driver::start(app.runner.store().as_ref(), body, crate::store::now_ms())
        .await
        .map_err(api_error)?;
    Ok((StatusCode::CREATED, axum::Json(rollout)))
}

/// Rollouts, newest first.
#[utoipa::path(get, path = "/v1/rollouts", operation_id = "listRollouts", tag = "rollouts", params(RolloutQuery),
    responses(
        (status = 200, description = "Rollouts", body = RolloutList),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<RolloutQuery>,
) -> Result<axum::Json<RolloutList>, ApiError> {
    let rollouts = app
        .runner
        .store()
        .rollouts()
        .list_rollouts(query.workflow.as_deref(), query.active)
        .await?;
    Ok(axum::Json(RolloutList { rollouts }))
}

/// One rollout, with every transition and check.
#[utoipa::path(get, path = "/v1/rollouts/{id}", operation_id = "getRollout", tag = "rollouts", params(("id" = String, Path, description = "Rollout id")),
    responses(
        (status = 200, description = "The rollout and its journal", body = RolloutDetail),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such rollout", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<axum::Json<RolloutDetail>, ApiError> {
    let journal = app.runner.store().rollouts();
    let rollout = journal
        .get_rollout(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rollout {id}")))?;
    let events = journal.rollout_events(&id).await?;
    Ok(axum::Json(RolloutDetail { rollout, events }))
}

/// Pauses, resumes, promotes or aborts a rollout.
#[utoipa::path(post, path = "/v1/rollouts/{id}/{order}", operation_id = "orderRollout", tag = "rollouts",
    params(("id" = String, Path, description = "Rollout id"), ("order" = OrderName, Path, description = "What to do")),
    request_body(content = RolloutOrder, description = "Optional: who asks", content_type = "application/json"),
    responses(
        (status = 200, description = "The rollout after the order", body = Rollout),
        (status = 400, description = "Not an order", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such rollout", body = ErrorBody),
        (status = 409, description = "The rollout's state does not allow it (over already, or not paused)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn order(
    State(app): State<App>,
    Path((id, order)): Path<(String, String)>,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<Rollout>, ApiError> {
    let order = match order.as_str() {
        "pause" => Order::Pause,
        "resume" => Order::Resume,
        "promote" => Order::Promote,
        "abort" => Order::Abort,
        other => {
            return Err(ApiError::bad_request(format!(
                "`{other}` is not an order: pause, resume, promote or abort"
            )));
        }
    };
    // The body is optional: nothing, or `{"by": …}`.
    let body: RolloutOrder = if body.iter().all(u8::is_ascii_whitespace) {
        RolloutOrder::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not an order: {e}")))?
    };
    let by = body.by.unwrap_or_else(|| "api".to_string());
    let command = Command { order, by };
    let rollout = driver::command(
        app.runner.store().as_ref(),
        &id,
        &command,
        crate::store::now_ms(),
    )
    .await
    .map_err(api_error)?;
    Ok(axum::Json(rollout))
}
