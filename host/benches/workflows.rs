//! Durable workflow throughput, against baselines measured in the same run:
//!
//! - Weir: a 5-step linear workflow of a trivial step, journaled in SQLite (`normal`), one
//!   run after another; the same with [`CONCURRENT`] runs at a time, against LangGraph at the
//!   same concurrency; and with `full` durability (fsync per commit) at 1 and 64 concurrent
//!   runs, where group commit matters;
//! - the raw floor: the same component called five times per run through a bare
//!   `InstancePre`, with one rusqlite commit per step and nothing else, twice: with
//!   wasmtime's and SQLite's defaults (pooled slots reset by `madvise`, 4 KiB pages), and
//!   tuned as Weir tunes them (`weir::engine::pool`, `weir::store::SQLITE_PAGE_SIZE_BYTES`),
//!   the like-for-like floor. Weir's `normal` row and the floors run in alternating batches,
//!   so that a machine whose speed drifts during the run weighs on all alike; each ratio's
//!   spread over the rounds is printed with it;
//! - LangGraph with `SqliteSaver`, a 5-node linear graph of trivial functions, when its venv
//!   exists (`benches/langgraph/setup`): as it comes (SQLite's default `synchronous=FULL`,
//!   an fsync per commit), and at `synchronous=NORMAL`, the durability of Weir's `normal`.
//!
//! - replay tapes: Weir `normal` on a 5-step workflow whose steps read the wall clock, the
//!   monotonic clock and random bytes (`echo` with `clock`), with tapes on and off, in
//!   alternating batches: what recording for replay costs;
//! - step profiles: Weir `normal` on the 5-step workflow with every step result counted into
//!   its step's profile (the default) and with profiles off, in alternating batches: what
//!   monitoring costs.
//!
//! Run with `cargo bench -p weir --bench workflows`; it prints a Markdown table. With
//! `WEIR_BENCH_PROFILE_RUNS=<n>` it measures only Weir's `normal` row over `n` runs, for a
//! profiler to look at (`WEIR_BENCH_PROFILE_CONCURRENCY=<c>`: `c` runs at a time);
//! `WEIR_BENCH_ONLY_TAPES=1` measures only the replay tapes' rows and
//! `WEIR_BENCH_ONLY_PROFILES=1` only the step profiles' rows;
//! `WEIR_BENCH_PAYLOAD_BYTES=<n>` pads every run's input, and so every step's output, with
//! `n` bytes.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::registry;
use weir::runner::Runner;
use weir::store::{Durability, RunStatus, SqliteStore, Store};
use weir::{Host, HostConfig};

const RUNS: usize = 300;
const STEPS: usize = 5;
/// Runs of Weir `normal` and of the floor, measured in turns: this many batches each.
const NORMAL_RUNS: usize = 4000;
const ROUNDS: usize = 20;
/// Runs in flight at once for the concurrent comparison: enough to keep both cores of a
/// small machine busy and to give LangGraph's thread pool as much overlap as it can use.
const CONCURRENT: usize = 16;

fn workflow_file(dir: &Path, clock: bool) -> std::path::PathBuf {
    let mut text = String::from("name = \"bench\"\nversion = \"1.0.0\"\n");
    for i in 0..STEPS {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nplugin = \"{}\"\n",
            weir_artifacts::ECHO
        ));
        if clock {
            text.push_str("config = { clock = true }\n");
        }
        if i > 0 {
            text.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Run `n`'s input (and, through `echo`, every step's output): a ticket number, padded with
/// `WEIR_BENCH_PAYLOAD_BYTES` bytes of text when that is set.
fn input(n: usize) -> serde_json::Value {
    let pad = std::env::var("WEIR_BENCH_PAYLOAD_BYTES").map_or(0, |v| {
        v.parse()
            .expect("WEIR_BENCH_PAYLOAD_BYTES is a number of bytes")
    });
    if pad == 0 {
        json!({"ticket": n})
    } else {
        json!({"ticket": n, "pad": "x".repeat(pad)})
    }
}

/// What a setup turns on or off; the default is Weir as it ships.
#[derive(Debug, Clone, Copy, Default)]
struct Variant {
    /// The steps read the clocks and random bytes.
    clock: bool,
    /// Replay tapes off.
    tapes_off: bool,
    /// Step profiles off.
    profiles_off: bool,
}

/// Weir with a SQLite journal of its own, the bench workflow registered and warmed up.
struct WeirSetup {
    runner: Runner,
    loaded: Arc<registry::Loaded>,
    next: usize,
    _dir: tempfile::TempDir,
}

impl WeirSetup {
    async fn new(host: &Host, durability: Durability) -> Self {
        Self::with(host, durability, Variant::default()).await
    }

