//! The dashboard in a real browser: headless Chromium (Debian's `chromium`), driven over
//! WebDriver by `chromedriver`, against a real `weir serve` on loopback with API tokens. A
//! token logs in; the status filter updates the URL and the rows match the API; an invalid
//! edit shows its error inline and records nothing; approving a review turns the open run
//! page `succeeded` over server-sent events without a reload; every script and stylesheet is
//! the server's own; and with JavaScript off, a plain form still approves. A screenshot of
//! each page is kept under the target directory (`ui-screenshots/`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use weir_artifacts as artifacts;

use crate::serve::{Sidecar, TOKEN, workflow_text};

/// `chromedriver` on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/setup installs Debian's chromium-driver)");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/status", driver.url))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

/// A headless Chromium session, with JavaScript on or off.
async fn browser(driver: &Driver, javascript: bool, profile: &std::path::Path) -> Client {
    let mut options = json!({
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
        ],
    });
    if !javascript {
        options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn keep_screenshot(page: &Client, name: &str) {
    let png = page.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits for what a click's navigation shows: the click returns before the next page loads.
async fn arrive(page: &Client, what: Locator<'_>) -> fantoccini::elements::Element {
    page.wait()
        .at_most(Duration::from_secs(10))
        .for_element(what)
        .await
        .unwrap_or_else(|e| panic!("the next page never showed it: {e}"))
}

async fn log_in(page: &Client, s: &Sidecar) {
    page.goto(&format!("{}/ui", s.url)).await.unwrap();
    let url = page.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui/login", "{url}");
    keep_screenshot(page, "login").await;
    page.find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    page.find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(page, Locator::Css("form.filters")).await;
    let url = page.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui", "{url}");
}

async fn api(s: &Sidecar, path: &str) -> Value {
    s.get(path).send().await.unwrap().json().await.unwrap()
}

/// Submits a `gated` run and returns (run id, review id) once it waits for review.
async fn parked_run(s: &Sidecar, n: u32) -> (String, String) {
    let (status, body) = s
        .submit("?wait=20s", json!({"workflow": "gated", "input": {"n": n}}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let run = body["run"]["id"].as_str().unwrap().to_string();
    let reviews = api(s, "/v1/reviews").await;
    let review = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (run, review)
}

/// When run `id` was created (ms since the Unix epoch).
async fn live_started_ms(s: &Sidecar, id: &str) -> i64 {
    api(s, &format!("/v1/runs/{id}")).await["run"]["created_ms"]
        .as_i64()
        .unwrap()
}

async fn wait_for_status(s: &Sidecar, run: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while api(s, &format!("/v1/runs/{run}")).await["run"]["status"] != status {
        assert!(Instant::now() < deadline, "run {run} never became {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let s = Sidecar::start(|_, root| {
        for (name, lines) in [("gated", r#"review = { when = "true" }"#), ("plain", "")] {
            std::fs::write(
                root.join(format!("workflows/{name}.toml")),
                workflow_text(name, &[("ask", artifacts::ECHO, lines)], ""),
            )
            .unwrap();
        }
    })
    .await;
    for n in 0..3 {
        let (status, _) = s
            .submit("?wait=20s", json!({"workflow": "plain", "input": {"n": n}}))
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED);
    }
    let (live_run, live_review) = parked_run(&s, 100).await;
    let (plain_run, plain_review) = parked_run(&s, 101).await;
    let driver = driver().await;
    let profile = tempfile::tempdir().unwrap();
    let page = browser(&driver, true, profile.path()).await;
    log_in(&page, &s).await;

    // The status filter: the URL carries it, and the rows are the API's.
    page.find(Locator::Css(
        "select[name=status] option[value=awaiting_review]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    page.find(Locator::Css("form.filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = loop {
        let url = page.current_url().await.unwrap();
        if url
            .query()
            .unwrap_or_default()
            .contains("status=awaiting_review")
        {
            break url;
        }
        assert!(
            Instant::now() < deadline,
            "the filter never reached the URL: {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(url.path(), "/ui");
    let mut shown = Vec::new();
    for cell in page
        .find_all(Locator::Css("tr.run td:first-child a"))
        .await
        .unwrap()
    {
        shown.push(cell.text().await.unwrap());
    }
    let listed = api(&s, "/v1/runs?status=awaiting_review").await;
    let expected: Vec<String> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(shown.len(), 2);
    keep_screenshot(&page, "runs").await;

    // Every script and stylesheet is the server's own.
    let sources = page
        .execute(
            "return [...document.scripts].map(s => s.src).concat(\
             [...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href));",
            vec![],
        )
        .await
        .unwrap();
    let sources = sources.as_array().unwrap();
    assert!(!sources.is_empty());
    for source in sources {
        assert!(source.as_str().unwrap().starts_with(&s.url), "{source}");
    }

    // An invalid edit: shown inline, nothing recorded.
    page.goto(&format!("{}/ui/reviews/{live_review}", s.url))
        .await
        .unwrap();
    let output = page
        .find(Locator::Css("textarea[name=output]"))
        .await
        .unwrap();
    output.clear().await.unwrap();
    output.send_keys("{\"n\": ").await.unwrap();
    page.find(Locator::XPath("//button[text()='Edit and approve']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let alert = arrive(&page, Locator::Css("[role=alert]")).await;
    let said = alert.text().await.unwrap();
    assert!(
        said.contains("The edited output is not JSON") && said.contains("Nothing was recorded"),
        "{said}"
    );
    keep_screenshot(&page, "review-refused").await;
    assert_eq!(
        api(&s, &format!("/v1/reviews/{live_review}")).await["status"],
        "pending"
    );

    // The run's page follows the run: approved elsewhere, it turns `succeeded` in place.
    page.goto(&format!("{}/ui/runs/{live_run}", s.url))
        .await
        .unwrap();
    page.execute("window.weirStayedOnPage = true;", vec![])
        .await
        .unwrap();
    keep_screenshot(&page, "run-waiting").await;
    let r = s
        .post(&format!("/v1/reviews/{live_review}"))
        .json(&json!({"decision": "approve", "by": "ana"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    page.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("dl.header .status.succeeded"))
        .await
        .expect("the open page turned succeeded within 5 s");
    let stayed = page
        .execute("return window.weirStayedOnPage === true;", vec![])
        .await
        .unwrap();
    assert_eq!(stayed, json!(true), "the page was not reloaded");
    keep_screenshot(&page, "run").await;
    page.goto(&format!("{}/ui/reviews?status=all", s.url))
        .await
        .unwrap();
    keep_screenshot(&page, "reviews").await;
    // The costs page, over two calls journaled beside the server.
    let store = weir::store::SqliteStore::open(&s.path("weir.db"), weir::store::Durability::Normal)
        .unwrap();
    let at = live_started_ms(&s, &live_run).await;
    for (seq, outcome) in [(1, "ok"), (2, "cached")] {
        let call = crate::ui_costs::call("gated", "ask", outcome, 3_000, at, seq);
        weir::store::Store::record_model_call(&store, call, None)
            .await
            .unwrap();
    }
    page.goto(&format!("{}/ui/costs", s.url)).await.unwrap();
    let row = arrive(&page, Locator::Css("tr.use"))
        .await
        .text()
        .await
        .unwrap();
    assert!(row.contains("gated@1.0.0") && row.contains("50 %"), "{row}");
    keep_screenshot(&page, "costs").await;
    page.close().await.unwrap();

    // With JavaScript off, a plain form post approves.
    let profile = tempfile::tempdir().unwrap();
    let page = browser(&driver, false, profile.path()).await;
    log_in(&page, &s).await;
    page.goto(&format!("{}/ui/reviews/{plain_review}", s.url))
        .await
        .unwrap();
    keep_screenshot(&page, "review").await;
    page.find(Locator::Css("input[name=by]"))
        .await
        .unwrap()
        .send_keys("bo")
        .await
        .unwrap();
    page.find(Locator::XPath("//button[text()='Approve']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&page, Locator::Css("svg.waterfall")).await;
    let url = page.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/ui/runs/{plain_run}"), "{url}");
    wait_for_status(&s, &plain_run, "succeeded").await;
    let decided = api(&s, &format!("/v1/reviews/{plain_review}")).await;
    assert_eq!(decided["decided_by"], "bo");
    page.close().await.unwrap();
}
