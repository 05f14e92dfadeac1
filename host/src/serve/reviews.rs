//! `/v1/reviews`: the human review queue over HTTP.

// utoipa's `IntoParams` expansion names types by their full paths.
#![allow(unused_qualifications)]

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use crate::runner::ReviewError;
use crate::store::{Decided, Decision, ReviewRecord, ReviewStatus};

/// Filters of `GET /v1/reviews`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `pending` (default), `approved`, `edited`, `rejected` or `all`.
    pub status: Option<String>,
}

/// Reviews, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewList {
    /// The reviews.
    pub reviews: Vec<ReviewRecord>,
}

/// A reviewer's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "edit", "output": {"queue": "billing"}, "by": "ana", "note": "clearly a refund"}))]
pub struct DecideReview {
    /// `approve` (the step's output stands), `edit` (replace it with `output`) or `reject`
    /// (fail the run, with `reason`).
    pub decision: String,
    /// The new output, for `edit`.
    pub output: Option<Value>,
    /// Why, for `reject`.
    pub reason: Option<String>,
    /// Who decides (recorded).
    pub by: Option<String>,
    /// A note for the audit record.
    pub note: Option<String>,
}

/// Reviews.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", params(ReviewQuery),
    responses(
        (status = 200, description = "Reviews", body = ReviewList),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ReviewQuery>,
) -> Result<axum::Json<ReviewList>, ApiError> {
    let status = match query.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(
            s.parse::<ReviewStatus>()
                .map_err(|e| ApiError::bad_request(format!("`status`: {e}")))?,
        ),
    };
    let reviews = app.runner.store().reviews(status, None).await?;
    Ok(axum::Json(ReviewList { reviews }))
}

/// One review: why the run parked and what the reviewer needs.
#[utoipa::path(get, path = "/v1/reviews/{id}", tag = "reviews", params(("id" = String, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review", body = ReviewRecord),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such review", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewRecord>, ApiError> {
    app.runner
        .store()
        .get_review(&id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no review {id}")))
}

/// Decides a review; the run goes on (or fails, on `reject`).
#[utoipa::path(post, path = "/v1/reviews/{id}", tag = "reviews", params(("id" = String, Path, description = "Review id")),
    request_body = DecideReview,
    responses(
        (status = 200, description = "The decided review (its audit record)", body = ReviewRecord),
        (status = 400, description = "Not a decision", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such review", body = ErrorBody),
        (status = 409, description = "Already decided, or nothing to approve", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The edited output does not match the step's output schema", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn decide(
    State(app): State<App>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecideReview>,
) -> Result<axum::Json<ReviewRecord>, ApiError> {
    let decision = match (body.decision.as_str(), body.output, body.reason) {
        ("approve", None, None) => Decision::Approve,
        ("edit", Some(output), None) => Decision::Edit(output),
        ("reject", None, Some(reason)) => Decision::Reject(reason),
        (other, _, _) => {
            return Err(ApiError::bad_request(format!(
                "decision {other:?} with these fields is not one of: approve (no other fields), edit (with `output`), reject (with `reason`)"
            )));
        }
    };
    let decided = Decided {
        by: body.by.unwrap_or_else(|| "api".to_string()),
        note: body.note,
    };
    let review = app
        .runner
        .decide(&id, decision, decided)
        .await
        .map_err(|e| match e {
            ReviewError::NotFound(_) => ApiError::not_found(e.to_string()),
            ReviewError::Conflict(_) => ApiError::conflict(e.to_string()),
            ReviewError::InvalidOutput { ref violations, .. } => {
                let details = json!({ "violations": violations });
                ApiError::invalid_input(e.to_string(), details)
            }
            ReviewError::Store(e) => ApiError::internal(&e),
        })?;
    app.drive_on(review.run_id.clone());
    Ok(axum::Json(review))
}
