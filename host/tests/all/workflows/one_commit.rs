//! `Runner::submit_and_execute`: a run's creation and the start of its first steps are one
//! commit, and the journal it leaves is the one `submit` then `execute` leaves.

use std::sync::{Arc, Mutex};

use serde_json::json;
use weir::registry;
use weir::store::{Advance, NewRun, RunFilter, RunStatus};

use super::{Fixture, TWO_STEPS, lock_files};
use crate::support::host;

type Announced = Arc<Mutex<Vec<(String, RunStatus, bool)>>>;

/// A `created` callback that records what it was told.
fn recorder() -> (Announced, impl FnOnce(&weir::store::RunRecord, bool) + Send) {
    let seen = Announced::default();
    let sink = seen.clone();
    (seen, move |run: &weir::store::RunRecord, created: bool| {
        sink.lock()
            .unwrap()
            .push((run.id.clone(), run.status, created));
    })
}

async fn event_kinds(f: &Fixture, run_id: &str) -> Vec<String> {
    f.store
        .events(run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn a_submitted_and_executed_run_is_journaled_like_one_submitted_then_executed() {
    let f = Fixture::new().await;
    let path = f.workflow("pair.toml", TWO_STEPS);
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let apart = f.run(&path, json!({"n": 7})).await;
    let (announced, created) = recorder();
    let together = f
        .runner
        .submit_and_execute(&loaded, json!({"n": 7}), None, created)
        .await
        .unwrap();

    assert_eq!(together.status, RunStatus::Succeeded);
    assert_eq!(together.output, apart.output);
    assert_eq!(
        event_kinds(&f, &together.id).await,
        event_kinds(&f, &apart.id).await
    );
    let steps = |id: String| {
        let store = f.store.clone();
        async move {
            let steps = store.steps(&id).await.unwrap();
            steps
                .into_iter()
                .map(|s| (s.step_id, s.status, s.attempts, s.output))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        steps(together.id.clone()).await,
        steps(apart.id.clone()).await
    );
    // Told once, with the run as the commit left it: already running its first step.
    assert_eq!(
        *announced.lock().unwrap(),
        [(together.id.clone(), RunStatus::Running, true)]
    );
    assert_eq!(lock_files(f.dir.path()), ["runs.lock"]);
}

#[tokio::test]
async fn a_run_is_not_created_when_its_first_advance_fails() {
    let f = Fixture::new().await;
    let id = uuid::Uuid::now_v7().to_string();
    let mut first = Advance::new("ignored");
    first.started = vec![("no-such-step".into(), "digest".into())];
    let new = NewRun {
        id: Some(id.clone()),
        workflow: "pair".into(),
        version: "1.0.0".into(),
        input: json!({}),
        idempotency_key: None,
        steps: vec![("first".into(), "d1".into())],
        redacted: Vec::new(),
        source_run: None,
    };
    let err = f.store.create_started(new, first).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("no-such-step"),
        "the error names the step: {err:#}"
    );
    assert_eq!(f.store.get_run(&id).await.unwrap(), None);
    assert!(
        f.store
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_used_idempotency_key_drives_the_run_that_has_it() {
    let f = Fixture::new().await;
    let path = f.workflow("pair.toml", TWO_STEPS);
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let (waiting, _) = f
        .runner
        .submit(&loaded, json!({"n": 3}), Some("order-9".into()))
        .await
        .unwrap();
    assert_eq!(waiting.status, RunStatus::Pending);
    let (announced, created) = recorder();
    let run = f
        .runner
        .submit_and_execute(&loaded, json!({"n": 3}), Some("order-9".into()), created)
        .await
        .unwrap();
    assert_eq!(
        (run.id.as_str(), run.status),
        (waiting.id.as_str(), RunStatus::Succeeded)
    );
    assert_eq!(
        *announced.lock().unwrap(),
        [(waiting.id.clone(), RunStatus::Pending, false)]
    );
    let runs = f.store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "no second run was created");
    assert_eq!(lock_files(f.dir.path()), ["runs.lock"]);
    // Reused with another input, the key is refused before anything runs.
    let err = f
        .runner
        .submit_and_execute(&loaded, json!({"n": 4}), Some("order-9".into()), |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "idempotency key \"order-9\" was already used for run {} with a different input",
            waiting.id
        )
    );
}

#[tokio::test]
async fn a_run_whose_steps_are_all_skipped_ends_in_the_commit_that_creates_it() {
    let f = Fixture::new().await;
    let path = f.workflow(
        "gated.toml",
        r#"
name = "gated"
version = "1.0.0"
output = '{"only": steps.only.status}'
[[steps]]
id = "only"
plugin = "$PLUGINS/echo.wasm"
when = "input.go"
"#,
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let (announced, created) = recorder();
    let run = f
        .runner
        .submit_and_execute(&loaded, json!({"go": false}), None, created)
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!({"only": "skipped"})));
    assert_eq!(
        *announced.lock().unwrap(),
        [(run.id.clone(), RunStatus::Succeeded, true)]
    );
    assert_eq!(
        event_kinds(&f, &run.id).await,
        [
            "run_created",
            "run_running",
            "step_skipped",
            "run_succeeded"
        ]
    );
}
