//! A fleet: three `weir serve` processes share one PostgreSQL database, and one of them is
//! killed with SIGKILL (and restarted) every 1.2 s while they work through
//! hundreds of runs with a model call each. From the journal: every run succeeded exactly
//! once, no step result was recorded twice, no run is left behind, and the books of the
//! model budget match the journaled calls.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::store::{Durability, PostgresStore, RunFilter, RunStatus, StepStatus, Store};
use weir_provider::{Provider, Reply};

use crate::backend::TestStore;
use crate::crash::weir;
use crate::sidecar::{ready, serve_with};

mod skew;
mod takeover;

const TOKEN: &str = "fleet-token";
const WORKERS: usize = 8;

struct Fleet {
    hosts: Vec<Option<(Child, String)>>,
    args: Vec<String>,
    workflows: PathBuf,
    data: PathBuf,
}

impl Fleet {
    fn start(&mut self, i: usize) {
        let data = self.data.join(format!("host{i}"));
        let mut cmd = weir(&data);
        cmd.args(&self.args);
        self.hosts[i] = Some(serve_with(cmd, &self.workflows, TOKEN));
    }

    fn kill(&mut self, i: usize) {
        if let Some((mut child, _)) = self.hosts[i].take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn url(&self, i: usize) -> Option<String> {
        self.hosts[i].as_ref().map(|(_, url)| url.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_survives_hosts_killed_mid_run() {
    let runs: usize = std::env::var("WEIR_CHAOS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(
        r#"{"label": "billing", "confidence": 0.9}"#,
    ));
    let backend = TestStore::postgres();
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(workflows.join("prompts")).unwrap();
    crate::workflows::copy_prompts(&workflows.join("prompts"));
    let plugins = crate::workflows::plugin_dir();
    std::fs::write(
        workflows.join("chaos.toml"),
        format!(
            r#"
name = "chaos"
version = "1.0.0"
output = "finish"
[prompts]
classify = "prompts/classify.j2"
[budgets]
workflow-daily = 1000.0
[[steps]]
id = "start"
plugin = "{p}/echo.wasm"
[[steps]]
id = "ask"
plugin = "{p}/classify_llm.wasm"
after = ["start"]
input = '{{"subject": "ticket " + string(input.n), "body": "charged twice"}}'
grants = {{ models = ["smart"] }}
[[steps]]
id = "slow"
plugin = "{p}/echo.wasm"
after = ["ask"]
config = {{ sleep_ms = 400 }}
[[steps]]
id = "finish"
plugin = "{p}/echo.wasm"
after = ["slow"]
input = '{{"n": input.n, "label": steps.ask.output.label}}'
"#,
            p = plugins.display()
        ),
    )
    .unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.p]\nbase-url = \"{}\"\n[models.smart]\nprovider = \"p\"\nmodel = \"m\"\ninput-price = 1.0\noutput-price = 2.0\n[policy]\ncache-ttl = \"0s\"\n",
            provider.url()
        ),
    )
    .unwrap();
    let mut args = backend.cli_args();
    args.extend(["--host-config".into(), config.display().to_string()]);
    let mut fleet = Fleet {
        hosts: vec![None, None, None],
        args,
        workflows,
        data: dir.path().to_path_buf(),
    };
    let client = reqwest::Client::new();
    for i in 0..3 {
        fleet.start(i);
        ready(&client, &fleet.url(i).unwrap()).await;
    }

