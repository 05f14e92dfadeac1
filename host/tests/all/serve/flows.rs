//! `weir serve` over time: cancelling a run mid-step and its server-sent events in order,
//! 429 from a full queue, the token a non-loopback address needs, hot reload under load,
//! and the ticket-triage example over HTTP.

use super::*;

#[tokio::test]
async fn cancel_stops_a_run_and_events_stream_in_order() {
    let s = api_sidecar().await;

    // Events of a finished run: the whole log in order, then `done`.
    let (_, body) = s
        .submit("?wait", json!({"workflow": "echo", "input": {}}))
        .await;
    let id = body["run"]["id"].as_str().unwrap();
    let kinds = sse_kinds(&s, id).await;
    assert_eq!(
        kinds,
        [
            "run_created",
            "run_running",
            "step_started",
            "step_succeeded",
            "run_succeeded",
            "done"
        ]
    );

    // Cancel a slow run mid-step: it ends cancelled and its second step never starts.
    let (status, body) = s.submit("", json!({"workflow": "slow", "input": {}})).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["run"]["id"].as_str().unwrap().to_string();
    let follower = {
        let s_url = s.url.clone();
        let id = id.clone();
        tokio::spawn(async move { sse_kinds_at(&s_url, &id).await })
    };
    wait_for_event(&s, &id, "step_started").await;
    let r = s
        .post(&format!("/v1/runs/{id}/cancel"))
        .json(&json!({"reason": "changed my mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], json!("cancelled"));
    assert_eq!(cancelled["failure"]["reason"], json!("changed my mind"));
    let r = s
        .post(&format!("/v1/runs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = s.post("/v1/runs/nope/cancel").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let kinds = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kinds,
        [
            "run_created",
            "run_running",
            "step_started",
            "run_cancelled",
            "done"
        ]
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let detail: Value = s.json(&format!("/v1/runs/{id}")).await;
    assert_eq!(detail["run"]["status"], json!("cancelled"));
    assert_eq!(
        detail["steps"][1]["status"],
        json!("pending"),
        "the second step never started"
    );
    s.server.unwrap().shutdown().await.unwrap();
}

async fn wait_for_event(s: &Sidecar, id: &str, kind: &str) {
    for _ in 0..400 {
        let detail: Value = s.json(&format!("/v1/runs/{id}")).await;
        if detail["attempts"].as_array().is_some_and(|a| !a.is_empty()) && kind == "step_started" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {kind} for run {id}");
}

async fn sse_kinds(s: &Sidecar, id: &str) -> Vec<String> {
    sse_kinds_at(&s.url, id).await
}

/// Reads a run's event stream to its end and returns the event kinds.
async fn sse_kinds_at(url: &str, id: &str) -> Vec<String> {
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/runs/{id}/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let s = Sidecar::start(|config, root| {
        config.workers = 1;
        config.queue = 1;
        let slow = workflow_text(
            "slow",
            &[("only", artifacts::ECHO, "config = { sleep_ms = 1000 }")],
            "",
        );
        std::fs::write(root.join("workflows/slow.toml"), slow).unwrap();
    })
    .await;
    let body = json!({"workflow": "slow", "input": {}});
    assert_eq!(s.submit("", body.clone()).await.0, StatusCode::CREATED);
    assert_eq!(s.submit("", body.clone()).await.0, StatusCode::CREATED);
    let r = s.post("/v1/runs").json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_code(&r.json::<Value>().await.unwrap()), "overloaded");
    let runs: Value = s.json("/v1/runs").await;
    assert_eq!(
        runs["runs"].as_array().unwrap().len(),
        2,
        "the refused submission created nothing"
    );
    s.server.unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_loopback_address_needs_a_token() {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &tempfile::tempdir().unwrap().keep().join("weir.db"),
            Durability::Normal,
        )
        .unwrap(),
    );
    let runner = Runner::new(
        host().clone(),
        store,
        std::env::temp_dir().join("weir-locks-bind"),
    );
    let config = ServeConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    let err = Server::start(host().clone(), runner, config)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("refusing to listen on 0.0.0.0:0 without an auth token"),
        "{err}"
    );
}

#[tokio::test]
async fn hot_reload_under_load_swaps_plugins_without_failing_a_run() {
    let s = Sidecar::start(|config, root| {
        config.workers = 4;
        std::fs::copy(artifacts::ECHO, root.join("plugins/step.wasm")).unwrap();
        let work = root.join("plugins/step.wasm");
        let text = workflow_text(
            "swap",
            &[
                ("hold", artifacts::ECHO, "config = { sleep_ms = 150 }"),
                ("work", work.to_str().unwrap(), ""),
            ],
            "",
        );
        std::fs::write(root.join("workflows/swap.toml"), text).unwrap();
    })
    .await;
    let s = Arc::new(s);
    let (echo, clean) = (
        weir_digest(artifacts::ECHO),
        weir_digest(artifacts::CLEAN_TEXT),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapped_at: Arc<std::sync::Mutex<Option<std::time::Instant>>> = Arc::default();

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..4 {
        let (s, stop, swapped_at) = (s.clone(), stop.clone(), swapped_at.clone());
        clients.spawn(async move {
            let mut seen = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let sent = std::time::Instant::now();
                let before_swap = swapped_at.lock().unwrap().is_none_or(|at| sent < at);
                let input = json!({"subject": format!("client {client} run {n}: mail a@b.io")});
                let (status, body) = s
                    .submit("?wait=30s", json!({"workflow": "swap", "input": input}))
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let id = body["run"]["id"].as_str().unwrap();
                let detail: Value = s.json(&format!("/v1/runs/{id}")).await;
                seen.push((
                    before_swap,
                    body["run"]["status"].clone(),
                    detail["steps"][1]["plugin_digest"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    body["run"]["output"].clone(),
                    input,
                ));
            }
            seen
        });
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    *swapped_at.lock().unwrap() = Some(std::time::Instant::now());
    std::fs::copy(artifacts::CLEAN_TEXT, s.path("plugins/step.wasm")).unwrap();
    let swapped = until(Duration::from_secs(30), || {
        let (s, clean) = (s.clone(), clean.clone());
        async move {
            let w: Value = s.json("/v1/workflows").await;
            w["workflows"][0]["steps"][1]["digest"] == json!(clean)
        }
    })
    .await;
    assert!(swapped, "the new plugin was never swapped in");
    tokio::time::sleep(Duration::from_millis(600)).await;

    // A broken plugin: rejected, the previous version keeps serving.
    std::fs::write(s.path("plugins/step.wasm"), b"\0asm broken").unwrap();
    let rejected = until(Duration::from_secs(30), || {
        let s = s.clone();
        async move {
            let w: Value = s.json("/v1/workflows").await;
            w["rejected"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["file"].as_str().unwrap().ends_with("step.wasm"))
            })
        }
    })
    .await;
    assert!(rejected, "the broken plugin was not reported");
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut total = 0;
    let mut after_broken = 0;
    while let Some(seen) = clients.join_next().await {
        let seen = seen.unwrap();
        let mut saw_new = false;
        for (before_swap, status, digest, output, input) in seen {
            total += 1;
            assert_eq!(status, json!("succeeded"), "no run fails during a reload");
            if before_swap {
                assert_eq!(
                    digest, echo,
                    "a run submitted before the swap keeps the old bytes"
                );
            }
            if digest == clean {
                saw_new = true;
                after_broken += 1;
                let redacted = input["subject"]
                    .as_str()
                    .unwrap()
                    .replace("a@b.io", "[EMAIL]");
                assert_eq!(output["subject"], json!(redacted), "clean-text ran");
            } else {
                assert_eq!(digest, echo);
                assert!(
                    !saw_new,
                    "once swapped, a client never gets the old version again"
                );
                assert_eq!(output, input, "echo ran");
            }
        }
    }
    assert!(total >= 8, "the clients kept submitting ({total} runs)");
    assert!(after_broken >= 1, "runs used the new version");
    let metrics = s.text("/metrics").await;
    assert!(
        metrics.contains("weir_reload_failures_total{kind=\"plugin\"}"),
        "{metrics}"
    );
    let mut s = Arc::into_inner(s).expect("the clients are done");
    s.server.take().unwrap().shutdown().await.unwrap();
}

/// Polls `check` until it holds or `limit` passes.
async fn until<F, Fut>(limit: Duration, check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn the_triage_example_runs_over_http() {
    let s = Sidecar::start(|_, root| {
        let text =
            crate::workflows::shipped_triage(&crate::workflows::plugin_dir().display().to_string());
        std::fs::write(root.join("workflows/triage.toml"), text).unwrap();
        crate::workflows::copy_prompts(&root.join("workflows/prompts"));
    })
    .await;
    let tickets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/tickets");
    for (file, queue) in [
        ("refund.json", "billing"),
        ("outage.json", "technical"),
        ("parcel.json", "shipping"),
    ] {
        let input: Value =
            serde_json::from_str(&std::fs::read_to_string(tickets.join(file)).unwrap()).unwrap();
        let (status, body) = s
            .submit(
                "?wait=30s",
                json!({"workflow": "ticket-triage", "input": input}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["run"]["status"], json!("succeeded"), "{file}: {body}");
        assert_eq!(body["run"]["output"]["queue"], json!(queue), "{file}");
    }
    // A ticket of the wrong shape is refused before any step runs, naming the path.
    let (status, body) = s
        .submit(
            "",
            json!({"workflow": "ticket-triage", "input": {"subject": 7, "body": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["details"]["violations"][0]
            .as_str()
            .unwrap()
            .starts_with("at /subject:"),
        "{body}"
    );
    s.server.unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_replays_over_http_and_an_unknown_one_is_404() {
    let s = api_sidecar().await;
    let (_, body) = s
        .submit(
            "?wait",
            json!({"workflow": "echo", "input": {"replay": "me"}}),
        )
        .await;
    let id = body["run"]["id"].as_str().unwrap();
    let r = s
        .post(&format!("/v1/runs/{id}/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        (report["mode"].as_str(), report["identical"].as_bool()),
        (Some("strict"), Some(true))
    );
    assert_eq!(report["output"], json!({"replay": "me"}));
    // A `null` body, as the optional body's schema allows, is a strict replay too.
    let r = s
        .post(&format!("/v1/runs/{id}/replay"))
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["mode"], "strict", "{report}");
    // The replay is no run of the journal's.
    let runs = s.json("/v1/runs?workflow=echo").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    let r = s.post("/v1/runs/nope/replay").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&r.json().await.unwrap()), "not_found");

    // A candidate replay: another stored plugin for the step, answered in a scratch journal.
    let r = s
        .post("/v1/plugins")
        .header("content-type", "application/wasm")
        .body(std::fs::read(artifacts::CLEAN_TEXT).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let digest = r.json::<Value>().await.unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let replay = |body: Value| {
        let request = s.post(&format!("/v1/runs/{id}/replay")).json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, report) = replay(json!({"steps": {"only": format!("sha256:{digest}")}})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["mode"], "candidate", "{report}");
    assert_eq!(report["identical"], false, "{report}");
    let (status, report) = replay(json!({"candidate": "echo@1.0.0"})).await;
    assert_eq!(
        (status, &report["identical"]),
        (StatusCode::OK, &json!(true)),
        "{report}"
    );
    let runs = s.json("/v1/runs?workflow=echo").await;
    assert_eq!(
        runs["runs"].as_array().unwrap().len(),
        1,
        "no replay is a run"
    );

    // A rerun from the step on another input: a new run in the journal.
    let (status, rerun) = replay(json!({"from_step": "only", "input": {"fixed": true}})).await;
    assert_eq!(status, StatusCode::CREATED, "{rerun}");
    assert_ne!(rerun["id"].as_str(), Some(id));
    assert_eq!(rerun["source_run"].as_str(), Some(id), "{rerun}");
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    assert_eq!(rerun["output"], json!({"fixed": true}));
    let runs = s.json("/v1/runs?workflow=echo").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);

    // What the API cannot take, each named.
    for (body, want, says) in [
        (
            json!({"steps": {"only": "/etc/passwd"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "sha256:<digest>",
        ),
        (
            json!({"steps": {"nope": format!("sha256:{digest}")}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "has no step `nope`",
        ),
        (
            json!({"steps": {"only": format!("sha256:{}", "0".repeat(64))}}),
            StatusCode::NOT_FOUND,
            "no plugin sha256:000",
        ),
        (
            json!({"candidate": "echo@9.9.9"}),
            StatusCode::NOT_FOUND,
            "no workflow echo@9.9.9",
        ),
        (
            json!({"candidate": "echo"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name@version",
        ),
        (
            json!({"input": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "goes with `from_step`",
        ),
        (
            json!({"input": null}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "goes with `from_step`",
        ),
        (
            json!({"from_step": "only", "candidate": "echo@1.0.0"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "takes no",
        ),
        (
            json!({"from_step": "nope"}),
            StatusCode::CONFLICT,
            "no such step",
        ),
        (
            json!({"steps": {}, "budget_usd": -1.0, "candidate": "echo@1.0.0"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`budget_usd` is -1",
        ),
        (
            json!({"candidate": "echo@1.0.0", "on_miss": "live", "budget_usd": 5.0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "allows a replay at most $1",
        ),
        (
            json!({"on_miss": "live"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "go with a candidate",
        ),
        (
            json!({"from_step": "only", "budget_usd": 2.0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "takes no",
        ),
        (
            json!({"bogus": 1}),
            StatusCode::BAD_REQUEST,
            "not a replay request",
        ),
    ] {
        let (status, error) = replay(body.clone()).await;
        assert_eq!(status, want, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
}
