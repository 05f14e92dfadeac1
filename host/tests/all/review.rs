//! Human review: a confidence gate or a `needs-review` step parks the run durably; approve,
//! edit and reject send it on (each an audit record); a timeout applies the default action;
//! all of it survives a restart, and the HTTP queue does the same.

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir::registry;
use weir::runner::{ReviewError, Runner};
use weir::store::{Decided, Decision, ReviewStatus, RunStatus, StepStatus};

use crate::serve::{Sidecar, workflow_text};
use crate::support::host;
use crate::workflows::Fixture;

fn gated(confidence: f64) -> String {
    format!(
        r#"
name = "gated"
version = "1.0.0"
output = "format"
[[steps]]
id = "classify"
plugin = "$PLUGINS/echo.wasm"
config = {{ confidence = {confidence} }}
review = {{ when = "steps.classify.confidence < 0.7" }}
[[steps]]
id = "format"
plugin = "$PLUGINS/echo.wasm"
after = ["classify"]
"#
    )
}

fn by(who: &str) -> Decided {
    Decided {
        by: who.to_string(),
        note: Some("checked by hand".to_string()),
    }
}

/// A fresh runner over the same database: what a restarted process sees.
async fn restarted(f: &Fixture) -> Runner {
    Runner::new(host().clone(), f.reopen().await, f.dir.path().join("locks"))
}

#[tokio::test]
async fn a_confidence_gate_parks_the_run_until_a_person_decides() {
    let f = Fixture::new().await;
    let path = f.workflow("gated.toml", &gated(0.4));

    // Parked: the gate fired after `classify`; `format` has not run.
    let run = f.run(&path, json!({"ticket": 1})).await;
    assert_eq!(run.status, RunStatus::AwaitingReview);
    assert_eq!(
        run.review.as_ref().unwrap()["review"],
        json!("review gate: steps.classify.confidence < 0.7")
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    assert_eq!(steps[1].status, StepStatus::Pending);
    let pending = f
        .store
        .reviews(Some(ReviewStatus::Pending), None)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let review = &pending[0];
    assert_eq!(
        (review.run_id.as_str(), review.step_id.as_str()),
        (run.id.as_str(), "classify")
    );
    assert_eq!(review.data["output"], json!({"ticket": 1}));
    assert_eq!(review.data["confidence"], json!(0.4));
    // Executing a parked run again changes nothing.
    assert_eq!(
        f.runner.execute(&run.id).await.unwrap().status,
        RunStatus::AwaitingReview
    );
    // The parked run's result is in its step's profile, once.
    let rows = crate::monitor::rows(f.store.as_ref(), "gated").await;
    assert_eq!(crate::monitor::results(&rows, "classify"), 1);
    assert_eq!(crate::monitor::results(&rows, "format"), 0);

    // After a restart the review is still there; approving it sends the run on.
    let runner = restarted(&f).await;
    let approved = runner
        .decide(&review.id, Decision::Approve, by("ana"))
        .await
        .unwrap();
    assert_eq!(approved.status, ReviewStatus::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("ana"));
    assert_eq!(approved.before, Some(json!({"ticket": 1})));
    assert_eq!(approved.after, approved.before);
    let done = runner.execute(&run.id).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"ticket": 1})));
    // Parked, sent on and ended: each result counted once.
    let rows = crate::monitor::rows(f.store.as_ref(), "gated").await;
    assert_eq!(crate::monitor::results(&rows, "classify"), 1);
    assert_eq!(crate::monitor::results(&rows, "format"), 1);
    let attempts = runner.store().attempts(&run.id).await.unwrap();
    assert_eq!(
        attempts.iter().filter(|a| a.step_id == "classify").count(),
        1,
        "classify did not run again"
    );
    let kinds: Vec<String> = runner
        .store()
        .events(&run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"review_opened".to_string())
            && kinds.contains(&"review_decided".to_string()),
        "{kinds:?}"
    );

    // A second decision on the same review is refused.
    let again = runner
        .decide(&review.id, Decision::Approve, by("bo"))
        .await
        .unwrap_err();
    assert!(matches!(again, ReviewError::Conflict(_)), "{again}");
    assert!(
        again
            .to_string()
            .contains("already decided: approved by ana"),
        "{again}"
    );

    // High confidence: no review at all.
    let confident = f.workflow("confident.toml", &gated(0.9).replace("gated", "confident"));
    assert_eq!(
        f.run(&confident, json!({"ticket": 2})).await.status,
        RunStatus::Succeeded
    );
}

