//! A dead host's runs go ahead of a busy host's own backlog: the survivor, with every worker
//! taken and a queue behind them, takes them over as soon as their leases run out, not once
//! its queue has drained.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::store::{Durability, PostgresStore, RunRecord, RunStatus, StepStatus, Store};

use crate::backend::TestStore;
use crate::crash::weir;
use crate::serve::workflow_text;
use crate::sidecar::{ready, serve_with_args};

const TOKEN: &str = "takeover-token";
/// Runs the host that dies is driving when it is killed.
const ORPHANS: usize = 4;
/// Runs queued on the survivor: several times what its workers drive at once.
const BACKLOG: usize = 16;

async fn submit(client: &reqwest::Client, url: &str, workflow: &str, n: usize) -> String {
    let r = client
        .post(format!("{url}/v1/runs"))
        .bearer_auth(TOKEN)
        .json(&json!({"workflow": workflow, "input": {"n": n}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let body: serde_json::Value = r.json().await.unwrap();
    body["run"]["id"].as_str().unwrap().to_string()
}

async fn ended(store: &PostgresStore, ids: &[String]) -> Vec<RunRecord> {
    let mut runs = Vec::new();
    for id in ids {
        runs.push(store.get_run(id).await.unwrap().unwrap());
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hosts_runs_are_taken_over_ahead_of_a_busy_hosts_backlog() {
    let backend = TestStore::postgres();
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let echo = weir_artifacts::ECHO;
    let long = workflow_text(
        "long",
        &[
            ("slow", echo, "config = { sleep_ms = 2000 }"),
            ("done", echo, ""),
        ],
        "",
    );
    let quick = workflow_text(
        "quick",
        &[("only", echo, "config = { sleep_ms = 700 }")],
        "",
    );
    std::fs::write(workflows.join("long.toml"), long).unwrap();
    std::fs::write(workflows.join("quick.toml"), quick).unwrap();

    let host = |name: &str, workers: &str| -> (Child, String) {
        let mut cmd = weir(&dir.path().join(name));
        cmd.args(backend.cli_args());
        serve_with_args(cmd, &workflows, TOKEN, &["--workers", workers])
    };
    let (mut doomed, doomed_url) = host("doomed", "8");
    let (mut survivor, survivor_url) = host("survivor", "2");
    let client = reqwest::Client::new();
    ready(&client, &doomed_url).await;
    ready(&client, &survivor_url).await;
    let store = PostgresStore::connect_with(backend.url.as_ref().unwrap(), 2, Durability::Normal)
        .await
        .unwrap();

    // The doomed host is driving its runs' first steps...
    let mut orphans = Vec::new();
    for n in 0..ORPHANS {
        orphans.push(submit(&client, &doomed_url, "long", n).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &orphans {
        while store.steps(id).await.unwrap()[0].status != StepStatus::Running {
            assert!(Instant::now() < deadline, "run {id} never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // ...when the survivor gets a backlog of its own, and the doomed host dies.
    let mut backlog = Vec::new();
    for n in 0..BACKLOG {
        backlog.push(submit(&client, &survivor_url, "quick", n).await);
    }
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    while !store.unfinished_runs().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "runs never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    survivor.kill().unwrap();
    survivor.wait().unwrap();

    let orphans = ended(&store, &orphans).await;
    let backlog = ended(&store, &backlog).await;
    assert!(
        orphans
            .iter()
            .chain(&backlog)
            .all(|r| r.status == RunStatus::Succeeded)
    );
    let last_orphan = orphans.iter().map(|r| r.updated_ms).max().unwrap();
    let last_of_backlog = backlog.iter().map(|r| r.updated_ms).max().unwrap();
    let after_orphans = backlog
        .iter()
        .filter(|r| r.updated_ms > last_orphan)
        .count();
    // Taken over first, the orphans end while most of the backlog still waits; waiting for
    // an idle worker, they would end after all of it.
    assert!(
        last_orphan < last_of_backlog && after_orphans >= BACKLOG / 4,
        "the orphans ended at {last_orphan}, the backlog at {last_of_backlog}; only {after_orphans} of its {BACKLOG} runs ended after them"
    );
}
