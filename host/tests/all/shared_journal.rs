//! Several `weir` processes on one journal at once, as the README allows: `weir run`s side by
//! side on one data directory, `weir run`s beside a busy `weir serve`, and two `weir serve`
//! with a review decided beside them. Every process exits cleanly, and no run is left
//! `pending` or `running` behind them.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use weir::store::{RunFilter, RunRecord, RunStatus, Store};

use crate::backend::TestStore;
use crate::crash::weir;
use crate::serve::workflow_text;
use crate::sidecar::{ready, serve_with};

const TOKEN: &str = "shared-token";
/// `weir run`s started at once on one data directory: without write transactions that take
/// the lock first, most of them failed with `database is locked`. Fewer on PostgreSQL, whose
/// connections (100 by default) every test running alongside shares.
fn processes(backend: &TestStore) -> usize {
    if backend.url.is_some() { 10 } else { 50 }
}
/// Runs submitted to the sidecar while `weir run`s share its journal.
const SIDECAR_RUNS: usize = 60;

/// A five-step echo chain, each step a journal commit or two.
fn chain(dir: &Path) -> PathBuf {
    let echo = weir_artifacts::ECHO;
    let steps: Vec<(String, &str, &str)> = (1..=5).map(|i| (format!("s{i}"), echo, "")).collect();
    let steps: Vec<(&str, &str, &str)> = steps
        .iter()
        .map(|(id, plugin, extra)| (id.as_str(), *plugin, *extra))
        .collect();
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let path = workflows.join("chain.toml");
    std::fs::write(&path, workflow_text("chain", &steps, "")).unwrap();
    path
}

