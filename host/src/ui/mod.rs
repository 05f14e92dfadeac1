//! The dashboard: pages for people, served by `weir serve` at `/ui` from the binary itself.
//!
//! Every page is rendered on the server from templates compiled into the binary, so it works
//! without JavaScript and needs nothing from a CDN; every control is a link or a form. Charts
//! (the run's waterfall) are SVG drawn here. Responses carry a strict Content Security Policy:
//! nothing but this server's own stylesheet loads, and no script runs. Guest text (inputs,
//! outputs, failures) reaches a page only through the templates' HTML escaping.

mod costs;
mod filters;
mod login;
mod pages;
mod render;
mod reviews;
mod session;
mod waterfall;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use costs::DEFAULT_COST_DAYS;
pub use login::MAX_FORM_BYTES;
pub use pages::PAGE_SIZE;
pub use reviews::DASHBOARD_REVIEWER;
pub use session::{DEFAULT_SESSION_LIFETIME, MAX_SESSIONS};

use crate::serve::{App, Tokens};

/// What a dashboard page may load: its own stylesheet and script and its own server's
/// streams, nothing else; no inline script, no frames, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/ui.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// The dashboard's routes, behind their guard: sessions for `tokens` that last `lifetime`.
pub(crate) fn routes(tokens: Tokens, lifetime: Duration) -> Router<App> {
    let sessions = Arc::new(session::Sessions::new(tokens, lifetime));
    Router::new()
        .route("/ui", get(pages::runs))
        .route("/ui/runs/{id}", get(pages::run))
        // The run's event stream for the page's script: the API's, behind the session.
        .route("/ui/runs/{id}/events", get(pages::run_events))
        .route("/ui/costs", get(costs::costs))
        .route("/ui/reviews", get(reviews::list))
        .route("/ui/reviews/{id}", get(reviews::show).post(reviews::decide))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", axum::routing::post(login::logout))
        .route("/ui/assets/ui.css", get(stylesheet))
        .route("/ui/assets/live.js", get(script))
        .layer(middleware::from_fn_with_state(
            sessions.clone(),
            login::guard,
        ))
        .layer(axum::Extension(sessions))
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

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
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
    // Pages show the journal to one viewer: no cache keeps them (the stylesheet says its own).
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