#[tokio::test]
async fn edit_replaces_the_output_and_reject_fails_the_run() {
    let f = Fixture::new().await;
    let path = f.workflow("gated.toml", &gated(0.2));

    let run = f.run(&path, json!({"ticket": 3})).await;
    let review = f.pending_review(&run.id).await;
    let edited = f
        .runner
        .decide(
            &review.id,
            Decision::Edit(json!({"label": "billing"})),
            by("ana"),
        )
        .await
        .unwrap();
    assert_eq!(edited.status, ReviewStatus::Edited);
    assert_eq!(edited.before, Some(json!({"ticket": 3})));
    assert_eq!(edited.after, Some(json!({"label": "billing"})));
    let done = f.runner.execute(&run.id).await.unwrap();
    assert_eq!(
        done.output,
        Some(json!({"label": "billing"})),
        "the next step saw the edited output"
    );

    let run = f.run(&path, json!({"ticket": 4})).await;
    let review = f.pending_review(&run.id).await;
    f.runner
        .decide(
            &review.id,
            Decision::Reject("not a ticket".into()),
            by("bo"),
        )
        .await
        .unwrap();
    let failed = f.runner.execute(&run.id).await.unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    let failure = &failed.failure.unwrap()["failure"];
    assert_eq!(failure["kind"], json!("review_rejected"));
    assert_eq!(failure["message"], json!("rejected by bo: not a ticket"));
    let steps = f.store.steps(&run.id).await.unwrap();
    assert_eq!(steps[1].status, StepStatus::Pending, "format never ran");
}

#[tokio::test]
async fn a_needs_review_step_takes_an_edited_output_and_its_schema_is_checked() {
    let f = Fixture::new().await;
    let text = r#"
name = "asks"
version = "1.0.0"
output = "after"
[[steps]]
id = "ask"
plugin = "$PLUGINS/echo.wasm"
config = { fail = "needs-review" }
[[steps]]
id = "after"
plugin = "$PLUGINS/echo.wasm"
after = ["ask"]
"#;
    let path = f.workflow("asks.toml", text);
    let run = f.run(&path, json!({"q": "?"})).await;
    assert_eq!(run.status, RunStatus::AwaitingReview);
    let review = f.pending_review(&run.id).await;
    assert_eq!(
        review.reason,
        "needs review: asked to fail with needs-review"
    );
    assert_eq!(review.data["input"], json!({"q": "?"}));

    // Nothing to approve: the step produced no output.
    let err = f
        .runner
        .decide(&review.id, Decision::Approve, by("ana"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing to approve"), "{err}");
    // echo's output schema refuses one sentinel value: an edit is checked against it.
    let err = f
        .runner
        .decide(
            &review.id,
            Decision::Edit(json!("violate-output-schema")),
            by("ana"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::InvalidOutput { .. }), "{err}");
    f.runner
        .decide(&review.id, Decision::Edit(json!({"a": "!"})), by("ana"))
        .await
        .unwrap();
    let done = f.runner.execute(&run.id).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"a": "!"})));
}

#[tokio::test]
async fn a_review_timeout_applies_the_default_action() {
    let f = Fixture::new().await;
    let text = gated(0.1).replace(
        r#"review = { when = "steps.classify.confidence < 0.7" }"#,
        r#"review = { when = "steps.classify.confidence < 0.7", timeout = "100ms", default = "reject" }"#,
    );
    let path = f.workflow("gated.toml", &text);
    let run = f.run(&path, json!({"ticket": 5})).await;
    assert_eq!(run.status, RunStatus::AwaitingReview);
    assert!(
        f.runner.expire_reviews().await.unwrap().is_empty(),
        "not yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let decided = restarted(&f).await.expire_reviews().await.unwrap();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].status, ReviewStatus::Rejected);
    assert_eq!(decided[0].decided_by.as_deref(), Some("timeout"));
    let run = f.store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);

    // A bad policy is refused with its position.
    let bad = gated(0.1).replace(
        r#"review = { when = "steps.classify.confidence < 0.7" }"#,
        r#"review = { when = "steps.nope.confidence < 0.7", default = "maybe" }"#,
    );
    let err = registry::register_file(host(), f.store.as_ref(), &f.workflow("bad.toml", &bad))
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "`review.when` names step `nope`, which does not exist",
        "`review.default` is \"maybe\"",
        "`review.timeout` and `review.default` go together",
    ] {
        assert!(err.contains(expected), "{expected:?} in:\n{err}");
    }
}

