//! Replay speed: `weir eval` over recorded runs, against the live runs it replays, measured
//! in the same run on the same machine.
//!
//! - live: [`RUNS`] runs of a 5-step workflow whose every step asks a model once (the
//!   provider stand-in over loopback HTTP, answering at once), journaled in SQLite
//!   (`normal`), one run after another;
//! - replayed: `weir eval`'s engine (`weir::eval::evaluate`) over those same runs with the
//!   recorded version as the candidate, every model answer taken from the record
//!   (`--on-miss fail`: a miss would be a new failure, and none is allowed), each case in the
//!   evaluation's scratch journal and compared step by step with its record.
//!
//! - live again, [`SLOW_RUNS`] runs with the stand-in answering each call in
//!   [`MODEL_LATENCY_MS`] ms, as a fast hosted model does: what a replay does not wait for.
//!
//! The bench checks what it measured: every run succeeded live, every case agreed, and the
//! provider saw no request during the evaluation. Run with `cargo bench -p weir --bench
//! replay`; it prints a Markdown table. `WEIR_BENCH_REPLAY_RUNS=<n>` measures another number
//! of runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::eval::Selection;
use weir::model::{ModelConfig, Models};
use weir::registry;
use weir::replay::{Matching, OnMiss, Options};
use weir::runner::Runner;
use weir::store::{Durability, RunStatus, SqliteStore, Store};
use weir::{Host, HostConfig};
use weir_provider::{Provider, Reply};

/// Recorded runs, as the figure asks.
const RUNS: usize = 1_000;
const STEPS: usize = 5;
/// Runs before the timed ones: the compile cache and SQLite warm up on these.
const WARM_UP: usize = 10;
/// Live runs against a model with a hosted model's latency, and that latency.
const SLOW_RUNS: usize = 20;
const MODEL_LATENCY_MS: u64 = 100;

/// A chain of `echo` steps, each asking the `smart` model one question.
fn workflow_text() -> String {
    let mut text = String::from("name = \"replayed\"\nversion = \"1.0.0\"\n");
    for i in 0..STEPS {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nplugin = \"{}\"\ngrants = {{ models = [\"smart\"] }}\n\
             config = {{ ask = [\"Summarise part {i} of the ticket\"], alias = \"smart\" }}\n",
            weir_artifacts::ECHO
        ));
        if i > 0 {
            text.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    text
}

/// The stand-in as the `smart` alias, with the answer cache off: every recorded ticket is
/// another question in production, and a cache would answer all runs but the first here.
fn models(provider: &Provider) -> Models {
    let text = format!(
        "[policy]\ncache-ttl = \"0s\"\n[providers.stand_in]\nbase-url = \"{}\"\ntimeout = \"5s\"\n\
         [models.smart]\nprovider = \"stand_in\"\nmodel = \"big\"\ninput-price = 2.0\noutput-price = 8.0\n",
        provider.url()
    );
    Models::new(ModelConfig::parse(&text).expect("the bench's model configuration"))
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("WEIR_BENCH_REPLAY_RUNS").map_or(RUNS, |v| {
        v.parse()
            .expect("WEIR_BENCH_REPLAY_RUNS is a number of runs")
    });
    let host = Host::new(HostConfig::default()).unwrap();
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a short summary"));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("weir.db"), Durability::Normal).unwrap());
    let models = models(&provider);
    let runner = Runner::new(host.clone(), store.clone(), dir.path().join("locks"))
        .with_models(models.clone());
    let path = dir.path().join("replayed.toml");
    std::fs::write(&path, workflow_text()).unwrap();
    let (loaded, _) = registry::register_file(&host, store.as_ref(), &path)
        .await
        .unwrap();

    let run_one = |n: usize| {
        let runner = &runner;
        let loaded = &loaded;
        async move {
            let run = runner
                .submit_and_execute(loaded, json!({"ticket": n}), None, |_, _| {})
                .await
                .unwrap();
            assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        }
    };
    for n in 0..WARM_UP {
        run_one(n).await;
    }
    let started = Instant::now();
    for n in WARM_UP..WARM_UP + runs {
        run_one(n).await;
    }
    let live = runs as f64 / started.elapsed().as_secs_f64();
    let asked = provider.calls();
    assert_eq!(
        asked,
        (WARM_UP + runs) * STEPS,
        "every step asked the model"
    );

    let selection = Selection {
        workflow: "replayed".into(),
        version: Some("1.0.0".into()),
        limit: runs,
        ..Selection::default()
    };
    let options = Options {
        matching: Matching::Request(OnMiss::Fail),
        ..Options::default()
    };
    let started = Instant::now();
    let experiment = weir::eval::evaluate(
        &host,
        &store,
        &models,
        &selection,
        &options,
        &[],
        "replayed@1.0.0".into(),
    )
    .await
    .unwrap();
    let replayed = runs as f64 / started.elapsed().as_secs_f64();
    let s = &experiment.summary;
    let n = runs as u64;
    assert_eq!((s.evaluated, s.errors, s.new_failures), (n, 0, 0));
    assert_eq!(
        s.output_agreement.hits, n,
        "every case agreed with its record"
    );
    assert_eq!(
        provider.calls(),
        asked,
        "the evaluation sent no model request"
    );

    // What a live run costs when the model takes as long as a fast hosted one: the
    // replay does not wait on it. Measured after the evaluation, so these runs are not
    // among its cases.
    provider.otherwise(
        Reply::complete("a short summary").after(Duration::from_millis(MODEL_LATENCY_MS)),
    );
    let started = Instant::now();
    for n in 0..SLOW_RUNS {
        run_one(WARM_UP + runs + n).await;
    }
    let slow = SLOW_RUNS as f64 / started.elapsed().as_secs_f64();

    println!(
        "## Replay speed: {runs} recorded {STEPS}-step runs, a model call per step, this machine\n"
    );
    println!("| system | runs/s | replayed ÷ this |");
    println!("|---|---|---|");
    println!(
        "| `weir eval` over the recorded runs, every model answer from the record | {replayed:.0} | 1.00× |"
    );
    println!(
        "| the same runs live, SQLite `normal`, sequential (model over loopback HTTP) | {live:.0} | {:.2}× |",
        replayed / live
    );
    println!(
        "| the same workflow live, the model answering in {MODEL_LATENCY_MS} ms ({SLOW_RUNS} runs) | {slow:.1} | {:.0}× |",
        replayed / slow
    );
    println!();
}
