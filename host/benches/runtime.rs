//! Runtime benchmarks, each against a baseline measured in the same run:
//!
//! 1. per-step overhead of Weir's full path (fresh sandbox from the cached `InstancePre`,
//!    limits, WASI context from grants, log/config capabilities, output checks) against the
//!    raw wasmtime floor (same component, `InstancePre` + pooling + epoch, nothing else);
//! 2. the price of fuel metering and epoch interruption on loop-heavy and call-heavy code;
//! 3. cold start: a new host loading a plugin from the compile cache vs compiling it;
//! 4. loading a compiled entry by mapping it (BLAKE3 over the mapped file, then
//!    `Component::deserialize_file`, as the cache does) against reading and copying it
//!    (sha256 over the bytes read, then `Component::deserialize`), the cache's old path.
//!
//! Run with `cargo bench -p weir --bench runtime`; it prints Markdown tables.

use std::time::{Duration, Instant};

use wasmtime::{Config, Engine, Module, Store};
use weir::{AttemptContext, Host, HostConfig, StepSpec};

mod common;

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_nanos() as f64 / 1000.0)
}

async fn step_overhead() {
    let component_path = weir_artifacts::ECHO;
    let input = r#"{"ticket":"hello"}"#;

    let floor = common::Floor::new(component_path, common::Slots::Default);
    let warm = common::Floor::new(component_path, common::Slots::Warm);
    let host = Host::new(HostConfig::default()).unwrap();
    let plugin = host
        .load_plugin_file(component_path.as_ref())
        .await
        .unwrap();
    let spec = StepSpec::default();
    // Batches of the three alternate, so drift in the machine (frequency, background work)
    // falls on all alike; each is the median of its batches.
    let (mut raw, mut raw_warm, mut weir) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..16 {
        raw.push(
            common::per_op(1, 300, || async {
                assert!(!floor.call(input).await.is_empty());
            })
            .await,
        );
        raw_warm.push(
            common::per_op(1, 300, || async {
                assert!(!warm.call(input).await.is_empty());
            })
            .await,
        );
        weir.push(
            common::per_op(1, 300, || async {
                let report = host
                    .run_step(&plugin, &spec, input, AttemptContext::default())
                    .await
                    .unwrap();
                assert!(report.outcome.is_ok());
            })
            .await,
        );
        if round == 0 {
            // The first round warms them up; it does not count.
            raw.clear();
            raw_warm.clear();
            weir.clear();
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (raw_time, warm_time, weir_time) =
        (median(&mut raw), median(&mut raw_warm), median(&mut weir));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let warm_label = if host.is_pooling() && weir::engine::pool::warm_reuse_available() {
        "slots reset by dirtied page, as Weir does"
    } else {
        "no PAGEMAP_SCAN here: the same as the defaults"
    };

    println!("## Per-step overhead (echo component, sequential)\n");
    println!("| path | time per step | Weir ÷ this |");
    println!("|---|---|---|");
    println!(
        "| raw wasmtime floor (InstancePre + pooling + epoch), wasmtime's default slot reset | {} | {:.2}× |",
        micros(raw_time),
        ratio(weir_time, raw_time)
    );
    println!(
        "| raw wasmtime floor, {warm_label} | {} | {:.2}× |",
        micros(warm_time),
        ratio(weir_time, warm_time)
    );
    println!(
        "| Weir full path (limits, WASI from grants, capabilities, output checks) | {} | 1.00× |",
        micros(weir_time),
    );
    println!();
}

const LOOP_HEAVY: &str = r#"(module (func (export "run") (param $n i32) (result i32) (local $acc i32)
    (loop $l (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))
    (local.get $acc)))"#;

const CALL_HEAVY: &str = r#"(module
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "run") (param $n i32) (result i32) (call $fib (local.get $n))))"#;

