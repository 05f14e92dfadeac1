//! Load check of `weir serve`: throughput and latency of `POST /v1/runs?wait` for a trivial
//! one-step workflow at 1, 16 and 128 concurrent clients over loopback HTTP, against the
//! same runs driven through the library directly (no HTTP, no queue) in the same process;
//! and 32 closed-loop clients on a 5-step chain for a fixed time with 8 workers (the
//! baseline) and with 32, which must be no slower and leave no run unsettled at its wait.
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
    max: Duration,
    /// Runs whose `?wait` answered before they ended.
    unsettled: usize,
}

fn stats(mut latencies: Vec<Duration>, elapsed: Duration, unsettled: usize) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: *latencies.last().unwrap(),
        unsettled,
    }
}

/// A linear workflow `one` of `steps` echo steps.
fn workflow(dir: &std::path::Path, steps: usize) {
    let mut text = String::from("name = \"one\"\nversion = \"1.0.0\"\n");
    for i in 0..steps {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nplugin = \"{}\"\n",
            weir_artifacts::ECHO
        ));
        if i > 0 {
            text.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("workflows/one.toml"), text).unwrap();
}

/// How much load a row puts on the server.
#[derive(Clone, Copy)]
struct Load {
    clients: usize,
    workers: usize,
    steps: usize,
    /// `REQUESTS` runs in all, or as many as the clients make in this time.
    lasting: Option<Duration>,
}

async fn over_http(host: &Host, load: Load) -> Stats {
    let Load {
        clients,
        workers,
        steps,
        lasting,
    } = load;
    let dir = tempfile::tempdir().unwrap();
    workflow(dir.path(), steps);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("weir.db"), Durability::Normal).unwrap());
    let runner = Runner::new(host.clone(), store, dir.path().join("locks"));
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workflows_dir: Some(dir.path().join("workflows")),
        workers,
        queue: 1024,
        ..ServeConfig::default()
    };
    let server = Server::start(host.clone(), runner, config).await.unwrap();
    let url = format!("http://{}/v1/runs?wait=30s", server.addr);
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
            let (mut latencies, mut unsettled) = (Vec::new(), 0);
            let mut i = c;
            while lasting.map_or(i < REQUESTS, |d| start.elapsed() < d) {
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .json(&json!({"workflow": "one", "input": {"n": i}}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                let body: serde_json::Value = r.json().await.unwrap();
                if body["run"]["status"] != json!("succeeded") {
                    unsettled += 1;
                }
                latencies.push(t.elapsed());
                i += clients;
            }
            (latencies, unsettled)
        });
    }
    let (mut all, mut unsettled) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (latencies, n) = done.unwrap();
        all.extend(latencies);
        unsettled += n;
    }
    let elapsed = start.elapsed();
    server.shutdown().await.unwrap();
    stats(all, elapsed, unsettled)
}

async fn direct(host: &Host, clients: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    workflow(dir.path(), 1);
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
    stats(all, start.elapsed(), 0)
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
            let http = over_http(
                &host,
                Load {
                    clients,
                    workers: 16,
                    steps: 1,
                    lasting: None,
                },
            )
            .await;
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

        let lasting = Duration::from_secs(10);
        println!(
            "## 32 closed-loop clients, a 5-step chain, `?wait=30s`, {} s per row\n",
            lasting.as_secs()
        );
        println!("| workers | runs/s | p50 | p99 | max | unsettled at the wait | vs 8 workers |");
        println!("|---|---|---|---|---|---|---|");
        let mut baseline = None;
        for workers in [8, 32] {
            let load = Load {
                clients: 32,
                workers,
                steps: 5,
                lasting: Some(lasting),
            };
            let row = over_http(&host, load).await;
            let base = *baseline.get_or_insert(row.per_sec);
            println!(
                "| {workers} | {:.0} | {:.2?} | {:.2?} | {:.2?} | {} | {:.2}× |",
                row.per_sec,
                row.p50,
                row.p99,
                row.max,
                row.unsettled,
                row.per_sec / base
            );
        }
        println!();
    });
}
