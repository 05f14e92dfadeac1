//! Rollouts on live traffic, on the journal of either backend: a candidate that fails 30% of
//! its runs is rolled back before its second step; an identical one is promoted through every
//! step; too few runs pause and never roll back; assignment is sticky (a retried key keeps
//! its run's version after the weight moved); a reopened journal goes on at the same step;
//! two hosts checking at once count one check; `explain` makes every decision again and
//! notices a tampered one; and the HTTP endpoints.
//!
//! The checks are driven by calling the driver with the time, not by waiting on a server's
//! sweep, so every decision lands after a known set of runs.

use serde_json::{Value, json};
use weir::registry;
use weir::rollout::assign::{Arm, arm};
use weir::rollout::explain::explain;
use weir::rollout::machine::Order;
use weir::rollout::{Command, Plan, Rollout, Start, State, driver};
use weir::store::{RunStatus, Store};

use crate::support::host;
use crate::workflows::Fixture;

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `canary` at `version`; with `flaky`, a second step fails every run whose input is flaky.
fn canary(version: &str, flaky: bool) -> String {
    let mut text = format!(
        r#"
name = "canary"
version = "{version}"
[[steps]]
id = "first"
plugin = "$PLUGINS/echo.wasm"
"#
    );
    if flaky {
        text.push_str(
            r#"
[[steps]]
id = "boom"
plugin = "$PLUGINS/echo.wasm"
after = ["first"]
when = "input.flaky"
config = { fail = "fatal" }
"#,
        );
    }
    text
}

