//! The API's edges over real loopback HTTP: every error, whichever layer produced it, in the
//! one JSON error shape with the documented code, and the bearer scheme in any case.

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_artifacts as artifacts;

use crate::serve::{Sidecar, workflow_text};

const TOKEN: &str = "s3cret-token";

/// Checks that `response` is an error in the API's shape with `status` and `code`, and
/// returns its message.
async fn expect_error(response: reqwest::Response, status: StatusCode, code: &str) -> String {
    let what = format!("{} {}", response.status(), response.url());
    assert_eq!(response.status(), status, "{what}");
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: answered in {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!(code), "{what}: {body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_error_answers_in_the_json_shape_with_its_code() {
    let s = Sidecar::start(|config, root| {
        config.max_body = 1024;
        config.max_upload = 2048;
        let echo = workflow_text("echo", &[("only", artifacts::ECHO, "")], "");
        std::fs::write(root.join("workflows/echo.toml"), echo).unwrap();
    })
    .await;

    // Bodies beyond the limits, on routes that read raw bytes as on JSON routes.
    let r = s
        .post("/v1/plugins")
        .header("content-type", "application/wasm")
        .body(vec![0u8; 4096])
        .send()
        .await
        .unwrap();
    let message = expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(message.contains("--max-upload"), "{message}");
    let r = s
        .post("/v1/runs/some-run/cancel")
        .header("content-type", "application/json")
        .body(format!("{{\"reason\": \"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A body of the wrong shape is malformed (400), like bad syntax.
    for body in [
        json!({"workflow": 5, "input": {}}),
        json!({"workflow": "echo", "input": {}, "surprise": true}),
        json!(["workflow", "echo"]),
    ] {
        let r = s.post("/v1/runs").json(&body).send().await.unwrap();
        let message = expect_error(r, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(message.contains("expected fields"), "{body}: {message}");
    }
    let r = s
        .post("/v1/reviews/some-review")
        .json(&json!({"decision": ["approve"]}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "bad_request").await;

    // Query and path rejections, and routing.
    let r = s.get("/v1/runs?limit=many").send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "bad_request").await;
    let r = s.get("/v1/runs/%FF%FE").send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "bad_request").await;
    let r = s
        .client
        .put(format!("{}/v1/runs", s.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // The bearer scheme is case-insensitive (RFC 9110); a 401 names the scheme it wants.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = s
            .client
            .get(format!("{}/v1/runs", s.url))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme:?}");
    }
    for value in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "Bearer ".into(),
    ] {
        let r = s
            .client
            .get(format!("{}/v1/runs", s.url))
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{value:?}");
        expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    s.server.unwrap().shutdown().await.unwrap();
}
