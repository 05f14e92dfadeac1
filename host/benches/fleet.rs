//! Fleet scale on one PostgreSQL, against the same work measured in the same run:
//!
//! - runs/s of a trivial 5-step workflow driven by 1, 2 and 3 `weir serve` processes sharing
//!   one database (submitted over HTTP, round robin, then drained), against one `weir serve`
//!   on its embedded SQLite journal;
//! - the journal's cost per step, `Store::advance` alone (no WebAssembly), on SQLite
//!   (`normal`) and on PostgreSQL at `normal` and `full`, against the floor of one
//!   single-row `INSERT` commit with `synchronous_commit = off` over the same pool.
//!
//! Needs PostgreSQL at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Run with `cargo bench -p weir --bench fleet`;
//! it prints Markdown tables.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;
use weir::store::{
    Advance, AttemptOutcome, AttemptResult, Durability, NewRun, PostgresStore, RunEnd, RunStatus,
    SqliteStore, Store,
};

const RUNS: usize = 600;
const STEPS: usize = 5;
const TOKEN: &str = "bench";

fn base_url() -> String {
    std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema; returns the URL that uses it.
async fn schema(name: &str) -> String {
    let base = base_url();
    let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
    ))
    .execute(&mut c)
    .await
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{name}")
}

fn workflow_text() -> String {
    let mut text = String::from("name = \"bench\"\nversion = \"1.0.0\"\n");
    for i in 0..STEPS {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nplugin = \"{}\"\n",
            weir_artifacts::ECHO
        ));
        if i > 0 {
            text.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    text
}

/// Starts `weir serve` on the PostgreSQL at `url`, or on SQLite in `data` without one.
fn start_host(
    url: Option<&str>,
    workflows: &std::path::Path,
    data: &std::path::Path,
) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command.args(["--data-dir"]).arg(data);
    if let Some(url) = url {
        command.args(["--store", url]);
    }
    let mut child = command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--queue",
            "4096",
            "--workflows",
        ])
        .arg(workflows)
        .env("WEIR_API_TOKENS", TOKEN)
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("weir serve started").unwrap();
        if let Some(a) = line.strip_prefix("weir serve: listening on ") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Runs/s of `hosts` hosts on one PostgreSQL, or of one host on SQLite when `hosts` is 0.
