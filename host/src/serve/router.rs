//! The routes, their middleware (auth, body limits, request metrics), and the OpenAPI
//! document, generated from the handlers' annotations.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{self, ApiError};
use super::{
    App, ServeConfig, Tokens, auth, experiments, health, links, monitor, offer, replays, reviews,
    rollouts, runs, shadows,
};
use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weir",
        description = "Run sandboxed WebAssembly workflow steps as durable workflows, over HTTP."
    ),
    modifiers(&BearerAuth),
    // The journal event each server-sent event of `/v1/runs/{id}/events` carries as its data.
    components(schemas(crate::store::EventRecord, rollouts::OrderName)),
    tags(
        (name = "runs", description = "Submit, inspect, cancel and follow runs"),
        (name = "reviews", description = "The human review queue"),
        (name = "catalog", description = "Workflows and plugins on offer"),
        (name = "rollouts", description = "Roll a workflow version out to a share of live runs, checked against the stable one"),
        (name = "monitoring", description = "What each step has seen and answered, over time"),
        (name = "operations", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Routes behind authentication, with their OpenAPI entries.
fn api(config: &ServeConfig) -> OpenApiRouter<App> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(offer::plugins, offer::upload))
        .layer(DefaultBodyLimit::max(config.max_upload));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(runs::submit, runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(replays::replay))
        .routes(routes!(runs::events))
        .routes(routes!(reviews::list))
        .routes(routes!(reviews::get, reviews::decide))
        .routes(routes!(rollouts::start, rollouts::list))
        .routes(routes!(rollouts::get))
        .routes(routes!(rollouts::order))
        .routes(routes!(shadows::list))
        .routes(routes!(experiments::list))
        .routes(routes!(experiments::get))
        .routes(routes!(monitor::profile))
        .routes(routes!(monitor::drift))
        .routes(routes!(monitor::baselines, monitor::pin))
        .routes(routes!(offer::workflows))
        .routes(routes!(health::metrics))
        .layer(DefaultBodyLimit::max(config.max_body))
        .merge(uploads)
}

/// Routes open to anyone who can reach the port: the probes.
fn open() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    let config = ServeConfig::default();
    let (_, doc) = api(&config).merge(open()).split_for_parts();
    finish(doc)
}

/// The generated document with what utoipa cannot say from the annotations: closed
/// decision variants, and the links between operations.
fn finish(mut doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    reviews::close_decision_variants(&mut doc);
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    links::add(&mut doc);
    doc
}

pub(super) fn build(app: App, tokens: Tokens, config: &ServeConfig) -> Router {
    let (protected, mut doc) = api(config).split_for_parts();
    let (probes, probes_doc) = open().split_for_parts();
    doc.merge(probes_doc);
    // The dashboard has its own guard: a browser logs in once and holds a session cookie.
    let ui = if config.ui {
        crate::ui::routes(tokens.clone(), config.ui_session)
    } else {
        Router::new()
    };
    let protected = protected.layer(middleware::from_fn_with_state(tokens, auth::require_token));
    let doc = axum::Json(finish(doc));
    Router::new()
        .merge(protected)
        .merge(ui)
        .merge(probes)
        .route("/openapi.json", get(move || async move { doc.clone() }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(record))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method; see /openapi.json".into(),
    )
}

/// Counts and times every request by route template (not raw path, so ids do not explode
/// the label set).
async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await.into_response();
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