    /// The bench workflow as `variant` says.
    async fn with(host: &Host, durability: Durability, variant: Variant) -> Self {
        let Variant {
            clock,
            tapes_off,
            profiles_off,
        } = variant;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("weir.db"), durability).unwrap());
        let runner = Runner::new(host.clone(), store.clone(), dir.path().join("locks"))
            .with_tapes(!tapes_off)
            .with_profiles(!profiles_off);
        let path = workflow_file(dir.path(), clock);
        let (loaded, _) = registry::register_file(host, store.as_ref(), &path)
            .await
            .unwrap();
        let mut setup = Self {
            runner,
            loaded: Arc::new(loaded),
            next: 0,
            _dir: dir,
        };
        setup.batch(1, 10).await;
        setup
    }

    /// Runs `runs` runs, `concurrency` at a time; returns how long they took.
    async fn batch(&mut self, concurrency: usize, runs: usize) -> Duration {
        let first = self.next;
        self.next += runs;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..concurrency {
            let (runner, loaded) = (self.runner.clone(), self.loaded.clone());
            tasks.spawn(async move {
                for i in (first + worker..first + runs).step_by(concurrency) {
                    // As `weir run` does: the run's creation and its first start are one commit.
                    let run = runner
                        .submit_and_execute(&loaded, input(i), None, |_, _| {})
                        .await
                        .unwrap();
                    assert_eq!(run.status, RunStatus::Succeeded);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        start.elapsed()
    }
}

/// The raw floor: the component through a bare `InstancePre`, one rusqlite commit per step.
struct FloorSetup {
    floor: common::Floor,
    conn: rusqlite::Connection,
    next: usize,
    _dir: tempfile::TempDir,
}

impl FloorSetup {
    /// A floor with wasmtime's and SQLite's defaults, or `tuned` as Weir tunes both (slots
    /// reset by dirtied page, Weir's SQLite page size).
    fn new(tuned: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
        if tuned {
            conn.pragma_update(None, "page_size", weir::store::SQLITE_PAGE_SIZE_BYTES)
                .unwrap();
        }
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE results (run INTEGER, step INTEGER, output TEXT, PRIMARY KEY (run, step))",
        )
        .unwrap();
        let slots = if tuned {
            common::Slots::Warm
        } else {
            common::Slots::Default
        };
        Self {
            floor: common::Floor::new(weir_artifacts::ECHO, slots),
            conn,
            next: 0,
            _dir: dir,
        }
    }

    async fn batch(&mut self, runs: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..runs {
            let run = self.next;
            self.next += 1;
            let mut payload = input(run).to_string();
            for step in 0..STEPS {
                payload = self.floor.call(&payload).await;
                self.conn
                    .execute(
                        "INSERT INTO results (run, step, output) VALUES (?1, ?2, ?3)",
                        rusqlite::params![run as i64, step as i64, payload],
                    )
                    .unwrap();
            }
        }
        start.elapsed()
    }
}

/// Runs/s of one row of the alternating measurement, and the spread of its ratio to Weir.
struct Row {
    runs_per_sec: f64,
    /// Weir's time ÷ this row's time in the round where it was lowest and highest.
    low: f64,
    high: f64,
}

/// Weir `normal` and the two floors, in alternating batches so that the machine's drift
/// falls on all alike: (Weir, the floor with defaults, the floor tuned as Weir is).
async fn normal_against_floors(host: &Host, runs: usize) -> (f64, Row, Row) {
    let mut weir = WeirSetup::new(host, Durability::Normal).await;
    let mut floors = [FloorSetup::new(false), FloorSetup::new(true)];
    for floor in &mut floors {
        floor.batch(10).await;
    }
    let per_round = runs / ROUNDS;
    let mut weir_time = Duration::ZERO;
    let mut rows = [(Duration::ZERO, f64::MAX, 0.0f64); 2];
    for _ in 0..ROUNDS {
        let w = weir.batch(1, per_round).await;
        weir_time += w;
        for (floor, (time, low, high)) in floors.iter_mut().zip(&mut rows) {
            let f = floor.batch(per_round).await;
            let ratio = f.as_secs_f64() / w.as_secs_f64();
            (*low, *high) = (low.min(ratio), high.max(ratio));
            *time += f;
        }
    }
    let total = (per_round * ROUNDS) as f64;
    let [default, warm] = rows.map(|(time, low, high)| Row {
        runs_per_sec: total / time.as_secs_f64(),
        low,
        high,
    });
    (total / weir_time.as_secs_f64(), default, warm)
}

/// Weir `normal` on the clock-reading workflow with tapes on and off, in alternating
/// batches: (runs/s on, runs/s off, the lowest and highest on ÷ off over the rounds).
async fn tapes_on_against_off(host: &Host, runs: usize) -> (f64, f64, f64, f64) {
    let on = Variant {
        clock: true,
        ..Variant::default()
    };
    let off = Variant {
        tapes_off: true,
        ..on
    };
    on_against_off(host, runs, on, off).await
}

/// Weir `normal` with step profiles on and off, in alternating batches.
async fn profiles_on_against_off(host: &Host, runs: usize) -> (f64, f64, f64, f64) {
    let off = Variant {
        profiles_off: true,
        ..Variant::default()
    };
    on_against_off(host, runs, Variant::default(), off).await
}

/// Weir `normal` as `on` and as `off` says, in alternating batches: (runs/s on, runs/s off,
/// the lowest and highest on ÷ off over the rounds).
async fn on_against_off(
    host: &Host,
    runs: usize,
    on: Variant,
    off: Variant,
) -> (f64, f64, f64, f64) {
    let mut on = WeirSetup::with(host, Durability::Normal, on).await;
    let mut off = WeirSetup::with(host, Durability::Normal, off).await;
    let per_round = runs / ROUNDS;
    let (mut on_time, mut off_time) = (Duration::ZERO, Duration::ZERO);
    let (mut low, mut high) = (f64::MAX, 0.0f64);
    for _ in 0..ROUNDS {
        let a = on.batch(1, per_round).await;
        let b = off.batch(1, per_round).await;
        let ratio = b.as_secs_f64() / a.as_secs_f64();
        (low, high) = (low.min(ratio), high.max(ratio));
        on_time += a;
        off_time += b;
    }
    let total = (per_round * ROUNDS) as f64;
    (
        total / on_time.as_secs_f64(),
        total / off_time.as_secs_f64(),
        low,
        high,
    )
}

/// LangGraph's runs/s with its checkpointer's connection at SQLite `synchronous` setting
/// `synchronous` (`FULL`, its default, or `NORMAL`), `concurrency` runs at a time (on a pool
/// of threads sharing the checkpointer when more than one).
fn langgraph_runs_per_sec(runs: usize, synchronous: &str, concurrency: usize) -> Option<f64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/langgraph");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return None;
    }
    let out = std::process::Command::new(python)
        .arg(root.join("bench.py"))
        .arg(runs.to_string())
        .arg(synchronous)
        .arg(concurrency.to_string())
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
            let concurrency = std::env::var("WEIR_BENCH_PROFILE_CONCURRENCY").map_or(1, |c| {
                c.parse()
                    .expect("WEIR_BENCH_PROFILE_CONCURRENCY is a number of runs")
            });
            let mut weir = WeirSetup::new(&host, Durability::Normal).await;
            let took = weir.batch(concurrency, runs).await;
            let normal = runs as f64 / took.as_secs_f64();
            println!("Weir, SQLite `normal`, {concurrency} at a time: {normal:.0} runs/s");
            return;
        }
        // Only the step profiles' rows.
        if std::env::var("WEIR_BENCH_ONLY_PROFILES").is_ok() {
            let (on, off, low, high) = profiles_on_against_off(&host, NORMAL_RUNS).await;
            println!(
                "profiles on {on:.0} runs/s, off {off:.0} runs/s: on ÷ off {:.3} (rounds {low:.3}–{high:.3})",
                on / off
            );
            return;
        }
        // Only the replay tapes' rows.
        if std::env::var("WEIR_BENCH_ONLY_TAPES").is_ok() {
            let (on, off, low, high) = tapes_on_against_off(&host, NORMAL_RUNS).await;
            println!(
                "tapes on {on:.0} runs/s, off {off:.0} runs/s: on ÷ off {:.3} (rounds {low:.3}–{high:.3})",
                on / off
            );
            return;
        }
        let (normal, floor, warm) = normal_against_floors(&host, NORMAL_RUNS).await;
        let full_1 = runs_per_sec(&host, Durability::Full, 1, RUNS / 3).await;
        let full_64 = runs_per_sec(&host, Durability::Full, 64, RUNS).await;
        let langgraph = langgraph_runs_per_sec(RUNS, "FULL", 1);
        let langgraph_normal = langgraph_runs_per_sec(RUNS, "NORMAL", 1);
        let concurrent = runs_per_sec(&host, Durability::Normal, CONCURRENT, NORMAL_RUNS).await;
        let langgraph_concurrent = langgraph_runs_per_sec(RUNS, "FULL", CONCURRENT);
        let langgraph_normal_concurrent = langgraph_runs_per_sec(RUNS, "NORMAL", CONCURRENT);
        let (tapes_on, tapes_off, tapes_low, tapes_high) =
            tapes_on_against_off(&host, NORMAL_RUNS).await;
        let (profiles_on, profiles_off, profiles_low, profiles_high) =
            profiles_on_against_off(&host, NORMAL_RUNS).await;

        println!("## Durable {STEPS}-step workflow, {RUNS} runs (trivial step), this machine\n");
        println!("| system | runs/s | Weir normal ÷ this |");
        println!("|---|---|---|");
        println!("| Weir, SQLite `normal`, sequential | {normal:.0} | 1.00× |");
        let warm_label = if weir::engine::pool::warm_reuse_available() {
            "tuned as Weir is: slots reset by dirtied page, 2 KiB SQLite pages"
        } else {
            "tuned as Weir is: 2 KiB SQLite pages (no PAGEMAP_SCAN here)"
        };
        for (label, row) in [
            ("wasmtime's and SQLite's defaults", floor),
            (warm_label, warm),
        ] {
            println!(
                "| raw floor: InstancePre + one rusqlite commit per step, {label} | {:.0} | {:.2}× (rounds: {:.2}–{:.2}×) |",
                row.runs_per_sec,
                normal / row.runs_per_sec,
                row.low,
                row.high
            );
        }
        print_langgraph_rows(normal, "5 trivial nodes", langgraph, langgraph_normal);
        let full_vs_langgraph = langgraph
            .map(|lg| format!("{:.1}× LangGraph's default", full_1 / lg))
            .unwrap_or_default();
        println!(
            "| Weir, SQLite `full` (fsync per commit), 1 run at a time | {full_1:.0} | {full_vs_langgraph} |"
        );
        println!("| Weir, SQLite `full`, 64 concurrent runs (group commit) | {full_64:.0} | |");
        println!();
        println!("## The same, {CONCURRENT} runs at a time\n");
        println!("| system | runs/s | Weir normal ÷ this |");
        println!("|---|---|---|");
        println!("| Weir, SQLite `normal`, {CONCURRENT} at a time | {concurrent:.0} | 1.00× |");
        print_langgraph_rows(
            concurrent,
            &format!("{CONCURRENT} threads"),
            langgraph_concurrent,
            langgraph_normal_concurrent,
        );
        println!();
        println!("## Replay tapes: {STEPS} steps reading the clocks and random bytes, sequential\n");
        println!("| system | runs/s | tapes on ÷ this |");
        println!("|---|---|---|");
        println!("| Weir, SQLite `normal`, tapes on (the default) | {tapes_on:.0} | 1.00× |");
        println!(
            "| Weir, SQLite `normal`, tapes off | {tapes_off:.0} | {:.2}× (rounds: {tapes_low:.2}–{tapes_high:.2}×) |",
            tapes_on / tapes_off
        );
        println!();
        println!("## Step profiles: {STEPS} steps, each result counted in the journal, sequential\n");
        println!("| system | runs/s | profiles on ÷ this |");
        println!("|---|---|---|");
        println!("| Weir, SQLite `normal`, profiles on (the default) | {profiles_on:.0} | 1.00× |");
        println!(
            "| Weir, SQLite `normal`, profiles off | {profiles_off:.0} | {:.2}× (rounds: {profiles_low:.2}–{profiles_high:.2}×) |",
            profiles_on / profiles_off
        );
        println!();
    });
}

/// LangGraph's two rows, as it comes and at `synchronous=NORMAL`, each with `weir`'s runs/s
/// divided by its own; `how` says how its runs were driven.
fn print_langgraph_rows(weir: f64, how: &str, as_it_comes: Option<f64>, normal: Option<f64>) {
    let (Some(lg), Some(lg_normal)) = (as_it_comes, normal) else {
        println!("| LangGraph + SqliteSaver | not measured: run benches/langgraph/setup first | |");
        return;
    };
    println!(
        "| LangGraph + SqliteSaver, {how} (its default: fsync per commit) | {lg:.0} | {:.1}× |",
        weir / lg
    );
    println!(
        "| LangGraph + SqliteSaver, {how}, `synchronous=NORMAL` (the durability of Weir `normal`) | {lg_normal:.0} | {:.1}× |",
        weir / lg_normal
    );
}

/// Weir's runs/s at `durability`, `concurrency` runs at a time.
async fn runs_per_sec(host: &Host, durability: Durability, concurrency: usize, runs: usize) -> f64 {
    let mut weir = WeirSetup::new(host, durability).await;
    runs as f64 / weir.batch(concurrency, runs).await.as_secs_f64()
}
