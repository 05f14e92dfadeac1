//! The dashboard at `/ui`: the runs page (filters in the URL, keyset paging), a run's page
//! (steps, waterfall, guest text escaped), its security headers, `--no-ui`, and the pages
//! rendered by a real browser (headless Chromium) with nothing refused by their policy.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_artifacts as artifacts;

use crate::serve::{Sidecar, workflow_text};

/// A sidecar without tokens (loopback, open as the API is) offering `echo` and `fails`.
async fn dashboard() -> Sidecar {
    Sidecar::start(|config, root| {
        config.tokens.clear();
        let workflows = root.join("workflows");
        std::fs::write(
            workflows.join("echo.toml"),
            workflow_text("echo", &[("only", artifacts::ECHO, "")], ""),
        )
        .unwrap();
        std::fs::write(
            workflows.join("fails.toml"),
            workflow_text(
                "fails",
                &[("only", artifacts::ECHO, "config = { fail = \"fatal\" }")],
                "",
            ),
        )
        .unwrap();
    })
    .await
}

async fn submit(s: &Sidecar, workflow: &str, input: Value) -> String {
    let (status, body) = s
        .submit("?wait=20s", json!({"workflow": workflow, "input": input}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["run"]["id"].as_str().unwrap().to_string()
}

/// A client that shows redirects instead of following them, and keeps no cookies: what the
/// dashboard's tests see of a browser's requests.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first hidden `csrf` field on a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = page
        .find(marker)
        .expect("the page has a form with a CSRF token");
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// (status, content type, CSP, body) of `GET path`.
async fn page(s: &Sidecar, path: &str) -> (StatusCode, String, String, String) {
    let r = s.get(path).send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, kind, csp) = (
        r.status(),
        header("content-type"),
        header("content-security-policy"),
    );
    (status, kind, csp, r.text().await.unwrap())
}

fn run_links(html: &str) -> Vec<String> {
    html.split("href=\"/ui/runs/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_runs_page_filters_in_the_url_and_pages_by_run() {
    let s = dashboard().await;
    let mut echoed = Vec::new();
    for n in 0..weir::ui::PAGE_SIZE + 2 {
        echoed.push(submit(&s, "echo", json!({"n": n})).await);
    }
    let failed = submit(&s, "fails", json!({})).await;

    let (status, kind, csp, html) = page(&s, "/ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert_eq!(csp, weir::ui::CONTENT_SECURITY_POLICY);
    let first = run_links(&html);
    assert_eq!(first.len(), weir::ui::PAGE_SIZE as usize);
    assert_eq!(first[0], failed, "newest first");

    // Filters live in the URL: failed runs only, then echo's succeeded runs.
    let (_, _, _, html) = page(&s, "/ui?status=failed").await;
    assert_eq!(run_links(&html), std::slice::from_ref(&failed));
    assert!(html.contains(r#"<option value="failed" selected>"#));
    let (_, _, _, html) = page(&s, "/ui?workflow=echo&status=succeeded").await;
    let shown = run_links(&html);
    assert!(!shown.contains(&failed));
    // The next page starts after the last run shown and keeps the filters.
    let next = html
        .split(r#"<a rel="next" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older runs")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    assert!(
        next.contains("workflow=echo") && next.contains("status=succeeded"),
        "{next}"
    );
    let (_, _, _, older) = page(&s, &next).await;
    let rest = run_links(&older);
    assert_eq!(shown.len() + rest.len(), echoed.len());
    let mut all: Vec<String> = shown.into_iter().chain(rest).collect();
    all.sort();
    echoed.sort();
    assert_eq!(all, echoed, "every run once, across the pages");
    assert!(!older.contains(r#"rel="next""#));

    let (status, kind, _, html) = page(&s, "/ui?status=sleepy").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        kind.starts_with("text/html") && html.contains("Unknown status"),
        "{html}"
    );
}

#[tokio::test]
async fn a_run_page_shows_its_steps_and_waterfall_with_guest_text_escaped() {
    let s = dashboard().await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let id = submit(&s, "echo", json!({"note": hostile})).await;
    let (status, _, csp, html) = page(&s, &format!("/ui/runs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csp, weir::ui::CONTENT_SECURITY_POLICY);
    // The only script is the dashboard's own file; the guest's markup is text.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains(r#"<script src="/ui/assets/live.js" defer></script>"#));
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(html.contains(r#"<tr class="step"><td>only</td>"#), "{html}");
    assert!(html.contains(r#"<svg class="waterfall""#));
    // The part the page's script swaps in: the main block alone, varying on the header.
    let r = s
        .get(&format!("/ui/runs/{id}"))
        .header("x-weir-fragment", "main")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["vary"], "x-weir-fragment");
    let part = r.text().await.unwrap();
    assert!(
        part.contains("<h1>Run") && !part.contains("<html"),
        "{part}"
    );
    assert!(part.contains(r#"<svg class="waterfall""#), "{part}");
    assert_eq!(html.matches("<rect ").count(), 1, "one bar per attempt");
    assert!(html.contains(r#"class="ok""#));

    let failed = submit(&s, "fails", json!({})).await;
    let (_, _, _, html) = page(&s, &format!("/ui/runs/{failed}")).await;
    assert!(html.contains("<h2>Failure</h2>") && html.contains("asked to fail with fatal"));
    assert!(html.contains(r#"class="failed""#));

    let (status, kind, _, html) = page(&s, "/ui/runs/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(kind.starts_with("text/html") && html.contains("There is no run no-such-run"));
    let css = s.get("/ui/assets/ui.css").send().await.unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn the_dashboard_is_behind_the_token_and_off_with_no_ui() {
    // With tokens configured, a page needs one (a bearer header, or a session: see
    // ui_login.rs); without, the browser is sent to the login form.
    let s = Sidecar::start(|_, _| {}).await;
    let r = no_redirects()
        .get(format!("{}/ui", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(s.get("/ui").send().await.unwrap().status(), StatusCode::OK);
    let off = Sidecar::start(|config, _| config.ui = false).await;
    assert_eq!(
        off.get("/ui").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// Headless Chromium renders `url`; returns the DOM it built and what it logged.
fn browse(url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs (scripts/setup installs Debian's chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_renders_the_pages_with_nothing_refused() {
    let s = dashboard().await;
    let id = submit(&s, "echo", json!({"seen": "in a browser"})).await;
    for (path, expect) in [
        ("/ui".to_string(), format!(r#"href="/ui/runs/{id}""#)),
        (
            format!("/ui/runs/{id}"),
            r#"<svg class="waterfall""#.to_string(),
        ),
    ] {
        let url = format!("{}{path}", s.url);
        let (dom, log) = tokio::task::spawn_blocking(move || browse(&url))
            .await
            .unwrap();
        assert!(dom.contains(&expect), "{path}: {dom}");
        assert!(dom.contains("<main>"), "{path}: {dom}");
        assert!(
            !log.contains("Content Security Policy") && !log.contains("Refused to"),
            "{path}: {log}"
        );
    }
}
