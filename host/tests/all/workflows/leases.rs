//! Leases on either backend: claims, takeover of an expired lease, and fencing by epoch.

use serde_json::json;
use weir::registry;
use weir::store::StepStatus;

use super::Fixture;
use crate::support::host;

/// Leases on either backend: a claim excludes other hosts while it is live, an expired one
/// can be taken over, and the host that lost it can no longer write (fencing by epoch).
#[tokio::test]
async fn leases_fence_a_host_whose_run_was_taken_over() {
    use weir::store::{Advance, AttemptOutcome, AttemptResult};
    let f = Fixture::new().await;
    let path = f.workflow(
        "leased.toml",
        "name = \"leased\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"a\"\nplugin = \"$PLUGINS/echo.wasm\"\n",
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let (run, _) = f
        .runner
        .submit(&loaded, json!({"x": 1}), None)
        .await
        .unwrap();

    let first = f
        .store
        .claim_run(&run.id, "host-a", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.epoch, 1);
    assert!(
        f.store
            .claim_run(&run.id, "host-b", 60_000)
            .await
            .unwrap()
            .is_none(),
        "a live lease excludes"
    );
    assert!(
        f.store
            .claim_orphans("host-b", 60_000, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // host-a starts the step under its lease.
    let mut start = Advance::new(&run.id);
    start.lease = Some(first.clone());
    start.started.push(("a".into(), "digest".into()));
    let started = f.store.advance(start).await.unwrap();
    assert_eq!(started.attempts, [1]);

    // host-a stops renewing; its lease expires and host-b takes the run over.
    assert!(f.store.renew_lease(&first, -1).await.unwrap());
    let taken = f
        .store
        .claim_orphans("host-b", 60_000, 10, 0)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].owner.as_str(), taken[0].epoch), ("host-b", 2));
    assert!(
        !f.store.renew_lease(&first, 60_000).await.unwrap(),
        "host-a's lease is gone"
    );

    // host-a comes back with its result: fenced, nothing recorded.
    let result = |attempt: u32| AttemptResult {
        run_id: run.id.clone(),
        step_id: "a".into(),
        attempt,
        outcome: AttemptOutcome::Succeeded {
            output: json!({"from": attempt}),
            confidence: None,
            route: None,
        },
        latency_us: 1,
        fuel: None,
        memory_peak: 0,
        logs: json!({}),
        redacted: Vec::new(),
        tape: None,
    };
    let mut stale = Advance::new(&run.id);
    stale.lease = Some(first.clone());
    stale.finished = Some(result(1));
    let fenced = f.store.advance(stale).await.unwrap();
    assert!(fenced.lost_lease && !fenced.recorded);
    assert_eq!(
        f.store.steps(&run.id).await.unwrap()[0].status,
        StepStatus::Running
    );

    // host-b drives it to the end.
    let mut restart = Advance::new(&run.id);
    restart.lease = Some(taken[0].clone());
    restart.started.push(("a".into(), "digest".into()));
    assert_eq!(f.store.advance(restart).await.unwrap().attempts, [2]);
    // host-a's attempt can never take a result now: it is closed as of the new start.
    let attempts = f.store.attempts(&run.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.status))
            .collect::<Vec<_>>(),
        [(1, StepStatus::Interrupted), (2, StepStatus::Running)]
    );
    assert_eq!(attempts[0].finished_ms, Some(attempts[1].started_ms));
    let mut finish = Advance::new(&run.id);
    finish.lease = Some(taken[0].clone());
    finish.finished = Some(result(2));
    assert!(f.store.advance(finish).await.unwrap().recorded);
    let step = &f.store.steps(&run.id).await.unwrap()[0];
    assert_eq!(
        (step.status, step.output.clone()),
        (StepStatus::Succeeded, Some(json!({"from": 2})))
    );
    f.store.release_lease(&taken[0]).await.unwrap();
}

/// A run that ends while an attempt of it has no result (cancelled while a host that died
/// was running it): the attempt is closed as `interrupted` when the run ends.
#[tokio::test]
async fn an_attempt_without_a_result_is_closed_when_its_run_ends() {
    use weir::store::{Advance, RunStatus};
    let f = Fixture::new().await;
    let path = f.workflow(
        "cut.toml",
        "name = \"cut\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"a\"\nplugin = \"$PLUGINS/echo.wasm\"\n",
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let (run, _) = f.runner.submit(&loaded, json!({}), None).await.unwrap();
    let mut start = Advance::new(&run.id);
    start.started.push(("a".into(), "digest".into()));
    assert_eq!(f.store.advance(start).await.unwrap().attempts, [1]);
    let attempts = f.store.attempts(&run.id).await.unwrap();
    assert_eq!(
        (attempts[0].status, attempts[0].finished_ms),
        (StepStatus::Running, None),
        "in flight while the run is"
    );

    f.store
        .set_run_status(&run.id, RunStatus::Cancelled, None, None)
        .await
        .unwrap();
    let ended = f.store.get_run(&run.id).await.unwrap().unwrap();
    let attempts = f.store.attempts(&run.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, StepStatus::Interrupted);
    let finished = attempts[0].finished_ms.expect("an end time");
    assert!(
        finished >= attempts[0].started_ms && (finished - ended.updated_ms).abs() < 1_000,
        "ended with its run: {finished} vs {}",
        ended.updated_ms
    );
}
