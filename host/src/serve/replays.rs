//! `POST /v1/runs/{id}/replay`: a strict replay of a recorded run, answered from its record
//! with nothing sent, in a scratch journal of its own (see `replay`).

use axum::extract::{Path, State};

use super::App;
use super::error::{ApiError, ErrorBody};
use crate::replay::{ReplayError, ReplayReport};

/// Replays a run strictly: same workflow version and plugins, every model call, HTTP
/// exchange, clock read and random byte from the record. The report says whether it came
/// out the same and lists every difference (`nondeterminism`) with its position.
#[utoipa::path(post, path = "/v1/runs/{id}/replay", operation_id = "replayRun", tag = "runs", params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The replay's report", body = ReplayReport),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run cannot be replayed (still running, purged, or a tape over its cap)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<axum::Json<ReplayReport>, ApiError> {
    let runner = &app.runner;
    crate::replay::strict(runner.host(), runner.store(), runner.models(), &id)
        .await
        .map(axum::Json)
        .map_err(|e| match e {
            ReplayError::NotFound(_) => ApiError::not_found(e.to_string()),
            ReplayError::NotReplayable { .. } => ApiError::conflict(e.to_string()),
            ReplayError::Failed(e) => ApiError::internal(&e),
        })
}
