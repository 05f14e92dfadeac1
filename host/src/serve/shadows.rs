//! `GET /v1/shadows`: shadow steps' results, each against its live attempt.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use crate::store::ShadowResult;

/// Shadow results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowList {
    /// Newest first.
    pub shadows: Vec<ShadowResult>,
}

/// Which results to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShadowQuery {
    /// Only this workflow's.
    workflow: Option<String>,
    /// Only this run's.
    run_id: Option<String>,
    /// At most this many (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Shadow results, newest first.
#[utoipa::path(get, path = "/v1/shadows", operation_id = "listShadows", tag = "runs", params(ShadowQuery),
    responses(
        (status = 200, description = "Shadow results", body = ShadowList),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ShadowQuery>,
) -> Result<axum::Json<ShadowList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` is {limit}: give 1 to 500"
        )));
    }
    let shadows = app
        .runner
        .store()
        .shadows()
        .shadow_results(query.workflow.as_deref(), query.run_id.as_deref(), limit)
        .await?;
    Ok(axum::Json(ShadowList { shadows }))
}