async fn fleet_runs_per_sec(hosts: usize) -> f64 {
    let url = match hosts {
        0 => None,
        n => Some(schema(&format!("weir_bench_fleet_{n}")).await),
    };
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("bench.toml"), workflow_text()).unwrap();
    let mut children = Vec::new();
    let client = reqwest::Client::new();
    for i in 0..hosts.max(1) {
        let (child, addr) = start_host(
            url.as_deref(),
            &workflows,
            &dir.path().join(format!("h{i}")),
        );
        loop {
            if let Ok(r) = client.get(format!("{addr}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        children.push((child, addr));
    }
    let addrs: Arc<Vec<String>> = Arc::new(children.iter().map(|(_, a)| a.clone()).collect());
    let store: Arc<dyn Store> = match &url {
        Some(url) => Arc::new(
            PostgresStore::connect_with(url, 2, Durability::Normal)
                .await
                .unwrap(),
        ),
        None => {
            Arc::new(SqliteStore::open(&dir.path().join("h0/weir.db"), Durability::Normal).unwrap())
        }
    };
    let started = Instant::now();
    let mut submitters = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, addrs) = (client.clone(), addrs.clone());
        submitters.spawn(async move {
            for i in (worker..RUNS).step_by(16) {
                let addr = &addrs[i % addrs.len()];
                let r = client
                    .post(format!("{addr}/v1/runs"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"workflow": "bench", "input": {"i": i}}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            }
        });
    }
    while submitters.join_next().await.is_some() {}
    loop {
        if store.unfinished_runs().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let done = store
        .list_runs(&weir::store::RunFilter {
            status: Some(RunStatus::Succeeded),
            limit: Some(RUNS as u32 + 1),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(done, RUNS);
    for (mut child, _) in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    RUNS as f64 / elapsed.as_secs_f64()
}

/// Microseconds per journaled step: a 5-step run's advances, one run after another.
async fn journal_cost_per_step(store: &dyn Store, runs: usize) -> f64 {
    let steps: Vec<(String, String)> = (0..STEPS).map(|i| (format!("s{i}"), "d".into())).collect();
    let started = Instant::now();
    for n in 0..runs {
        let (run, _) = store
            .create_run(NewRun {
                id: None,
                workflow: "bench".into(),
                version: "1.0.0".into(),
                input: json!({"n": n}),
                idempotency_key: None,
                steps: steps.clone(),
                redacted: Vec::new(),
                source_run: None,
            })
            .await
            .unwrap();
        let mut advance = Advance::new(&run.id);
        advance.started.push(("s0".into(), "i".into()));
        store.advance(advance).await.unwrap();
        for i in 0..STEPS {
            let mut advance = Advance::new(&run.id);
            advance.finished = Some(AttemptResult {
                run_id: run.id.clone(),
                step_id: format!("s{i}"),
                attempt: 1,
                outcome: AttemptOutcome::Succeeded {
                    output: json!({"n": n}),
                    confidence: None,
                    route: None,
                },
                latency_us: 40,
                fuel: None,
                memory_peak: 1 << 20,
                logs: json!({}),
                redacted: Vec::new(),
                tape: None,
            });
            if i + 1 < STEPS {
                advance.started.push((format!("s{}", i + 1), "i".into()));
            } else {
                advance.end = Some(RunEnd {
                    status: RunStatus::Succeeded,
                    output: Some(json!({"n": n})),
                    failure: None,
                });
            }
            store.advance(advance).await.unwrap();
        }
    }
    started.elapsed().as_micros() as f64 / (runs * STEPS) as f64
}

/// Microseconds per single-row `INSERT` committed on its own with `synchronous_commit =
/// off`, over `store`'s pool: the least one journaled change can cost on this server.
async fn insert_floor(store: &PostgresStore, rows: usize) -> f64 {
    let pool = store.pool();
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_floor (n BIGINT, data TEXT)")
        .execute(pool)
        .await
        .unwrap();
    let started = Instant::now();
    for n in 0..rows {
        sqlx::query("INSERT INTO bench_floor (n, data) VALUES ($1, $2)")
            .bind(n as i64)
            .bind("{\"n\": 1}")
            .execute(pool)
            .await
            .unwrap();
    }
    started.elapsed().as_micros() as f64 / rows as f64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("weir.db"), Durability::Normal).unwrap();
        let pg = PostgresStore::connect(&schema("weir_bench_journal").await, Durability::Normal)
            .await
            .unwrap();
        let pg_full =
            PostgresStore::connect(&schema("weir_bench_journal_full").await, Durability::Full)
                .await
                .unwrap();
        // Warm them, then measure, interleaved so that the server's load drifts alike.
        journal_cost_per_step(&sqlite, 20).await;
        journal_cost_per_step(&pg, 20).await;
        journal_cost_per_step(&pg_full, 20).await;
        insert_floor(&pg, 100).await;
        let (mut sqlite_us, mut pg_us, mut full_us, mut floor_us) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..3 {
            sqlite_us += journal_cost_per_step(&sqlite, 100).await / 3.0;
            pg_us += journal_cost_per_step(&pg, 100).await / 3.0;
            full_us += journal_cost_per_step(&pg_full, 100).await / 3.0;
            floor_us += insert_floor(&pg, 500).await / 3.0;
        }

        let sqlite_host = fleet_runs_per_sec(0).await;
        let mut rates = Vec::new();
        for hosts in 1..=3 {
            rates.push((hosts, fleet_runs_per_sec(hosts).await));
        }

        println!("### Journal cost per step (`Store::advance`, no WebAssembly)\n");
        println!("| backend | µs per step | vs SQLite | vs the floor |");
        println!("|---|---|---|---|");
        let row = |name: &str, us: f64| {
            println!(
                "| {name} | {us:.0} | {:.2}× | {:.2}× |",
                us / sqlite_us,
                us / floor_us
            );
        };
        row("SQLite `normal`", sqlite_us);
        row("PostgreSQL `normal` (loopback)", pg_us);
        row("PostgreSQL `full`", full_us);
        row(
            "floor: one single-row `INSERT` commit, `synchronous_commit=off`",
            floor_us,
        );
        println!(
            "\n### Fleet: {RUNS} runs of a 5-step workflow, `weir serve` hosts on one PostgreSQL\n"
        );
        println!("| hosts | runs/s | vs 1 host | vs 1 host on SQLite |");
        println!("|---|---|---|---|");
        println!("| 1 on SQLite `normal` | {sqlite_host:.0} | | 1.00× |");
        let one = rates[0].1;
        for (hosts, rate) in rates {
            println!(
                "| {hosts} | {rate:.0} | {:.2}× | {:.2}× |",
                rate / one,
                rate / sqlite_host
            );
        }
    });
}
