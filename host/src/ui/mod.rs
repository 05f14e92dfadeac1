//! The dashboard: pages for people, served by `weir serve` at `/ui` from the binary itself.
//!
//! Every page is rendered on the server from templates compiled into the binary, so it works
//! without JavaScript and needs nothing from a CDN; every control is a link or a form. Charts
//! (the run's waterfall) are SVG drawn here. Responses carry a strict Content Security Policy:
//! nothing but this server's own stylesheet loads, and no script runs. Guest text (inputs,
//! outputs, failures) reaches a page only through the templates' HTML escaping.

mod pages;
mod render;
mod waterfall;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use pages::PAGE_SIZE;

use crate::serve::App;

/// What a dashboard page may load: its own stylesheet, nothing else; no scripts, no frames,
/// no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/ui.css");

/// The dashboard's routes (the server puts them behind its authentication).
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/ui", get(pages::runs))
        .route("/ui/runs/{id}", get(pages::run))
        .route("/ui/assets/ui.css", get(stylesheet))
        .layer(middleware::from_fn(secure))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Security headers on every dashboard response.
async fn secure(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