fn time_guest(wat: &str, arg: i32, fuel: bool, epoch: bool) -> Duration {
    let mut config = Config::new();
    config.consume_fuel(fuel).epoch_interruption(epoch);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let mut store = Store::new(&engine, ());
        if fuel {
            store.set_fuel(u64::MAX).unwrap();
        }
        if epoch {
            store.set_epoch_deadline(u64::MAX / 2);
        }
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        let start = Instant::now();
        std::hint::black_box(run.call(&mut store, arg).unwrap());
        samples.push(start.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn metering_cost() {
    println!("## Price of fuel and epoch instrumentation (raw wasmtime, same run)\n");
    println!("| guest | neither | epoch only | fuel only | fuel + epoch |");
    println!("|---|---|---|---|---|");
    for (name, wat, arg) in [
        ("loop-heavy (100M iterations)", LOOP_HEAVY, 100_000_000),
        ("call-heavy (fib 30)", CALL_HEAVY, 30),
    ] {
        let base = time_guest(wat, arg, false, false);
        let cell = |fuel, epoch| {
            let t = time_guest(wat, arg, fuel, epoch);
            format!(
                "{:.1} ms ({:.2}×)",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / base.as_secs_f64()
            )
        };
        println!(
            "| {name} | {:.1} ms (1.00×) | {} | {} | {} |",
            base.as_secs_f64() * 1e3,
            cell(false, true),
            cell(true, false),
            cell(true, true)
        );
    }
    println!();
}

async fn cold_start() {
    println!(
        "## Cold start: loading a plugin in a new host (digest check, instantiate, describe())\n"
    );
    println!(
        "| plugin | size | new host (engine + pool) | load, compiling | load, from compile cache | speed-up |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, path) in [
        ("echo", weir_artifacts::ECHO),
        ("clean-text", weir_artifacts::CLEAN_TEXT),
        ("validate-json", weir_artifacts::VALIDATE_JSON),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let config = HostConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..HostConfig::default()
        };
        // Returns (time to build the host, time to load the plugin, where its code came from).
        let load = |config: HostConfig| async move {
            let start = Instant::now();
            let host = Host::new(config).unwrap();
            let host_time = start.elapsed();
            let start = Instant::now();
            let plugin = host.load_plugin_file(path.as_ref()).await.unwrap();
            (host_time, start.elapsed(), plugin.compile_source())
        };
        let (_, compile, source) = load(config.clone()).await;
        assert_eq!(source, weir::engine::CompileSource::Compiled);
        let mut hosts = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..9 {
            let (host_time, t, source) = load(config.clone()).await;
            assert_eq!(source, weir::engine::CompileSource::Cache);
            hosts.push(host_time);
            cached.push(t);
        }
        hosts.sort();
        cached.sort();
        let (host_time, cached) = (hosts[hosts.len() / 2], cached[cached.len() / 2]);
        let size = std::fs::metadata(path).unwrap().len();
        println!(
            "| {name} | {} KiB | {:.2} ms | {:.1} ms | {:.2} ms | {:.0}× |",
            size / 1024,
            host_time.as_secs_f64() * 1e3,
            compile.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            compile.as_secs_f64() / cached.as_secs_f64()
        );
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects speed.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(step_overhead());
    metering_cost();
    runtime.block_on(cold_start());
    cache_load_paths();
}

/// The two ways of loading one compiled entry, median of 15 each, alternating.
#[expect(
    unsafe_code,
    reason = "deserializing code this benchmark compiled and wrote itself"
)]
fn cache_load_paths() {
    use sha2::Digest as _;
    println!("## Loading a compiled entry: mapped vs read and copied\n");
    println!(
        "| plugin | compiled size | read + sha256 + deserialize | map + BLAKE3 + deserialize_file | speed-up |"
    );
    println!("|---|---|---|---|---|");
    let engine = Engine::new(&Config::new()).unwrap();
    for (name, path) in [
        ("echo", weir_artifacts::ECHO),
        ("clean-text", weir_artifacts::CLEAN_TEXT),
        ("validate-json", weir_artifacts::VALIDATE_JSON),
    ] {
        let component = wasmtime::component::Component::from_file(&engine, path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("entry.cwasm");
        let compiled = component.serialize().unwrap();
        std::fs::write(&entry, &compiled).unwrap();
        let (sha, b3) = (sha2::Sha256::digest(&compiled), blake3::hash(&compiled));
        let (mut copied, mut mapped) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let start = Instant::now();
            let bytes = std::fs::read(&entry).unwrap();
            assert_eq!(sha2::Sha256::digest(&bytes), sha);
            // SAFETY: the bytes are `Component::serialize`'s output, checked just above.
            let c = unsafe { wasmtime::component::Component::deserialize(&engine, &bytes) };
            drop(c.unwrap());
            copied.push(start.elapsed());
            let start = Instant::now();
            let digest = blake3::Hasher::new()
                .update_mmap(&entry)
                .unwrap()
                .finalize();
            assert_eq!(digest, b3);
            // SAFETY: as above; the file is not changed while mapped.
            let c = unsafe { wasmtime::component::Component::deserialize_file(&engine, &entry) };
            drop(c.unwrap());
            mapped.push(start.elapsed());
        }
        copied.sort();
        mapped.sort();
        let (copied, mapped) = (copied[7], mapped[7]);
        println!(
            "| {name} | {} KiB | {:.2} ms | {:.2} ms | {:.1}× |",
            compiled.len() / 1024,
            copied.as_secs_f64() * 1e3,
            mapped.as_secs_f64() * 1e3,
            copied.as_secs_f64() / mapped.as_secs_f64()
        );
    }
    println!();
}
