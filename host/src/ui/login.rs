//! Who may use the dashboard. With API tokens configured, a browser logs in once with a
//! token and then holds a session cookie; a request with an `Authorization: Bearer` header
//! is let in as the API lets it in. Without tokens (loopback only) the dashboard is open, as
//! the API is. Every form post (except the login itself) carries the viewer's CSRF token,
//! checked here before any handler runs, and a post a browser marks as coming from another
//! site is refused outright.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use minijinja::context;
use serde::Deserialize;

use super::render::{error, page};
use super::session::{COOKIE, Sessions, Viewer, csrf_matches};

/// Largest form body the dashboard reads (an edited step output is the largest form).
pub const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The pages anyone may load: the login form and the stylesheet it uses.
fn is_public(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/assets/")
}

/// The guard in front of every dashboard route.
pub(crate) async fn guard(
    State(sessions): State<Arc<Sessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(viewer) = identify(&sessions, request.headers()) else {
        return refuse(&request);
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if cross_site(request.headers()) {
            return error(StatusCode::FORBIDDEN, "Forms from other sites are refused.");
        }
        if !viewer.bearer {
            request = match checked_form(request, &viewer).await {
                Ok(request) => request,
                Err(response) => return response,
            };
        }
    }
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

fn identify(sessions: &Sessions, headers: &HeaderMap) -> Option<Viewer> {
    if sessions.open() {
        return Some(sessions.without_session(false));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::serve::bearer_token);
    if let Some(token) = bearer {
        return sessions
            .accepts(token)
            .then(|| sessions.without_session(true));
    }
    session_cookie(headers).and_then(|id| sessions.find(&id, Instant::now()))
}

/// The session id in the request's cookies, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// A page load without a session goes to the login form (and comes back after it); any
/// other request is refused.
fn refuse(request: &Request) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let here = request.uri().path_and_query().map_or("/ui", |p| p.as_str());
        let next = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", here)
            .finish();
        return see_other(&format!("/ui/login?{next}"));
    }
    error(
        StatusCode::UNAUTHORIZED,
        "Log in to the dashboard first: your session has ended.",
    )
}

/// Whether the browser says the request comes from another site (`Sec-Fetch-Site`), or,
/// from a browser that does not send that, its `Origin` names another host than the one it
/// was sent to. (`Origin: null` is what our own forms send under `no-referrer`.)
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return site == "cross-site" || site == "same-site";
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Reads the form body, checks its `csrf` field, and hands the body on unchanged.
async fn checked_form(request: Request, viewer: &Viewer) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large."))?;
    let presented = form_field(&bytes, "csrf").unwrap_or_default();
    if !csrf_matches(viewer, &presented) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "This form did not come from your dashboard session (or the session was renewed): reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first value of `name` in a URL-encoded form.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Where a login may send the browser on: a dashboard page, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n == "/ui" || n.starts_with("/ui/") || n.starts_with("/ui?") => {
            if n.contains('\\') || n.chars().any(char::is_control) {
                "/ui"
            } else {
                n
            }
        }
        _ => "/ui",
    }
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the form (an open dashboard goes straight on).
pub(super) async fn form(
    Extension(sessions): Extension<Arc<Sessions>>,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if sessions.open() {
        return see_other(next);
    }
    login_page(StatusCode::OK, next, false)
}

fn login_page(status: StatusCode, next: &str, failed: bool) -> Response {
    page(
        status,
        "login.html",
        context! { next => next, failed => failed },
    )
}

/// `POST /ui/login`: a valid token starts a session and goes on to `next`.
pub(super) async fn submit(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if cross_site(&headers) {
        return error(StatusCode::FORBIDDEN, "Forms from other sites are refused.");
    }
    let next = form_field(&body, "next");
    let next = safe_next(next.as_deref());
    if sessions.open() {
        return see_other(next);
    }
    let token = form_field(&body, "token").unwrap_or_default();
    let Some(id) = sessions.login(token.trim(), Instant::now()) else {
        tracing::warn!("dashboard login with a token that is not accepted");
        return login_page(StatusCode::UNAUTHORIZED, next, true);
    };
    // Rounded up: a browser drops a cookie whose Max-Age is 0.
    let max_age = i64::try_from(sessions.lifetime().as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
    let cookie = Cookie::build((COOKIE, id))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    with_cookie(see_other(next), &cookie)
}

/// `POST /ui/logout`: ends the session and forgets the cookie.
pub(super) async fn logout(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = session_cookie(&headers) {
        sessions.logout(&id);
    }
    let gone = Cookie::build((COOKIE, ""))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    with_cookie(see_other("/ui/login"), &gone)
}

fn with_cookie(mut response: Response, cookie: &Cookie<'_>) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_only_sends_the_browser_on_to_a_dashboard_page() {
        for (next, to) in [
            (Some("/ui/runs/r1"), "/ui/runs/r1"),
            (Some("/ui?status=failed"), "/ui?status=failed"),
            (Some("//evil.example/ui"), "/ui"),
            (Some("https://evil.example"), "/ui"),
            (Some("/uix"), "/ui"),
            (Some("/ui/\\evil"), "/ui"),
            (None, "/ui"),
        ] {
            assert_eq!(safe_next(next), to, "{next:?}");
        }
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:7878"),
            ("host", "127.0.0.1:7878")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:7878")
        ])));
        assert!(!cross_site(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
    }
}
