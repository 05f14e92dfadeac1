//! Steps in four languages side by side, in the same run: the same step (the `weir new`
//! template: count the words of a text, shout it back) written in Rust, Python, JavaScript
//! and C, and each language's example plugin. For each component: its size, compiling it,
//! loading it in a new host from the compile cache (cold start), and the per-step cost of
//! Weir's full path (fresh sandbox from the cached `InstancePre`, call, checks), against the
//! raw wasmtime floor on the Rust template.
//!
//! Run with `cargo bench -p weir --bench polyglot` after `scripts/toolchains`; it prints
//! Markdown tables.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::build::{self, Lang, Project, scaffold};
use weir::{AttemptContext, Host, HostConfig, StepSpec};

mod common;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build_component(dir: &Path) -> PathBuf {
    let project = Project::open(dir, None).unwrap();
    let built =
        build::build(&project, false).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
    built.outputs[0].clone()
}

struct Row {
    name: String,
    lang: Lang,
    path: PathBuf,
    input: &'static str,
    config: serde_json::Value,
}

async fn measure(row: &Row, rust_call: Option<Duration>) -> Duration {
    let size = std::fs::metadata(&row.path).unwrap().len();
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };
    let start = Instant::now();
    let host = Host::new(config.clone()).unwrap();
    host.load_plugin_file(&row.path).await.unwrap();
    let compile = start.elapsed();
    let mut cold = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let host = Host::new(config.clone()).unwrap();
        let plugin = host.load_plugin_file(&row.path).await.unwrap();
        assert_eq!(plugin.compile_source(), weir::engine::CompileSource::Cache);
        cold.push(start.elapsed());
    }
    cold.sort();

    let plugin = host.load_plugin_file(&row.path).await.unwrap();
    let spec = StepSpec {
        config: weir::capabilities::config::StepConfig::from_value(row.config.clone()).unwrap(),
        ..StepSpec::default()
    };
    let report = host
        .run_step(&plugin, &spec, row.input, AttemptContext::default())
        .await
        .unwrap();
    assert!(report.outcome.is_ok(), "{}: {:?}", row.name, report.outcome);
    let call = common::per_op(7, 20, || async {
        let report = host
            .run_step(&plugin, &spec, row.input, AttemptContext::default())
            .await
            .unwrap();
        assert!(report.outcome.is_ok());
    })
    .await;
    let ratio = rust_call.map_or("1.00×".to_string(), |r| {
        format!("{:.1}×", call.as_secs_f64() / r.as_secs_f64())
    });
    println!(
        "| {} | {} | {:.1} MiB | {:.0} ms | {:.1} ms | {:.0} µs | {ratio} |",
        row.name,
        row.lang,
        size as f64 / (1 << 20) as f64,
        compile.as_secs_f64() * 1e3,
        cold[cold.len() / 2].as_secs_f64() * 1e3,
        call.as_secs_f64() * 1e6,
    );
    call
}

async fn run() {
    let scratch = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for lang in Lang::ALL {
        let dir = scratch.path().join(format!("shout-{lang}"));
        scaffold::create(&dir, lang).unwrap();
        rows.push(Row {
            name: "template (shout)".into(),
            lang,
            path: build_component(&dir),
            input: r#"{"text": "hello from weir"}"#,
            config: serde_json::json!({}),
        });
    }
    let examples: [(&str, &str, &'static str, serde_json::Value); 3] = [
        (
            "text-stats-py",
            "example: text-stats",
            r#"{"subject": "Refund", "body": "The order is late and I want my money back."}"#,
            serde_json::json!({}),
        ),
        (
            "reshape-js",
            "example: reshape-json",
            r#"{"order": {"id": "A-1", "lines": [{"sku": "x"}]}}"#,
            serde_json::json!({"mapping": {"id": "order.id", "skus": "order.lines[*].sku"}}),
        ),
        (
            "fingerprint-c",
            "example: fingerprint",
            r#"{"subject": "Refund", "body": "The order is late and I want my money back."}"#,
            serde_json::json!({}),
        ),
    ];
    for (dir, name, input, config) in examples {
        let path = build_component(&repo().join("plugins").join(dir));
        let lang = Project::open(&repo().join("plugins").join(dir), None)
            .unwrap()
            .lang;
        rows.push(Row {
            name: name.into(),
            lang,
            path,
            input,
            config,
        });
    }
    rows.push(Row {
        name: "example: clean-text".into(),
        lang: Lang::Rust,
        path: weir_artifacts::CLEAN_TEXT.into(),
        input: r#"{"subject": "Refund", "body": "The order is late and I want my money back."}"#,
        config: serde_json::json!({}),
    });

    // The floor: the Rust template with nothing but InstancePre, pooling (slots reset as
    // Weir resets them) and epochs.
    let floor = common::Floor::new(rows[0].path.to_str().unwrap(), common::Slots::Warm);
    let raw = common::per_op(7, 20, || async {
        assert!(!floor.call(rows[0].input).await.is_empty());
    })
    .await;

    println!("## Steps in four languages\n");
    println!(
        "| step | language | size | compile | cold start (from cache) | per step | ÷ Rust template |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| raw wasmtime floor (Rust template) | rust | | | | {:.0} µs | |",
        raw.as_secs_f64() * 1e6
    );
    let rust = measure(&rows[0], None).await;
    for row in &rows[1..] {
        measure(row, Some(rust)).await;
    }
    println!();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}
