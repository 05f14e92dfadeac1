//! Idempotency keys on either backend: a key brings back its run only for the same workflow
//! version and input; any other use is a conflict that names the run, and an empty key is
//! refused before anything is created.

use serde_json::json;
use weir::registry::{self, Loaded};
use weir::runner::SubmitError;
use weir::store::{IdempotencyError, RunFilter};

use super::Fixture;
use crate::support::host;

/// A one-step workflow `name@version`.
fn one_step(name: &str, version: &str) -> String {
    format!(
        "name = \"{name}\"\nversion = \"{version}\"\n[[steps]]\nid = \"only\"\nplugin = \"$PLUGINS/echo.wasm\"\n"
    )
}

async fn register(f: &Fixture, name: &str, version: &str) -> Loaded {
    let path = f.workflow(&format!("{name}-{version}.toml"), &one_step(name, version));
    registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_run() {
    let f = Fixture::new().await;
    let loaded = register(&f, "pair", "1.0.0").await;
    let (first, created) = f
        .runner
        .submit(&loaded, json!({"n": 1}), Some("order-7".into()))
        .await
        .unwrap();
    assert!(created);
    let (again, created) = f
        .runner
        .submit(&loaded, json!({"n": 1}), Some("order-7".into()))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id);
    let err = f
        .runner
        .submit(&loaded, json!({"n": 2}), Some("order-7".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "idempotency key \"order-7\" was already used for run {} with a different input",
            first.id
        )
    );
}

#[tokio::test]
async fn a_key_used_for_another_workflow_or_version_is_a_conflict_naming_its_run() {
    let f = Fixture::new().await;
    let chain = register(&f, "chain5", "1.0.0").await;
    let newer = register(&f, "chain5", "1.1.0").await;
    let other = register(&f, "other", "1.0.0").await;
    let input = json!({"ticket": 4711});
    let (first, created) = f
        .runner
        .submit(&chain, input.clone(), Some("K".into()))
        .await
        .unwrap();
    assert!(created);

    let expected = IdempotencyError::OtherWorkflow {
        key: "K".into(),
        run_id: first.id.clone(),
        workflow: "chain5".into(),
        version: "1.0.0".into(),
    };
    for loaded in [&newer, &other] {
        let wf = loaded.workflow.id();
        // Submitted (the sidecar's way) and submitted with its first steps started in the
        // same commit (the CLI's way): both refuse, neither hands back chain5's run.
        match f
            .runner
            .submit(loaded, input.clone(), Some("K".into()))
            .await
        {
            Err(SubmitError::Idempotency(e)) => assert_eq!(e, expected, "{wf}"),
            other => panic!("{wf}: expected a conflict, got {other:?}"),
        }
        match f
            .runner
            .submit_and_execute(loaded, input.clone(), Some("K".into()), |_, _| {})
            .await
        {
            Err(SubmitError::Idempotency(e)) => assert_eq!(e, expected, "{wf}"),
            other => panic!("{wf}: expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(
        expected.to_string(),
        format!(
            "idempotency key \"K\" was already used for run {} of chain5@1.0.0; a key names one run of one workflow version",
            first.id
        )
    );
    let runs = f.store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "no run was created for the conflicting keys");
}

#[tokio::test]
async fn an_empty_idempotency_key_is_refused_and_creates_nothing() {
    let f = Fixture::new().await;
    let loaded = register(&f, "pair", "1.0.0").await;
    for _ in 0..2 {
        match f
            .runner
            .submit(&loaded, json!({"n": 1}), Some(String::new()))
            .await
        {
            Err(SubmitError::Idempotency(IdempotencyError::Empty)) => {}
            other => panic!("expected the empty key refused, got {other:?}"),
        }
        match f
            .runner
            .submit_and_execute(&loaded, json!({"n": 1}), Some(String::new()), |_, _| {})
            .await
        {
            Err(SubmitError::Idempotency(IdempotencyError::Empty)) => {}
            other => panic!("expected the empty key refused, got {other:?}"),
        }
    }
    // The store refuses it too, whoever calls it.
    let new = weir::store::NewRun {
        id: None,
        workflow: "pair".into(),
        version: "1.0.0".into(),
        input: json!({}),
        idempotency_key: Some(String::new()),
        steps: vec![("only".into(), loaded.pins["only"].clone())],
        redacted: Vec::new(),
        source_run: None,
    };
    let err = f.store.create_run(new).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<IdempotencyError>(),
        Some(&IdempotencyError::Empty)
    );
    let runs = f.store.list_runs(&RunFilter::default()).await.unwrap();
    assert!(runs.is_empty(), "{runs:?}");
}
