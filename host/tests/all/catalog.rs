//! The sidecar's catalog (on the configured journal backend): a workflow whose file leaves `--workflows` is retired (new runs
//! refused, naming the retirement; runs already started finish; its file back offers it
//! again), and a second, different component under a registered `name@version` is refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_artifacts as artifacts;

use crate::backend::TestStore;
use crate::serve::{Sidecar, workflow_text};

/// Waits until `GET /v1/workflows` satisfies `check`.
async fn until_workflows(s: &Sidecar, check: impl Fn(&Value) -> bool) {
    for _ in 0..600 {
        if check(&s.json("/v1/workflows").await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the catalog never changed as expected");
}

fn offers(workflows: &Value, name: &str) -> bool {
    workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["name"] == name)
}

#[tokio::test]
async fn a_removed_workflow_file_retires_its_version() {
    let slow = workflow_text(
        "slow",
        &[("only", artifacts::ECHO, "config = { sleep_ms = 1500 }")],
        "",
    );
    let backend = TestStore::new();
    let s = Sidecar::start_on(&backend, |_, root| {
        std::fs::write(root.join("workflows/slow.toml"), &slow).unwrap();
    })
    .await;
    let (status, started) = s
        .submit("", json!({"workflow": "slow", "input": {"n": 1}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["run"]["id"].as_str().unwrap().to_string();

    std::fs::remove_file(s.path("workflows/slow.toml")).unwrap();
    until_workflows(&s, |w| !offers(w, "slow")).await;
    for body in [
        json!({"workflow": "slow", "input": {}}),
        json!({"workflow": "slow", "version": "1.0.0", "input": {}}),
    ] {
        let (status, refused) = s.submit("", body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], json!("conflict"));
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("slow@1.0.0 is retired") && message.contains("file was removed"),
            "{message}"
        );
    }

    // The run started before the retirement finishes.
    let mut finished = Value::Null;
    for _ in 0..400 {
        finished = s.json(&format!("/v1/runs/{id}")).await;
        if finished["run"]["status"] == json!("succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(finished["run"]["status"], json!("succeeded"), "{finished}");

    // Its file back: offered again.
    std::fs::write(s.path("workflows/slow.toml"), &slow).unwrap();
    until_workflows(&s, |w| offers(w, "slow")).await;
    let (status, body) = s
        .submit("", json!({"workflow": "slow", "input": {"n": 2}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.server.unwrap().shutdown().await.unwrap();
}

/// The echo component with a custom section appended: valid, the same `echo@1.0.0`, other
/// bytes.
fn another_echo() -> Vec<u8> {
    let mut bytes = std::fs::read(artifacts::ECHO).unwrap();
    // Custom section (id 0), 5 bytes: a name of 4 bytes, no payload.
    bytes.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
    bytes
}

#[tokio::test]
async fn a_second_component_under_one_name_and_version_is_refused() {
    let backend = TestStore::new();
    let s = Sidecar::start_on(&backend, |_, root| {
        let echo = workflow_text("echo", &[("only", artifacts::ECHO, "")], "");
        std::fs::write(root.join("workflows/echo.toml"), echo).unwrap();
    })
    .await;
    // The registered component again: fine (content-addressed, idempotent).
    let r = s
        .post("/v1/plugins")
        .header("content-type", "application/wasm")
        .body(std::fs::read(artifacts::ECHO).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Other bytes under echo@1.0.0: refused, by upload and in the plugins directory.
    let r = s
        .post("/v1/plugins")
        .header("content-type", "application/wasm")
        .body(another_echo())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("echo@1.0.0 is already registered") && message.contains("new version"),
        "{message}"
    );
    std::fs::write(s.path("plugins/echo-again.wasm"), another_echo()).unwrap();
    until_workflows(&s, |w| {
        w["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["file"].as_str().unwrap().ends_with("echo-again.wasm"))
    })
    .await;
    let plugins: Value = s.json("/v1/plugins").await;
    let echoes = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "echo")
        .count();
    assert_eq!(echoes, 1, "{plugins}");
    s.server.unwrap().shutdown().await.unwrap();
}