    // Submit every run (idempotently: a submission to a host that dies is retried on another).
    let started = Instant::now();
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(1200);
    let mut submitted = 0;
    while submitted < runs {
        let host = submitted % 3;
        if let Some(url) = fleet.url(host) {
            let sent = client
                .post(format!("{url}/v1/runs"))
                .bearer_auth(TOKEN)
                .timeout(Duration::from_secs(5))
                .json(&json!({"workflow": "chaos", "input": {"n": submitted}, "idempotency_key": format!("chaos-{submitted}")}))
                .send()
                .await;
            if matches!(&sent, Ok(r) if r.status().is_success()) {
                submitted += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if Instant::now() >= next_kill {
            chaos(&mut fleet, &client, &mut kills).await;
            next_kill = Instant::now() + Duration::from_millis(1200);
        }
    }

    // Keep killing until every run has ended.
    let store = PostgresStore::connect_with(backend.url.as_ref().unwrap(), 2, Durability::Normal)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let unfinished = store.unfinished_runs().await.unwrap().len();
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} runs never finished"
        );
        if Instant::now() >= next_kill {
            chaos(&mut fleet, &client, &mut kills).await;
            next_kill = Instant::now() + Duration::from_millis(1200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    for i in 0..3 {
        fleet.kill(i);
    }

    // Every run succeeded, once; no step has two results; the books match the journal.
    let all = store
        .list_runs(&RunFilter {
            limit: Some(runs as u32 + 10),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), runs, "one run per idempotency key");
    let (mut interrupted, mut paid_calls, mut cost) = (0, 0, 0);
    for run in &all {
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "{}: {:?}",
            run.id,
            run.failure
        );
        let n = run.input["n"].as_u64().unwrap();
        assert_eq!(run.output.as_ref().unwrap()["n"], n);
        let attempts = store.attempts(&run.id).await.unwrap();
        for step in ["start", "ask", "slow", "finish"] {
            let mine: Vec<_> = attempts.iter().filter(|a| a.step_id == step).collect();
            let results = mine
                .iter()
                .filter(|a| a.status == StepStatus::Succeeded)
                .count();
            assert_eq!(results, 1, "run {} step {step}: {results} results", run.id);
            assert!(
                mine.iter().all(|a| matches!(
                    a.status,
                    StepStatus::Succeeded | StepStatus::Interrupted
                ) && a.finished_ms.is_some()),
                "run {} step {step}: an attempt left open on an ended run: {mine:?}",
                run.id
            );
            interrupted += mine.len() - 1;
        }
        let events = store.events(&run.id).await.unwrap();
        let ends = events.iter().filter(|e| e.kind == "run_succeeded").count();
        assert_eq!(ends, 1, "run {} ended {ends} times", run.id);
        for call in store.model_calls(&run.id).await.unwrap() {
            assert_eq!(call.outcome, "ok", "{call:?}");
            paid_calls += 1;
            cost += call.cost_micros;
        }
    }
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let spend = store
        .spend(&format!("workflow:chaos:{today}"))
        .await
        .unwrap();
    assert_eq!(
        spend.spent_micros, cost,
        "spend booked = cost of journaled calls"
    );
    // A call the provider served to a host killed before it journaled the call is paid for
    // by nobody's books: at most the calls in flight on the killed hosts.
    let served = provider.calls();
    assert!(
        paid_calls <= served && served <= paid_calls + kills * WORKERS,
        "journaled {paid_calls}, served {served}, kills {kills}"
    );
    assert!(kills >= 3, "only {kills} kills");
    eprintln!(
        "fleet: {runs} runs in {elapsed:.1?} across 3 hosts, {kills} hosts killed, {interrupted} attempts interrupted and retried elsewhere, {paid_calls} model calls journaled of {served} served"
    );
}

/// Kills a random live host and starts it again.
async fn chaos(fleet: &mut Fleet, client: &reqwest::Client, kills: &mut usize) {
    let victim = fastrand::usize(0..3);
    fleet.kill(victim);
    *kills += 1;
    fleet.start(victim);
    ready(client, &fleet.url(victim).unwrap()).await;
}

/// `--durability` keeps its promise on PostgreSQL: at `normal` a journal commit does not
/// wait for the WAL flush (a crash of Weir loses nothing), at `full` it does, whatever the
/// server's own default.
#[tokio::test]
async fn durability_sets_the_journals_synchronous_commit() {
    let backend = TestStore::postgres();
    let url = backend.url.as_ref().unwrap();
    for (durability, expected) in [(Durability::Normal, "off"), (Durability::Full, "on")] {
        // The URL asks for the opposite: the durability flag decides.
        let opposite = if expected == "on" { "off" } else { "on" };
        let url = format!("{url}%20-csynchronous_commit%3D{opposite}");
        let store = PostgresStore::connect_with(&url, 2, durability)
            .await
            .unwrap();
        let mut seen = Vec::new();
        // Every connection of the pool, not only the first.
        let (mut a, mut b) = (
            store.pool().acquire().await.unwrap(),
            store.pool().acquire().await.unwrap(),
        );
        for c in [&mut a, &mut b] {
            let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&mut **c)
                .await
                .unwrap();
            seen.push(setting);
        }
        assert_eq!(seen, [expected, expected], "{durability:?}");
    }
}
