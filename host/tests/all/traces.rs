//! Traces over OTLP: every span reaches the collector with the run's and step's attributes,
//! and the spans of runs in flight together keep their own parents (an attempt's span is
//! never exported under another run's span).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use serde_json::{Value, json};

use crate::crash::weir;
use crate::serve::workflow_text;
use crate::sidecar::{ready, serve_with_args, sigterm, wait_exit};

/// One OTLP export request: its content type and body.
type Export = (String, Vec<u8>);

/// A collector on a free port that records every request to `/v1/traces`; returns its
/// base URL and what it received.
async fn collector() -> (String, Arc<Mutex<Vec<Export>>>) {
    let received: Arc<Mutex<Vec<Export>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    let kind = headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    received.lock().unwrap().push((kind, body.to_vec()));
                    http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// One exported span, as the collector decoded it.
#[derive(Debug)]
struct Span {
    trace: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    run_id: Option<String>,
}

/// Every span in `exports`, by span id.
fn decode(exports: &[Export]) -> HashMap<Vec<u8>, Span> {
    let mut spans = HashMap::new();
    for (_, body) in exports {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for span in request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
        {
            let run_id =
                span.attributes
                    .iter()
                    .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(v) if kv.key == "run_id" => Some(v.clone()),
                        _ => None,
                    });
            spans.insert(
                span.span_id,
                Span {
                    trace: span.trace_id,
                    parent: span.parent_span_id,
                    name: span.name,
                    run_id,
                },
            );
        }
    }
    spans
}

#[tokio::test]
async fn traces_reach_an_otlp_collector_with_run_and_step_attributes() {
    let (collector, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traced.toml");
    std::fs::write(
        &file,
        workflow_text("traced", &[("greet", weir_artifacts::ECHO, "")], ""),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = tokio::task::spawn_blocking(move || {
        weir(&data)
            .args([
                "--otlp-endpoint",
                &collector,
                "run",
                file.to_str().unwrap(),
                "--input",
                "{\"hi\": 1}",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = result["run"]["id"].as_str().unwrap();

    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "no trace export arrived");
    assert!(
        received
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf")
    );
    let all: Vec<u8> = received.iter().flat_map(|(_, body)| body.clone()).collect();
    let has = |needle: &str| all.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in [
        run_id, "traced", "greet", "run_id", "step_id", "attempt", "weir",
    ] {
        assert!(has(needle), "the exported spans mention {needle:?}");
    }
}

#[tokio::test]
async fn spans_of_concurrent_runs_are_exported_under_their_own_run() {
    const RUNS: usize = 8;
    let (collector, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let steps = [
        ("a", weir_artifacts::ECHO, ""),
        ("b", weir_artifacts::ECHO, ""),
        ("c", weir_artifacts::ECHO, ""),
    ];
    std::fs::write(
        workflows.join("traced.toml"),
        workflow_text("traced", &steps, ""),
    )
    .unwrap();
    let mut cmd = weir(&dir.path().join("data"));
    cmd.args(["--otlp-endpoint", &collector]);
    let (mut child, url) = serve_with_args(cmd, &workflows, "t", &["--workers", "8"]);
    let client = reqwest::Client::new();
    ready(&client, &url).await;
    let mut submitted = tokio::task::JoinSet::new();
    for n in 0..RUNS {
        let (client, url) = (client.clone(), url.clone());
        submitted.spawn(async move {
            let body: Value = client
                .post(format!("{url}/v1/runs?wait=30s"))
                .bearer_auth("t")
                .json(&json!({"workflow": "traced", "input": {"n": n}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["run"]["status"], "succeeded", "{body}");
            body["run"]["id"].as_str().unwrap().to_string()
        });
    }
    let mut runs = Vec::new();
    while let Some(id) = submitted.join_next().await {
        runs.push(id.unwrap());
    }
    // A shutdown exports what is still buffered.
    sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(30)))
            .await
            .unwrap();
    assert_eq!(status.code(), Some(0));

    let spans = decode(&received.lock().unwrap());
    for run in &runs {
        let own: Vec<&Span> = spans
            .values()
            .filter(|s| s.run_id.as_deref() == Some(run.as_str()))
            .collect();
        let runs_spans = own.iter().filter(|s| s.name == "run").count();
        let attempts = own.iter().filter(|s| s.name == "attempt").count();
        assert!(runs_spans >= 1, "run {run} has no exported run span");
        assert!(
            attempts >= steps.len(),
            "run {run}: {attempts} attempt spans for {} steps",
            steps.len()
        );
    }
    // Walk every span of a run up to its root: each ancestor that belongs to a run belongs
    // to the same one, in the same trace, and an attempt always reaches its run's span.
    for span in spans.values() {
        let Some(run) = &span.run_id else { continue };
        let mut reached_run = span.name == "run";
        let mut parent = &span.parent;
        while let Some(up) = spans.get(parent) {
            assert_eq!(
                up.trace, span.trace,
                "a {} span of run {run} left its trace",
                span.name
            );
            if let Some(other) = &up.run_id {
                assert_eq!(
                    other, run,
                    "a {} span of run {run} was exported under a {} span of run {other}",
                    span.name, up.name
                );
            }
            reached_run |= up.name == "run";
            parent = &up.parent;
        }
        assert!(
            reached_run,
            "the {} span of run {run} is not under its run's span",
            span.name
        );
    }
}
