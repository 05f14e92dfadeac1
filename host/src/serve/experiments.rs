//! `GET /v1/experiments`: the evaluations `weir eval` journaled.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use crate::store::ExperimentRecord;

/// Experiments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentList {
    /// Newest first, each with its summary.
    pub experiments: Vec<ExperimentRecord>,
}

/// One whole experiment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentDetail {
    /// The experiment as `weir eval --json` printed it: workflow, candidate, summary, and
    /// every case (regressions first).
    #[schema(value_type = Object)]
    pub experiment: serde_json::Value,
}

/// Which experiments to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExperimentQuery {
    /// Only this workflow's.
    workflow: Option<String>,
    /// At most this many (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Experiments, newest first.
#[utoipa::path(get, path = "/v1/experiments", operation_id = "listExperiments", tag = "rollouts", params(ExperimentQuery),
    responses(
        (status = 200, description = "Experiments", body = ExperimentList),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ExperimentQuery>,
) -> Result<axum::Json<ExperimentList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` is {limit}: give 1 to 500"
        )));
    }
    let experiments = app
        .runner
        .store()
        .experiments()
        .list_experiments(query.workflow.as_deref(), limit)
        .await?;
    Ok(axum::Json(ExperimentList { experiments }))
}

/// One experiment, cases included.
#[utoipa::path(get, path = "/v1/experiments/{id}", operation_id = "getExperiment", tag = "rollouts", params(("id" = String, Path, description = "Experiment id")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentDetail),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such experiment", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<axum::Json<ExperimentDetail>, ApiError> {
    let experiment = app
        .runner
        .store()
        .experiments()
        .get_experiment(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no experiment {id}")))?;
    Ok(axum::Json(ExperimentDetail { experiment }))
}