fn spawn_run(backend: &TestStore, data: &Path, workflow: &Path, n: usize) -> Child {
    weir(data)
        .args(backend.cli_args())
        .args(["run", "--json", workflow.to_str().unwrap(), "--input"])
        .arg(json!({"n": n}).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_exited_cleanly(outputs: Vec<Output>) {
    let failed: Vec<String> = outputs
        .iter()
        .filter(|out| !out.status.success())
        .map(|out| {
            format!(
                "{:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} `weir run`s failed:\n{}",
        failed.len(),
        outputs.len(),
        failed.join("\n")
    );
}

async fn all_runs(store: &dyn Store) -> Vec<RunRecord> {
    store
        .list_runs(&RunFilter {
            limit: Some(10_000),
            ..RunFilter::default()
        })
        .await
        .unwrap()
}

fn unfinished(runs: &[RunRecord]) -> Vec<String> {
    runs.iter()
        .filter(|r| !r.status.is_final())
        .map(|r| format!("{} {}", r.id, r.status))
        .collect()
}

/// Waits (up to two minutes) until no run is left unfinished, then checks that there are
/// `expected` runs and every one succeeded; `alive` says which processes could drive them.
async fn all_end_succeeded(store: &dyn Store, expected: usize, alive: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = all_runs(store).await;
        let left = unfinished(&runs);
        if left.is_empty() {
            assert_eq!(runs.len(), expected);
            assert!(
                runs.iter().all(|r| r.status == RunStatus::Succeeded),
                "{runs:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs left behind while {alive}: {left:?}",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_weir_runs_at_once_on_one_data_dir_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workflow = chain(dir.path());
    let backend = TestStore::new();
    // The journal exists (and is migrated) before they all start, as it would in use.
    let store = backend.open(&data).await;
    let processes = processes(&backend);
    let children: Vec<Child> = (0..processes)
        .map(|n| spawn_run(&backend, &data, &workflow, n))
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_exited_cleanly(outputs);
    let runs = all_runs(store.as_ref()).await;
    assert_eq!(runs.len(), processes);
    assert!(unfinished(&runs).is_empty(), "{:?}", unfinished(&runs));
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{runs:?}"
    );
    // Their step results, committed by many processes at once, add up in the profile.
    let rows = crate::monitor::rows(store.as_ref(), "chain").await;
    for step in ["s1", "s2", "s3", "s4", "s5"] {
        assert_eq!(
            crate::monitor::results(&rows, step),
            processes as i64,
            "{step}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_runs_beside_a_busy_sidecar_leave_none_of_its_runs_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workflow = chain(dir.path());
    let backend = TestStore::new();
    let mut cmd = weir(&data);
    cmd.args(backend.cli_args());
    let (mut sidecar, url) = serve_with(cmd, workflow.parent().unwrap(), TOKEN);
    let client = reqwest::Client::new();
    ready(&client, &url).await;

    // The sidecar works through its runs while `weir run`s write to the same journal.
    let beside = processes(&backend) / 2;
    let children: Vec<Child> = (0..beside)
        .map(|n| spawn_run(&backend, &data, &workflow, 1000 + n))
        .collect();
    let mut ids = Vec::new();
    for n in 0..SIDECAR_RUNS {
        let r = client
            .post(format!("{url}/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": "chain", "input": {"n": n}}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        ids.push(body["run"]["id"].as_str().unwrap().to_string());
    }
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_exited_cleanly(outputs);

    // The sidecar, alive, drives every one of its runs to the end.
    let store = backend.open(&data).await;
    all_end_succeeded(
        store.as_ref(),
        SIDECAR_RUNS + beside,
        "the sidecar is alive",
    )
    .await;
    for id in &ids {
        let run = store.get_run(id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{id}");
    }
    sidecar.kill().unwrap();
    sidecar.wait().unwrap();
}

/// Two `weir serve` on one data directory, each taking half of the submissions at once, and a
/// `weir review approve` beside them: no request fails with a locked journal, and every run,
/// the reviewed one included, ends while the processes that can drive it are alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_and_a_review_decision_share_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workflow = chain(dir.path());
    let workflows = workflow.parent().unwrap();
    std::fs::write(
        workflows.join("gate.toml"),
        workflow_text(
            "gate",
            &[("only", weir_artifacts::ECHO, "review = { when = \"true\" }")],
            "",
        ),
    )
    .unwrap();
    let backend = TestStore::new();
    let store = backend.open(&data).await;
    let mut sidecars = Vec::new();
    for _ in 0..2 {
        let mut cmd = weir(&data);
        cmd.args(backend.cli_args());
        sidecars.push(serve_with(cmd, workflows, TOKEN));
    }
    let client = reqwest::Client::new();
    for (_, url) in &sidecars {
        ready(&client, url).await;
    }
    let submit = |url: String, body: serde_json::Value| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{url}/v1/runs"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
            body["run"]["id"].as_str().unwrap().to_string()
        }
    };

    // A run parks for review on the first sidecar.
    let gated = submit(
        sidecars[0].1.clone(),
        json!({"workflow": "gate", "input": {"gated": true}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let review = loop {
        let pending = store
            .reviews(Some(weir::store::ReviewStatus::Pending), Some(&gated))
            .await
            .unwrap();
        if let Some(review) = pending.into_iter().next() {
            break review;
        }
        assert!(Instant::now() < deadline, "the gated run never parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Both sidecars take submissions at once while the review is approved beside them.
    let approve = {
        let mut cmd = weir(&data);
        cmd.args(backend.cli_args())
            .args(["review", "approve", &review.id, "--by", "ops"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let submissions = (0..SIDECAR_RUNS).map(|n| {
        submit(
            sidecars[n % 2].1.clone(),
            json!({"workflow": "chain", "input": {"n": n}}),
        )
    });
    let ids = futures_util::future::join_all(submissions).await;
    let approved = tokio::task::spawn_blocking(move || approve.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_exited_cleanly(vec![approved]);

    all_end_succeeded(store.as_ref(), SIDECAR_RUNS + 1, "both sidecars are alive").await;
    assert_eq!(ids.len(), SIDECAR_RUNS);
    let gated = store.get_run(&gated).await.unwrap().unwrap();
    assert_eq!(gated.output, Some(json!({"gated": true})));
    for (mut child, _) in sidecars {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
