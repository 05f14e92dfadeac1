//! `/v1/reviews`: the human review queue over HTTP.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::App;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use super::params::ReviewQuery;
use crate::runner::ReviewError;
use crate::store::{Decided, Decision, ReviewRecord};

/// Reviews, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewList {
    /// The reviews.
    pub reviews: Vec<ReviewRecord>,
}

/// A reviewer's decision, told apart by `decision`: each kind takes exactly its own fields,
/// so the document states which bodies the server accepts (a flat object with every field
/// optional would promise bodies it refuses).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
#[schema(example = json!({"decision": "edit", "output": {"queue": "billing"}, "by": "ana", "note": "clearly a refund"}))]
pub enum DecideReview {
    /// The step's output stands; the run goes on.
    Approve {
        /// Who decides (recorded).
        by: Option<String>,
        /// A note for the audit record.
        note: Option<String>,
    },
    /// Replace the step's output with `output`; the run goes on with it.
    Edit {
        /// The new output (checked against the step's output schema).
        output: Value,
        /// Who decides (recorded).
        by: Option<String>,
        /// A note for the audit record.
        note: Option<String>,
    },
    /// Fail the run.
    Reject {
        /// Why (recorded as the run's failure).
        reason: String,
        /// Who decides (recorded).
        by: Option<String>,
        /// A note for the audit record.
        note: Option<String>,
    },
}

impl DecideReview {
    /// The decision, and who made it.
    fn split(self) -> (Decision, Decided) {
        let (decision, by, note) = match self {
            Self::Approve { by, note } => (Decision::Approve, by, note),
            Self::Edit { output, by, note } => (Decision::Edit(output), by, note),
            Self::Reject { reason, by, note } => (Decision::Reject(reason), by, note),
        };
        let by = by.unwrap_or_else(|| "api".to_string());
        (decision, Decided { by, note })
    }
}

/// Marks each variant of `DecideReview` in the document as taking no other fields, as
/// `deny_unknown_fields` makes the server hold it: utoipa says so for structs, not for the
/// variants of a tagged enum, and without it a fuzzer's extra fields are "valid" bodies
/// the server refuses.
pub(super) fn close_decision_variants(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(RefOr::T(Schema::OneOf(one_of))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(DecideReview::name().as_ref()))
    else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// Reviews.
#[utoipa::path(get, path = "/v1/reviews", operation_id = "listReviews", tag = "reviews", params(ReviewQuery),
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
    let status = query.status()?;
    let reviews = app.runner.store().reviews(status, None).await?;
    Ok(axum::Json(ReviewList { reviews }))
}

/// One review: why the run parked and what the reviewer needs.
#[utoipa::path(get, path = "/v1/reviews/{id}", operation_id = "getReview", tag = "reviews", params(("id" = String, Path, description = "Review id")),
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
#[utoipa::path(post, path = "/v1/reviews/{id}", operation_id = "decideReview", tag = "reviews", params(("id" = String, Path, description = "Review id")),
    request_body = DecideReview,
    responses(
        (status = 200, description = "The decided review (its audit record)", body = ReviewRecord),
        (status = 400, description = "Not a decision: `approve` takes only `by` and `note`, `edit` also `output`, `reject` also `reason`", body = ErrorBody),
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
    let (decision, decided) = body.split();
    let review = app
        .decide_review(&id, decision, decided)
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
    Ok(axum::Json(review))
}
