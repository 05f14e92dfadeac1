//! A fleet whose hosts' clocks disagree: one `weir serve` runs under libfaketime with its
//! clock 3 s ahead of the others, with 1 s leases. Leases are set and compared on the
//! database's clock, so the skewed host takes no lease another host still renews, and no
//! step runs twice.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use weir::store::{Durability, PostgresStore, StepStatus, Store};

use crate::backend::TestStore;
use crate::crash::weir;
use crate::serve::workflow_text;
use crate::sidecar::{ready, serve_with};

const TOKEN: &str = "skew-token";
/// How far ahead the skewed host's clock runs: three of the hosts' 1 s leases.
const SKEW: &str = "+3s";
/// Runs submitted to the host whose clock is right.
const RUNS: usize = 6;

/// The `weir` binary under libfaketime, its clock `SKEW` ahead.
fn skewed_weir(data: &Path) -> Command {
    let found = Command::new("faketime")
        .args(["-f", SKEW, "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test runs a host with a skewed clock under libfaketime: install Debian's `faketime` package (scripts/setup does)"
    );
    let plain = weir(data);
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", SKEW]).arg(plain.get_program());
    cmd.args(plain.get_args());
    // `faketime` runs `weir` as its child: killing `faketime` alone would leave that host
    // serving (and holding database connections) after the test. A group of its own lets
    // [`Group`] stop both.
    cmd.process_group(0);
    cmd
}

/// The skewed host's process group, killed whole when the test ends, even by a panic.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_its_clock_ahead_takes_no_lease_that_is_still_renewed() {
    let backend = TestStore::postgres();
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let echo = weir_artifacts::ECHO;
    // The first step outlasts the lease twice over: its host renews the lease meanwhile.
    let text = workflow_text(
        "long",
        &[
            ("slow", echo, "config = { sleep_ms = 2500 }"),
            ("done", echo, ""),
        ],
        "",
    );
    std::fs::write(workflows.join("long.toml"), text).unwrap();

    let mut right = weir(&dir.path().join("right"));
    right.args(backend.cli_args());
    let mut ahead = skewed_weir(&dir.path().join("ahead"));
    ahead.args(backend.cli_args());
    let (mut right, right_url) = serve_with(right, &workflows, TOKEN);
    let (ahead, ahead_url) = serve_with(ahead, &workflows, TOKEN);
    let ahead = Group(ahead);
    let client = reqwest::Client::new();
    ready(&client, &right_url).await;
    ready(&client, &ahead_url).await;

    for n in 0..RUNS {
        let r = client
            .post(format!("{right_url}/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": "long", "input": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    }

    let store = PostgresStore::connect_with(backend.url.as_ref().unwrap(), 2, Durability::Normal)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let unfinished = store.unfinished_runs().await.unwrap().len();
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} runs never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    right.kill().unwrap();
    right.wait().unwrap();
    drop(ahead);

    let runs = store.list_runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), RUNS);
    for run in &runs {
        let attempts = store.attempts(&run.id).await.unwrap();
        let twice: Vec<String> = attempts
            .iter()
            .filter(|a| a.attempt > 1)
            .map(|a| format!("{} attempt {} {}", a.step_id, a.attempt, a.status))
            .collect();
        assert!(
            twice.is_empty(),
            "run {}: a step ran again after its live lease was taken: {twice:?}",
            run.id
        );
        assert!(
            attempts.iter().all(|a| a.status == StepStatus::Succeeded),
            "{attempts:?}"
        );
    }
}
