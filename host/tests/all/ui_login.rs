//! Logging in to the dashboard: a token buys an `HttpOnly; SameSite=Strict` session cookie,
//! pages without one send the browser to the login form and back, every form post carries
//! the session's CSRF token (open dashboards too), sessions expire, and logout ends them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::serve::{Sidecar, TOKEN};
use crate::ui::{csrf_of, no_redirects};

fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Logs in with `token`, asking to go on to `next`; returns (status, Location, Set-Cookie).
async fn login(s: &Sidecar, token: &str, next: &str) -> (StatusCode, String, String) {
    let r = no_redirects()
        .post(format!("{}/ui/login", s.url))
        .form(&[("token", token), ("next", next)])
        .send()
        .await
        .unwrap();
    let (location, cookie) = (
        header(r.headers(), LOCATION),
        header(r.headers(), SET_COOKIE),
    );
    (r.status(), location, cookie)
}

/// `name=value` of a Set-Cookie header, as a browser sends it back.
fn sent_back(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// `GET path` with `cookie`: (status, Location, body).
async fn visit(s: &Sidecar, path: &str, cookie: &str) -> (StatusCode, String, String) {
    let r = no_redirects()
        .get(format!("{}{path}", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let location = header(r.headers(), LOCATION);
    (r.status(), location, r.text().await.unwrap())
}

#[tokio::test]
async fn a_token_logs_in_once_and_the_session_opens_the_pages() {
    let s = Sidecar::start(|_, _| {}).await;

    // No session: a page sends the browser to the login form, keeping where it was going.
    let (status, location, _) = visit(&s, "/ui/runs/r-1?x=1", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/ui/login?next=%2Fui%2Fruns%2Fr-1%3Fx%3D1");
    let (status, _, form) = visit(&s, &location, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"type="password" name="token""#), "{form}");
    // (HTML-escaped, as every value on a page is.)
    assert!(
        form.contains(r#"name="next" value="&#x2f;ui&#x2f;runs&#x2f;r-1?x=1""#),
        "{form}"
    );

    // A wrong token: the form again, saying so, and no cookie.
    let (status, _, cookie) = login(&s, "not-the-token", "/ui").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_empty(), "{cookie}");

    // The right one: a session cookie only this server's pages get, and on to `next`.
    let (status, location, cookie) = login(&s, TOKEN, "/ui?status=failed").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/ui?status=failed");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    let session = sent_back(&cookie);
    let (status, _, page) = visit(&s, "/ui", &session).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"action="/ui/logout""#), "{page}");
    let value = session.split_once('=').unwrap().1;
    assert!(!page.contains(value), "the page never shows the session id");
    // The API does not take the cookie: it stays bearer-only.
    let r = no_redirects()
        .get(format!("{}/v1/runs", s.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A login only ever sends the browser on to a dashboard page.
    let (_, location, _) = login(&s, TOKEN, "https://evil.example/ui").await;
    assert_eq!(location, "/ui");
}

#[tokio::test]
async fn posts_need_the_sessions_csrf_token_and_logout_ends_the_session() {
    let s = Sidecar::start(|_, _| {}).await;
    let (_, _, cookie) = login(&s, TOKEN, "/ui").await;
    let session = sent_back(&cookie);
    let (_, _, page) = visit(&s, "/ui", &session).await;
    let csrf = csrf_of(&page);
    let (_, _, other) = login(&s, TOKEN, "/ui").await;
    let (_, _, other_page) = visit(&s, "/ui", &sent_back(&other)).await;
    assert_ne!(csrf, csrf_of(&other_page), "each session has its own token");

    let logout = |form: Vec<(&'static str, String)>,
                  extra: Option<(&'static str, &'static str)>| {
        let mut request = no_redirects()
            .post(format!("{}/ui/logout", s.url))
            .header("cookie", &session)
            .form(&form);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        request.send()
    };
    // Without the token, with another session's, or from another site: refused.
    for (form, extra) in [
        (vec![], None),
        (vec![("csrf", csrf_of(&other_page))], None),
        (
            vec![("csrf", csrf.clone())],
            Some(("sec-fetch-site", "cross-site")),
        ),
    ] {
        let r = logout(form, extra).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        visit(&s, "/ui", &session).await.0,
        StatusCode::OK,
        "still logged in"
    );

    let r = logout(
        vec![("csrf", csrf)],
        Some(("sec-fetch-site", "same-origin")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(r.headers(), LOCATION), "/ui/login");
    assert!(header(r.headers(), SET_COOKIE).contains("Max-Age=0"));
    let (status, location, _) = visit(&s, "/ui", &session).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/ui/login?next=%2Fui")
    );
    // A post without a session is refused, not redirected.
    let r = no_redirects()
        .post(format!("{}/ui/logout", s.url))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime() {
    let s = Sidecar::start(|config, _| config.ui_session = Duration::from_millis(800)).await;
    let (_, _, cookie) = login(&s, TOKEN, "/ui").await;
    assert!(
        cookie.contains("Max-Age=1"),
        "the cookie's lifetime rounds up: {cookie}"
    );
    let session = sent_back(&cookie);
    assert_eq!(visit(&s, "/ui", &session).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (status, location, _) = visit(&s, "/ui", &session).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/ui/login"), "{location}");
}

/// Without tokens the dashboard is open, but its forms still carry a CSRF token: a page on
/// another site cannot post to a dashboard on loopback.
#[tokio::test]
async fn an_open_dashboard_needs_no_login_but_still_checks_csrf() {
    let s = Sidecar::start(|config, _| config.tokens.clear()).await;
    let (status, location, _) = visit(&s, "/ui/login?next=/ui/runs/x", "").await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/ui/runs/x")
    );
    let (status, _, page) = visit(&s, "/ui", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("/ui/logout"), "nothing to log out of");
    let r = no_redirects()
        .post(format!("{}/ui/logout", s.url))
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
