//! Health, readiness and metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::App;
use super::error::{ApiError, ErrorBody};

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// The store answers, every plugin is compiled, and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready, and why", body = ErrorBody),
    ))]
pub async fn readyz(State(app): State<App>) -> Result<axum::Json<Health>, ApiError> {
    if app.shutting_down() {
        return Err(ApiError::unavailable("shutting down"));
    }
    if !app.catalog.ready() {
        return Err(ApiError::unavailable(
            "plugins and workflows are still loading",
        ));
    }
    if let Err(e) = app.runner.store().get_run("readiness-probe").await {
        return Err(ApiError::unavailable(format!(
            "the store does not answer: {e:#}"
        )));
    }
    Ok(axum::Json(Health {
        status: "ready".into(),
    }))
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    // Histograms keep raw samples until upkeep folds them in.
    app.prometheus.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
}
