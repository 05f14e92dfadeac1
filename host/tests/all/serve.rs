//! `weir serve`'s HTTP API over real loopback HTTP: every endpoint, auth, the error shape,
//! body limits, idempotency, backpressure, cancellation, server-sent events, metrics, the
//! OpenAPI document, and hot reload under load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weir::runner::Runner;
use weir::serve::{ServeConfig, Server};
use weir::store::{Durability, SqliteStore, Store};
use weir_artifacts as artifacts;

use crate::support::host;

pub const TOKEN: &str = "s3cret-token";

/// A running server with its own data, workflow and plugin directories.
pub struct Sidecar {
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    pub url: String,
    pub client: reqwest::Client,
}

impl Sidecar {
    pub async fn start(configure: impl FnOnce(&mut ServeConfig, &Path)) -> Self {
        Self::start_with(None, configure).await
    }

    /// A server on `backend`'s journal (SQLite or a PostgreSQL schema of the test's own).
    pub async fn start_on(
        backend: &crate::backend::TestStore,
        configure: impl FnOnce(&mut ServeConfig, &Path),
    ) -> Self {
        Self::start_with(Some(backend), configure).await
    }

    async fn start_with(
        backend: Option<&crate::backend::TestStore>,
        configure: impl FnOnce(&mut ServeConfig, &Path),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("workflows")).unwrap();
        std::fs::create_dir_all(root.join("plugins")).unwrap();
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tokens: vec![TOKEN.to_string()],
            workflows_dir: Some(root.join("workflows")),
            plugins_dir: Some(root.join("plugins")),
            ..ServeConfig::default()
        };
        configure(&mut config, root);
        let store: Arc<dyn Store> = match backend {
            Some(backend) => backend.open(root).await,
            None => Arc::new(SqliteStore::open(&root.join("weir.db"), Durability::Normal).unwrap()),
        };
        let runner = Runner::new(host().clone(), store, root.join("locks"));
        let server = Server::start(host().clone(), runner, config).await.unwrap();
        let url = format!("http://{}", server.addr);
        let sidecar = Self {
            dir,
            server: Some(server),
            url,
            client: reqwest::Client::new(),
        };
        sidecar.until_ready().await;
        sidecar
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    async fn until_ready(&self) {
        // Ready means every plugin compiled: on a loaded 2-core machine (the suite builds
        // Python and JavaScript components meanwhile) that can take tens of seconds.
        for _ in 0..2400 {
            let r = self
                .client
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server never became ready");
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
    }

    /// `GET path` as JSON.
    pub async fn json(&self, path: &str) -> Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// `GET path` as text.
    pub async fn text(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }

    /// Submits a run and returns (status, body).
    pub async fn submit(&self, query: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .post(&format!("/v1/runs{query}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }
}

/// A workflow file: `steps` are (id, plugin path, extra TOML lines).
pub fn workflow_text(name: &str, steps: &[(&str, &str, &str)], extra: &str) -> String {
    let mut text = format!("name = \"{name}\"\nversion = \"1.0.0\"\n{extra}\n");
    let mut previous: Option<&str> = None;
    for (id, plugin, lines) in steps {
        text.push_str(&format!(
            "[[steps]]\nid = \"{id}\"\nplugin = \"{plugin}\"\n{lines}\n"
        ));
        if let Some(p) = previous {
            text.push_str(&format!("after = [\"{p}\"]\n"));
        }
        previous = Some(id);
    }
    text
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not the error shape: {body}"))
}

async fn api_sidecar() -> Sidecar {
    Sidecar::start(|config, root| {
        config.max_body = 4096;
        let echo = artifacts::ECHO;
        let files = [
            ("echo.toml", workflow_text("echo", &[("only", echo, "")], "")),
            (
                "slow.toml",
                workflow_text(
                    "slow",
                    &[("first", echo, "config = { sleep_ms = 1500 }"), ("second", echo, "")],
                    "",
                ),
            ),
            (
                "typed.toml",
                workflow_text(
                    "typed",
                    &[("only", echo, "")],
                    "input-schema = { type = \"object\", required = [\"ticket\"], properties = { ticket = { type = \"integer\" } } }",
                ),
            ),
        ];
        for (name, text) in files {
            std::fs::write(root.join("workflows").join(name), text).unwrap();
        }
    })
    .await
}

#[tokio::test]
async fn the_api_answers_every_endpoint_with_auth_and_one_error_shape() {
    let s = api_sidecar().await;

    // Probes are open; everything else needs the token.
    let r = s
        .client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (token, what) in [(None, "no token"), (Some("wrong"), "a wrong token")] {
        let mut request = s.client.get(format!("{}/v1/runs", s.url));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
    }

    // Submit and wait.
    let (status, body) = s
        .submit(
            "?wait=20s",
            json!({"workflow": "echo", "input": {"hello": "world"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], json!(true));
    assert_eq!(body["run"]["status"], json!("succeeded"));
    assert_eq!(body["run"]["output"], json!({"hello": "world"}));
    let id = body["run"]["id"].as_str().unwrap().to_string();

    // Numbers come back as they were sent: beyond 64 bits, and with more digits than a double.
    let exact =
        r#"{"big":123456789012345678901234567890,"x":0.1000000000000000055511151231257827}"#;
    let (status, body) = s
        .submit(
            "?wait=20s",
            serde_json::from_str(&format!(r#"{{"workflow": "echo", "input": {exact}}}"#)).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["run"]["output"].to_string(), exact);
    assert_eq!(body["run"]["input"].to_string(), exact);

    // Idempotent resubmission: the same run; the same key with another input: 409.
    let (status, again) = s
        .submit(
            "",
            json!({"workflow": "echo", "input": {"hello": "world"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["created"], json!(false));
    assert_eq!(again["run"]["id"], json!(id));
    let (status, conflict) = s
        .submit(
            "",
            json!({"workflow": "echo", "input": {"other": 1}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&conflict), "conflict");
    // The key with another workflow: 409 naming the run it belongs to, not that run.
    let (status, conflict) = s
        .submit(
            "",
            json!({"workflow": "slow", "input": {"hello": "world"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(error_code(&conflict), "conflict");
    assert_eq!(
        conflict["error"]["details"],
        json!({"run_id": id, "workflow": "echo", "version": "1.0.0"})
    );
    // An empty key is refused.
    let (status, empty) = s
        .submit(
            "",
            json!({"workflow": "echo", "input": {}, "idempotency_key": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{empty}");
    assert!(
        empty["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idempotency_key"),
        "{empty}"
    );

    // The run in detail, pinned to echo's digest.
    let detail: Value = s.json(&format!("/v1/runs/{id}")).await;
    let echo_digest = weir_digest(artifacts::ECHO);
    assert_eq!(detail["steps"][0]["plugin_digest"], json!(echo_digest));
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(detail["usage"]["attempts"], json!(1));

    // Bad requests, each with its code.
    let r = s
        .post("/v1/runs")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
    let r = s.post("/v1/runs").body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = s.submit("", json!({"workflow": "nope", "input": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no workflow nope"),
        "{body}"
    );
    let (status, body) = s
        .submit(
            "",
            json!({"workflow": "typed", "input": {"ticket": "seven"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_input");
    assert!(
        body["error"]["details"]["violations"][0]
            .as_str()
            .unwrap()
            .starts_with("at /ticket:"),
        "{body}"
    );
    let (status, body) = s
        .submit(
            "",
            json!({"workflow": "echo", "input": {"pad": "x".repeat(5000)}}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "payload_too_large");
    let (status, body) = s
        .submit("?wait=soon", json!({"workflow": "echo", "input": {}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`wait`"),
        "{body}"
    );
    let r = s.get("/v1/runs/no-such-run").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.get("/v1/nothing").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&r.json::<Value>().await.unwrap()), "not_found");
    let r = s.get("/v1/runs?status=sleepy").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Pagination: one run per page, cursors move back in time.
    s.submit("?wait", json!({"workflow": "echo", "input": {"n": 2}}))
        .await;
    let page: Value = s.json("/v1/runs?limit=1").await;
    let first = page["runs"][0]["id"].as_str().unwrap().to_string();
    let next = page["next"].as_str().unwrap();
    let page2: Value = s.json(&format!("/v1/runs?limit=1&before={next}")).await;
    let second = page2["runs"][0]["id"].as_str().unwrap();
    assert!(second < first.as_str(), "older runs come later");
    let filtered: Value = s
        .json("/v1/runs?status=succeeded&workflow=echo&limit=100")
        .await;
    // k1's run, the exact-numbers run and this one.
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 3);
    assert_eq!(filtered["next"], Value::Null);

    // The catalog.
    let workflows: Value = s.json("/v1/workflows").await;
    let names: Vec<&str> = workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "slow", "typed"]);
    assert_eq!(
        workflows["workflows"][0]["steps"][0]["digest"],
        json!(echo_digest)
    );
    let plugins: Value = s.json("/v1/plugins").await;
    let echo = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "echo")
        .expect("echo listed");
    assert_eq!(echo["digest"], json!(echo_digest));
    assert!(
        echo["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("weir:step/log"))
    );

    // Uploads: a component is stored by digest; anything else is refused.
    let bytes = std::fs::read(artifacts::CLEAN_TEXT).unwrap();
    let r = s
        .post("/v1/plugins")
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let uploaded: Value = r.json().await.unwrap();
    assert_eq!(
        uploaded["digest"],
        json!(weir_digest(artifacts::CLEAN_TEXT))
    );
    let r = s
        .post("/v1/plugins")
        .body("not wasm at all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly")
    );

    // Metrics and the OpenAPI document.
    let metrics = s.text("/metrics").await;
    assert!(
        metrics
            .contains("weir_runs_total{workflow=\"echo\",version=\"1.0.0\",status=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_step_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("weir_http_requests_total"), "{metrics}");
    let doc: Value = s
        .client
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/cancel",
        "/v1/runs/{id}/events",
        "/v1/workflows",
        "/v1/plugins",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    s.server.unwrap().shutdown().await.unwrap();
}

fn weir_digest(path: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

// Runs over time: cancellation and event streams, backpressure, binding, hot reload and
// the example workflow.
mod flows;
// The OpenAPI document's precision, and the server holding to it.
mod openapi;
