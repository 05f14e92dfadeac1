//! Durable workflow throughput, against baselines measured in the same run:
//!
//! - Weir: a 5-step linear workflow of a trivial step, journaled in SQLite (`normal`), one
//!   run after another; and with `full` durability (fsync per commit) at 1 and 64 concurrent
//!   runs, where group commit matters;
//! - the raw floor: the same component called five times per run through a bare
//!   `InstancePre`, with one rusqlite commit per step and nothing else;
//! - LangGraph with `SqliteSaver`, a 5-node linear graph of trivial functions, when its venv
//!   exists (`benches/langgraph/setup`).
//!
//! Run with `cargo bench -p weir --bench workflows`; it prints a Markdown table. With
//! `WEIR_BENCH_PROFILE_RUNS=<n>` it measures only Weir's `normal` row over `n` runs, for a
//! profiler to look at.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use weir::registry;
use weir::runner::Runner;
use weir::store::{Durability, RunStatus, SqliteStore, Store};
use weir::{Host, HostConfig};

const RUNS: usize = 300;
const STEPS: usize = 5;

fn workflow_file(dir: &Path) -> std::path::PathBuf {
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
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn weir_runs_per_sec(
    host: &Host,
    durability: Durability,
    concurrency: usize,
    runs: usize,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("weir.db"), durability).unwrap());
    let runner = Runner::new(host.clone(), store.clone(), dir.path().join("locks"));
    let (loaded, _) = registry::register_file(host, store.as_ref(), &workflow_file(dir.path()))
        .await
        .unwrap();
    let loaded = Arc::new(loaded);
    let one = |runner: Runner, loaded: Arc<registry::Loaded>, i: usize| async move {
        let (run, _) = runner
            .submit(&loaded, json!({"ticket": i}), None)
            .await
            .unwrap();
        let run = runner.execute(&run.id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
    };
    for i in 0..10 {
        one(runner.clone(), loaded.clone(), i).await;
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (runner, loaded) = (runner.clone(), loaded.clone());
        tasks.spawn(async move {
            for i in (worker..runs).step_by(concurrency) {
                one(runner.clone(), loaded.clone(), i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

async fn raw_floor_runs_per_sec(runs: usize) -> f64 {
    let floor = common::Floor::new(weir_artifacts::ECHO);
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE results (run INTEGER, step INTEGER, output TEXT, PRIMARY KEY (run, step))",
    )
    .unwrap();
    let start = Instant::now();
    for run in 0..runs {
        let mut payload = json!({"ticket": run}).to_string();
        for step in 0..STEPS {
            payload = floor.call(&payload).await;
            conn.execute(
                "INSERT INTO results (run, step, output) VALUES (?1, ?2, ?3)",
                rusqlite::params![run as i64, step as i64, payload],
            )
            .unwrap();
        }
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

fn langgraph_runs_per_sec(runs: usize) -> Option<f64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/langgraph");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return None;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("bench.py"))
        .arg(runs.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("runs_per_sec="))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = Host::new(HostConfig::default()).unwrap();
        // For a profiler: only Weir's `normal` row, with this many runs.
        if let Ok(runs) = std::env::var("WEIR_BENCH_PROFILE_RUNS") {
            let runs = runs
                .parse()
                .expect("WEIR_BENCH_PROFILE_RUNS is a number of runs");
            let normal = weir_runs_per_sec(&host, Durability::Normal, 1, runs).await;
            println!("Weir, SQLite `normal`, sequential: {normal:.0} runs/s");
            return;
        }
        let floor = raw_floor_runs_per_sec(RUNS).await;
        let normal = weir_runs_per_sec(&host, Durability::Normal, 1, RUNS).await;
        let full_1 = weir_runs_per_sec(&host, Durability::Full, 1, RUNS / 3).await;
        let full_64 = weir_runs_per_sec(&host, Durability::Full, 64, RUNS).await;
        let langgraph = langgraph_runs_per_sec(RUNS);

        println!("## Durable {STEPS}-step workflow, {RUNS} runs (trivial step), this machine\n");
        println!("| system | runs/s | Weir normal ÷ this |");
        println!("|---|---|---|");
        println!("| Weir, SQLite `normal`, sequential | {normal:.0} | 1.00× |");
        println!(
            "| raw floor: InstancePre + one rusqlite commit per step | {floor:.0} | {:.2}× |",
            normal / floor
        );
        match langgraph {
            Some(lg) => println!(
                "| LangGraph + SqliteSaver, 5 trivial nodes | {lg:.0} | {:.1}× |",
                normal / lg
            ),
            None => println!(
                "| LangGraph + SqliteSaver | not measured: run benches/langgraph/setup first | |"
            ),
        }
        println!("| Weir, SQLite `full` (fsync per commit), 1 run at a time | {full_1:.0} | |");
        println!("| Weir, SQLite `full`, 64 concurrent runs (group commit) | {full_64:.0} | |");
        println!();
    });
}
