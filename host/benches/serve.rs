//! Load check of `weir serve`: throughput and latency of `POST /v1/runs?wait` for a trivial
//! one-step workflow at 1, 16 and 128 concurrent clients over loopback HTTP, against the
//! same runs driven through the library directly (no HTTP, no queue) in the same process.
//!
//! Run with `cargo bench -p weir --bench serve`; it prints a Markdown table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::runner::Runner;
use weir::serve::{ServeConfig, Server};
use weir::store::{Durability, SqliteStore, Store};
use weir::{Host, HostConfig};

const REQUESTS: usize = 2000;

struct Stats {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn workflow(dir: &std::path::Path) {
    let text = format!(
        "name = \"one\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"echo\"\nplugin = \"{}\"\n",
        weir_artifacts::ECHO
    );
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("workflows/one.toml"), text).unwrap();
}

async fn over_http(host: &Host, clients: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    workflow(dir.path());
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("weir.db"), Durability::Normal).unwrap());
    let runner = Runner::new(host.clone(), store, dir.path().join("locks"));
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workflows_dir: Some(dir.path().join("workflows")),
        workers: 16,
        queue: 1024,
        ..ServeConfig::default()
    };
    let server = Server::start(host.clone(), runner, config).await.unwrap();
    let url = format!("http://{}/v1/runs?wait=60s", server.addr);
    let client = reqwest::Client::new();
    loop {
        let ready = client
            .get(format!("http://{}/readyz", server.addr))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for i in (c..REQUESTS).step_by(clients) {
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .json(&json!({"workflow": "one", "input": {"n": i}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::CREATED);
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["run"]["status"], json!("succeeded"));
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    let elapsed = start.elapsed();
    server.shutdown().await.unwrap();
    stats(all, elapsed)
}

async fn direct(host: &Host, clients: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    workflow(dir.path());
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("weir.db"), Durability::Normal).unwrap());
    let runner = Runner::new(host.clone(), store.clone(), dir.path().join("locks"));
    let (loaded, _) =
        weir::registry::register_file(host, store.as_ref(), &dir.path().join("workflows/one.toml"))
            .await
            .unwrap();
    let loaded = Arc::new(loaded);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (runner, loaded) = (runner.clone(), loaded.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for i in (c..REQUESTS).step_by(clients) {
                let t = Instant::now();
                let (run, _) = runner.submit(&loaded, json!({"n": i}), None).await.unwrap();
                runner.execute(&run.id).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    stats(all, start.elapsed())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = Host::new(HostConfig::default()).unwrap();
        println!("## `POST /v1/runs?wait`, one trivial step, {REQUESTS} runs per row, this machine\n");
        println!("| clients | HTTP runs/s | HTTP p50 | HTTP p99 | library runs/s (baseline) | HTTP ÷ library |");
        println!("|---|---|---|---|---|---|");
        for clients in [1, 16, 128] {
            let base = direct(&host, clients).await;
            let http = over_http(&host, clients).await;
            println!(
                "| {clients} | {:.0} | {:.2?} | {:.2?} | {:.0} | {:.2}× |",
                http.per_sec,
                http.p50,
                http.p99,
                base.per_sec,
                http.per_sec / base.per_sec
            );
        }
        println!();
    });
}