#[tokio::test]
async fn the_review_queue_over_http() {
    let s = Sidecar::start(|_, root| {
        let text = workflow_text(
            "gated",
            &[
                ("classify", weir_artifacts::ECHO, "config = { confidence = 0.3 }\nreview = { when = \"steps.classify.confidence < 0.7\" }"),
                ("format", weir_artifacts::ECHO, ""),
            ],
            "",
        );
        std::fs::write(root.join("workflows/gated.toml"), text).unwrap();
    })
    .await;
    let (_, body) = s
        .submit("?wait", json!({"workflow": "gated", "input": {"t": 1}}))
        .await;
    assert_eq!(body["run"]["status"], json!("awaiting_review"));
    let run_id = body["run"]["id"].as_str().unwrap().to_string();
    let list: Value = s.json("/v1/reviews").await;
    let review = list["reviews"][0]["id"].as_str().unwrap().to_string();
    let one: Value = s.json(&format!("/v1/reviews/{review}")).await;
    assert_eq!(one["run_id"], json!(run_id));

    let bad = s
        .post(&format!("/v1/reviews/{review}"))
        .json(&json!({"decision": "edit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let r = s
        .post(&format!("/v1/reviews/{review}"))
        .json(&json!({"decision": "edit", "output": {"label": "ok"}, "by": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["status"], json!("edited"));
    assert_eq!(decided["decided_by"], json!("ana"));
    let again = s
        .post(&format!("/v1/reviews/{review}"))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let missing = s.get("/v1/reviews/none").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The decision sent the run on.
    let mut status = Value::Null;
    for _ in 0..200 {
        let detail: Value = s.json(&format!("/v1/runs/{run_id}")).await;
        status = detail["run"]["status"].clone();
        if status == json!("succeeded") {
            assert_eq!(detail["run"]["output"], json!({"label": "ok"}));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, json!("succeeded"));
    s.server.unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_parked_run_closes_its_review_and_a_closed_review_is_not_decided() {
    let f = Fixture::new().await;
    let path = f.workflow("gated.toml", &gated(0.4));
    let run = f.run(&path, json!({"ticket": 6})).await;
    assert_eq!(run.status, RunStatus::AwaitingReview);
    // What it waits for is no failure.
    assert_eq!(run.failure, None);
    assert_eq!(run.review.as_ref().unwrap()["step"], json!("classify"));
    let review = f.pending_review(&run.id).await;

    f.runner.cancel(&run.id, "duplicate ticket").await.unwrap();
    let closed = f.store.get_review(&review.id).await.unwrap().unwrap();
    assert_eq!(closed.status, ReviewStatus::Closed);
    assert_eq!(
        closed.note.as_deref(),
        Some("its run was cancelled without a decision (duplicate ticket)")
    );
    assert!(
        f.store
            .reviews(Some(ReviewStatus::Pending), None)
            .await
            .unwrap()
            .is_empty()
    );
    let kinds: Vec<String> = f
        .store
        .events(&run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"review_closed".to_string()), "{kinds:?}");
    let err = f
        .runner
        .decide(&review.id, Decision::Approve, by("ana"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Conflict(_)), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "review {} is closed: its run was cancelled",
            review.id
        )),
        "{err}"
    );
    let run = f.store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);

    // An approved run that then succeeds carries no failure either.
    let run = f.run(&path, json!({"ticket": 7})).await;
    let review = f.pending_review(&run.id).await;
    f.runner
        .decide(&review.id, Decision::Approve, by("ana"))
        .await
        .unwrap();
    let done = f.runner.execute(&run.id).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!((done.failure, done.review), (None, None));
}

#[tokio::test]
async fn the_cli_says_what_a_parked_run_waits_for_and_refuses_a_closed_review() {
    let f = Fixture::new().await;
    let path = f.workflow("gated.toml", &gated(0.4));
    let weir = |args: &[&str]| {
        crate::crash::weir(f.dir.path())
            .args(f.backend.cli_args())
            .args(args)
            .output()
            .unwrap()
    };
    let out = weir(&["run", path.to_str().unwrap(), "--input", r#"{"t": 1}"#]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "awaits review at step `classify`: review gate: steps.classify.confidence < 0.7"
        ) && err.contains("weir review approve <review-id>"),
        "{err}"
    );
    assert!(!err.contains("null") && !err.contains("(?)"), "{err}");
    let run = f
        .store
        .list_runs(&Default::default())
        .await
        .unwrap()
        .remove(0);
    let shown = weir(&["runs", "show", &run.id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("awaits review at step `classify`"), "{text}");

    let review = f
        .store
        .reviews(None, Some(&run.id))
        .await
        .unwrap()
        .remove(0);
    f.runner.cancel(&run.id, "not needed").await.unwrap();
    let out = weir(&["review", "approve", &review.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error: review {} is closed: its run was cancelled without a decision (not needed)",
            review.id
        )),
        "{err}"
    );
}

/// The journal lists runs by every filter the dashboard offers, on both backends: version,
/// creation time, a route any step took, with or without a review, run id or idempotency
/// key, and what its model calls cost.
#[tokio::test]
async fn runs_are_listed_by_every_filter() {
    use weir::store::{ModelCallRecord, RunFilter};

    let f = Fixture::new().await;
    let routed = f.workflow(
        "routed.toml",
        "name = \"routed\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"pick\"\nplugin = \"$PLUGINS/echo.wasm\"\nconfig = { route = \"billing\" }\n",
    );
    let parked = f.workflow(
        "parked.toml",
        "name = \"parked\"\nversion = \"2.0.0\"\n[[steps]]\nid = \"ask\"\nplugin = \"$PLUGINS/echo.wasm\"\nreview = { when = \"true\" }\n",
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &routed)
        .await
        .unwrap();
    let (keyed, _) = f
        .runner
        .submit(&loaded, json!({"n": 1}), Some("key-7".into()))
        .await
        .unwrap();
    let keyed = f.runner.execute(&keyed.id).await.unwrap();
    let plain = f.run(&routed, json!({"n": 2})).await;
    let waiting = f.run(&parked, json!({"n": 3})).await;
    assert_eq!(waiting.status, RunStatus::AwaitingReview);
    f.store
        .record_model_call(
            ModelCallRecord {
                run_id: plain.id.clone(),
                step_id: "pick".into(),
                attempt: 1,
                seq: 0,
                workflow: "routed".into(),
                version: "1.0.0".into(),
                alias: "smart".into(),
                provider: None,
                model: None,
                prompt_id: None,
                prompt_hash: None,
                request: json!({}),
                response: None,
                outcome: "ok".into(),
                error: None,
                prompt_tokens: 1,
                completion_tokens: 1,
                cost_micros: 500,
                latency_us: 1,
                upstream_attempts: 1,
                at_ms: plain.created_ms,
            },
            None,
        )
        .await
        .unwrap();

    let ids = |filter: RunFilter| {
        let store = f.store.clone();
        async move {
            let mut ids: Vec<String> = store
                .list_runs(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    let routed_runs = sorted(vec![&keyed.id, &plain.id]);
    let hour = 3_600_000;
    let cases: Vec<(RunFilter, Vec<String>)> = vec![
        (
            RunFilter {
                route: Some("billing".into()),
                ..Default::default()
            },
            routed_runs.clone(),
        ),
        (
            RunFilter {
                route: Some("shipping".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            RunFilter {
                has_review: Some(true),
                ..Default::default()
            },
            vec![waiting.id.clone()],
        ),
        (
            RunFilter {
                has_review: Some(false),
                ..Default::default()
            },
            routed_runs.clone(),
        ),
        (
            RunFilter {
                id_or_key: Some("key-7".into()),
                ..Default::default()
            },
            vec![keyed.id.clone()],
        ),
        (
            RunFilter {
                id_or_key: Some(waiting.id.clone()),
                ..Default::default()
            },
            vec![waiting.id.clone()],
        ),
        (
            RunFilter {
                version: Some("2.0.0".into()),
                ..Default::default()
            },
            vec![waiting.id.clone()],
        ),
        (
            RunFilter {
                workflow: Some("routed".into()),
                version: Some("2.0.0".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            RunFilter {
                since_ms: Some(keyed.created_ms - hour),
                ..Default::default()
            },
            sorted(vec![&keyed.id, &plain.id, &waiting.id]),
        ),
        (
            RunFilter {
                since_ms: Some(waiting.created_ms + hour),
                ..Default::default()
            },
            vec![],
        ),
        (
            RunFilter {
                until_ms: Some(keyed.created_ms),
                ..Default::default()
            },
            vec![],
        ),
        (
            RunFilter {
                min_cost_micros: Some(500),
                ..Default::default()
            },
            vec![plain.id.clone()],
        ),
        (
            RunFilter {
                min_cost_micros: Some(501),
                ..Default::default()
            },
            vec![],
        ),
        (
            RunFilter {
                route: Some("billing".into()),
                min_cost_micros: Some(0),
                has_review: Some(false),
                ..Default::default()
            },
            routed_runs.clone(),
        ),
    ];
    for (filter, expected) in cases {
        let described = format!("{filter:?}");
        assert_eq!(ids(filter).await, expected, "{described}");
    }
}