async fn register(f: &Fixture, version: &str, flaky: bool) {
    let path = f.workflow(&format!("{version}.toml"), &canary(version, flaky));
    registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A plan with no hold (checks decide as soon as the runs are there), checked on every tick,
/// inconclusive for up to an hour before it pauses.
fn plan(steps: &[u32], min_runs: u64) -> Plan {
    let mut plan = Plan::with_steps(steps.to_vec());
    plan.hold_ms = 0;
    plan.interval_ms = 0;
    plan.max_hold_ms = 3_600_000;
    plan.min_runs = min_runs;
    plan
}

async fn start(f: &Fixture, plan: Plan) -> Rollout {
    driver::start(
        f.store.as_ref(),
        Start {
            workflow: "canary".into(),
            to: "2.0.0".into(),
            from: None,
            plan,
        },
        now_ms(),
    )
    .await
    .unwrap()
}

/// Submits a run as `weir serve` does without a version: the rollout chooses. Returns the
/// version it ran on and how it ended.
async fn submit(f: &Fixture, key: &str, input: Value) -> (String, RunStatus) {
    let id = uuid::Uuid::now_v7().to_string();
    let (version, _, _) = driver::choose(f.store.as_ref(), "canary", Some(key), &id)
        .await
        .unwrap()
        .expect("the workflow has a rollout");
    let loaded = registry::load_registered(host(), f.store.as_ref(), "canary", Some(&version))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (run, _) = f
        .runner
        .submit_as(&loaded, input, Some(key.to_string()), Some(id))
        .await
        .unwrap();
    let run = f.runner.execute(&run.id).await.unwrap();
    (run.version, run.status)
}

async fn tick(store: &dyn Store, r: &Rollout) -> Rollout {
    driver::tick(store, &r.id, now_ms()).await.unwrap();
    store.rollouts().get_rollout(&r.id).await.unwrap().unwrap()
}

async fn kinds(store: &dyn Store, r: &Rollout) -> Vec<String> {
    store
        .rollouts()
        .rollout_events(&r.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn a_candidate_failing_30_percent_is_rolled_back_before_its_second_step() {
    let f = Fixture::new().await;
    register(&f, "1.0.0", false).await;
    // Started before its candidate is registered, the rollout waits, and registering the
    // candidate sends it nothing until the rollout begins.
    let waiting = start(&f, plan(&[50, 100], 20)).await;
    assert_eq!((waiting.state, waiting.weight), (State::Pending, 0));
    assert!(
        waiting.reason.contains("canary@2.0.0"),
        "{}",
        waiting.reason
    );
    register(&f, "2.0.0", true).await;
    for i in 0..10 {
        let (version, _) = submit(&f, &format!("early-{i}"), json!({"flaky": true})).await;
        assert_eq!(version, "1.0.0");
    }
    let rollout = tick(f.store.as_ref(), &waiting).await;
    assert_eq!((rollout.state, rollout.weight), (State::Ramping, 50));
    assert_eq!(
        rollout.from, "1.0.0",
        "the stable version is the one runs start on now"
    );

    // Three of every ten runs the rollout sends to the candidate are flaky: its failure
    // rate is 30% at any count, while flaky runs pass on the stable version.
    let mut sent_to_candidate = 0;
    let mut candidate_runs = 0;
    let mut r = rollout.clone();
    for i in 0..200 {
        let key = format!("ticket-{i}");
        let flaky = arm(&r.id, &key, 50) == Arm::Candidate && {
            sent_to_candidate += 1;
            (sent_to_candidate - 1) % 10 < 3
        };
        let (version, status) = submit(&f, &key, json!({"n": i, "flaky": flaky})).await;
        if version == "2.0.0" {
            candidate_runs += 1;
            assert_eq!(status == RunStatus::Failed, flaky, "run {i}");
        } else {
            assert_eq!(
                status,
                RunStatus::Succeeded,
                "run {i} on the stable version"
            );
        }
        if i % 5 == 4 {
            r = tick(f.store.as_ref(), &r).await;
            if r.state.is_final() {
                break;
            }
        }
    }
    assert_eq!(r.state, State::RolledBack, "{}", r.reason);
    assert_eq!((r.step, r.weight), (0, 0), "rolled back at its first step");
    assert!(r.reason.contains("critical"), "{}", r.reason);
    assert!(
        (10..15).contains(&candidate_runs),
        "rolled back at the first check with 10 candidate runs, after {candidate_runs}"
    );
    assert_eq!(
        kinds(f.store.as_ref(), &r).await.last().map(String::as_str),
        Some("rolled_back")
    );
    // New runs go to the stable version; a retried key keeps the run it had.
    let (version, _) = submit(&f, "a-new-ticket", json!({"flaky": true})).await;
    assert_eq!(version, "1.0.0");
    // The first key sent to the candidate was flaky (the first three of every ten are).
    let first = (0..)
        .find(|i| arm(&r.id, &format!("ticket-{i}"), 50) == Arm::Candidate)
        .unwrap();
    let (version, status) = submit(
        &f,
        &format!("ticket-{first}"),
        json!({"n": first, "flaky": true}),
    )
    .await;
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(version, "2.0.0", "the key's run was on the candidate");

    // Every decision comes out the same from the journal; a tampered verdict does not.
    let explained = explain(f.store.as_ref(), r.clone()).await.unwrap();
    assert!(explained.agrees, "{explained:#?}");
    assert_eq!(explained.decisions.last().unwrap().cause, "check");
    f.backend.tamper(
        f.dir.path(),
        "UPDATE rollout_events SET data = REPLACE(data, '\"verdict\":\"critical\"', '\"verdict\":\"pass\"') WHERE kind = 'check'",
    );
    let tampered = explain(f.store.as_ref(), r).await.unwrap();
    assert!(!tampered.agrees);
    let differs = tampered.decisions.iter().find(|d| !d.agrees).unwrap();
    assert!(
        differs.figures_now[0].contains("journaled verdict Pass, decided again Critical"),
        "{differs:?}"
    );
}

#[tokio::test]
async fn an_identical_candidate_is_promoted_through_every_step() {
    let f = Fixture::new().await;
    register(&f, "1.0.0", false).await;
    register(&f, "2.0.0", false).await;
    let mut p = plan(&[25, 50, 100], 10);
    // Ten runs without a failure bound the failure rate below 0.21 (one-sided 95%).
    p.analysis.failure_rate = 0.25;
    let mut r = start(&f, p).await;
    let mut weights = vec![r.weight];
    for i in 0..400 {
        let (_, status) = submit(&f, &format!("k{i}"), json!({"n": i})).await;
        assert_eq!(status, RunStatus::Succeeded);
        if i % 5 == 4 {
            r = tick(f.store.as_ref(), &r).await;
            if weights.last() != Some(&r.weight) {
                weights.push(r.weight);
            }
            if r.state.is_final() {
                break;
            }
        }
    }
    assert_eq!(r.state, State::Promoted, "{}", r.reason);
    assert_eq!(weights, [25, 50, 100]);
    let events = kinds(f.store.as_ref(), &r).await;
    let transitions: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "check")
        .collect();
    assert_eq!(transitions, ["started", "ramping", "ramping", "promoted"]);
    // Each move came after two passing checks in a row.
    let log = f.store.rollouts().rollout_events(&r.id).await.unwrap();
    for (i, e) in log.iter().enumerate() {
        if e.kind == "ramping" && i > 1 || e.kind == "promoted" {
            let checks: Vec<&str> = log[..i]
                .iter()
                .rev()
                .filter(|e| e.kind == "check")
                .take(2)
                .map(|e| e.data["check"]["verdict"].as_str().unwrap())
                .collect();
            assert_eq!(checks, ["pass", "pass"], "before event {}", e.seq);
        }
    }
    // Promoted: the candidate takes every new run.
    assert_eq!(submit(&f, "after", json!({})).await.0, "2.0.0");
    assert!(explain(f.store.as_ref(), r).await.unwrap().agrees);
}

#[tokio::test]
async fn too_few_runs_pause_and_never_roll_back_and_a_reopened_journal_goes_on() {
    let f = Fixture::new().await;
    register(&f, "1.0.0", false).await;
    register(&f, "2.0.0", false).await;
    let mut p = plan(&[50, 100], 40);
    // A step still inconclusive at its first check pauses.
    p.max_hold_ms = 0;
    let mut r = start(&f, p).await;
    for round in 0..3 {
        // Five runs an interval.
        for i in 0..5 {
            let (_, status) = submit(&f, &format!("r{round}-{i}"), json!({"n": i})).await;
            assert_eq!(status, RunStatus::Succeeded);
        }
        r = tick(f.store.as_ref(), &r).await;
        assert_eq!((r.state, r.weight), (State::Paused, 50), "{}", r.reason);
        assert!(r.reason.contains("too few ended runs"), "{}", r.reason);
        // A restarted process reads the same rollout and carries on from it.
        let reopened = f.reopen().await;
        let again = reopened
            .rollouts()
            .get_rollout(&r.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, r);
        r = driver::command(
            reopened.as_ref(),
            &r.id,
            &Command {
                order: Order::Resume,
                by: "ana".into(),
            },
            now_ms(),
        )
        .await
        .unwrap();
        assert_eq!((r.state, r.step, r.weight), (State::Ramping, 0, 50));
    }
    let events = kinds(f.store.as_ref(), &r).await;
    assert!(!events.iter().any(|k| k == "rolled_back"), "{events:?}");
    assert_eq!(events.iter().filter(|k| *k == "paused").count(), 3);
    assert!(explain(f.store.as_ref(), r).await.unwrap().agrees);
}

#[tokio::test]
async fn two_hosts_checking_at_once_count_one_check_and_route_alike() {
    let f = Fixture::new().await;
    register(&f, "1.0.0", false).await;
    register(&f, "2.0.0", false).await;
    let mut p = plan(&[50, 100], 40);
    p.interval_ms = 3_600_000;
    p.max_hold_ms = 3_600_000;
    let r = start(&f, p).await;
    let other = f.reopen().await;
    let now = now_ms();
    let (a, b) = tokio::join!(
        driver::tick(f.store.as_ref(), &r.id, now),
        driver::tick(other.as_ref(), &r.id, now)
    );
    let changed = [a.unwrap(), b.unwrap()];
    assert_eq!(
        changed.iter().filter(|c| c.is_some()).count(),
        1,
        "one host's check counts"
    );
    let events = kinds(f.store.as_ref(), &r).await;
    assert_eq!(events.iter().filter(|k| *k == "check").count(), 1);
    // Within the interval, neither host checks again.
    assert!(
        driver::tick(other.as_ref(), &r.id, now + 1000)
            .await
            .unwrap()
            .is_none()
    );
    let mut candidates = 0;
    for i in 0..200 {
        let key = format!("k{i}");
        let here = driver::choose(f.store.as_ref(), "canary", Some(&key), "unused").await;
        let there = driver::choose(other.as_ref(), "canary", Some(&key), "unused").await;
        let (here, there) = (here.unwrap().unwrap(), there.unwrap().unwrap());
        assert_eq!((&here.0, here.1), (&there.0, there.1), "{key}");
        candidates += usize::from(here.1 == Arm::Candidate);
    }
    // 50% of 200: a binomial 99% interval is 82..118.
    assert!((82..=118).contains(&candidates), "{candidates} of 200");
    // A second rollout of the same workflow is refused while this one runs.
    let refused = driver::start(
        other.as_ref(),
        Start {
            workflow: "canary".into(),
            to: "2.0.0".into(),
            from: Some("1.0.0".into()),
            plan: plan(&[50, 100], 40),
        },
        now_ms(),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains(&r.id), "{refused}");
}

#[tokio::test]
async fn rollouts_are_started_followed_and_ordered_over_http() {
    use crate::serve::Sidecar;
    use reqwest::StatusCode;

    let backend = crate::backend::TestStore::new();
    let sidecar = Sidecar::start_on(&backend, |_, root| {
        let plugins = crate::workflows::plugin_dir().display().to_string();
        for version in ["1.0.0", "2.0.0"] {
            let text = canary(version, false).replace("$PLUGINS", &plugins);
            std::fs::write(root.join(format!("workflows/canary-{version}.toml")), text).unwrap();
        }
    })
    .await;
    let post = |path: &str, body: Value| {
        let request = sidecar.post(path).json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "to": "2.0.0", "plan": {"steps": [30, 70]}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`steps` must end at 100"),
        "{body}"
    );
    let problems = body["error"]["details"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    let (status, body) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "to": "two", "plan": {"steps": [100]}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`to` is \"two\""),
        "{body}"
    );
    let (status, body) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "plan": {"steps": [100]}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(
        "/v1/rollouts",
        json!({"workflow": "nope", "to": "2.0.0", "plan": {"steps": [100]}}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A version not registered yet: the rollout waits for it, and can be aborted; new runs
    // then start on its stable version.
    let (status, waiting) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "to": "9.0.0", "from": "1.0.0", "plan": {"steps": [100]}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{waiting}");
    assert_eq!(waiting["state"], "pending");
    let waiting_id = waiting["id"].as_str().unwrap();
    let (status, _) = post(&format!("/v1/rollouts/{waiting_id}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(&format!("/v1/rollouts/{waiting_id}/abort"), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let plan = json!({"steps": [50, 100], "hold_ms": 0, "interval_ms": 3_600_000, "min_runs": 5});
    let (status, started) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "to": "2.0.0", "plan": plan}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(
        (&started["state"], &started["weight"], &started["from"]),
        (&json!("ramping"), &json!(50), &json!("1.0.0"))
    );
    let id = started["id"].as_str().unwrap().to_string();
    let (status, body) = post(
        "/v1/rollouts",
        json!({"workflow": "canary", "to": "2.0.0", "plan": plan}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Runs submitted without a version land where the rollout's line puts their key.
    let mut on_candidate = 0;
    for i in 0..30 {
        let key = format!("ticket-{i}");
        let (status, run) = sidecar
            .submit(
                "",
                json!({"workflow": "canary", "input": {"n": i}, "idempotency_key": key}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        let expected = match arm(&id, &key, 50) {
            Arm::Candidate => "2.0.0",
            Arm::Stable => "1.0.0",
        };
        assert_eq!(run["run"]["version"], expected, "{run}");
        on_candidate += usize::from(expected == "2.0.0");
    }
    assert!((1..30).contains(&on_candidate), "{on_candidate}");

    let (status, paused) = post(&format!("/v1/rollouts/{id}/pause"), json!({"by": "ana"})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["state"], "paused");
    let (status, _) = post(&format!("/v1/rollouts/{id}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(&format!("/v1/rollouts/{id}/explode"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post("/v1/rollouts/no-such-rollout/pause", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let detail = sidecar.json(&format!("/v1/rollouts/{id}")).await;
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|k| *k != "check")
        .collect();
    assert_eq!(kinds, ["started", "ramping", "paused"], "{detail}");
    assert_eq!(
        detail["events"].as_array().unwrap().last().unwrap()["data"]["by"],
        "ana"
    );

    let r = sidecar
        .post(&format!("/v1/rollouts/{id}/abort"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, run) = sidecar
        .submit("", json!({"workflow": "canary", "input": {"n": 99}}))
        .await;
    assert_eq!(run["run"]["version"], "1.0.0", "{run}");
    let all = sidecar.json("/v1/rollouts?workflow=canary").await;
    assert_eq!(all["rollouts"].as_array().unwrap().len(), 2);
    assert_eq!(all["rollouts"][0]["state"], "aborted");
    let active = sidecar.json("/v1/rollouts?active=true").await;
    assert_eq!(active["rollouts"], json!([]));
    // The shadow results endpoint answers, and refuses a limit out of range.
    let shadows = sidecar.json("/v1/shadows?workflow=canary").await;
    assert_eq!(shadows["shadows"], json!([]));
    let r = sidecar.get("/v1/shadows?limit=0").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
