//! Steps in Python, JavaScript and C: the example plugins, built from source by the same
//! code as `weir build`, run through the host exactly like the Rust plugins (output, logs,
//! config, a limit hit, a denied grant); and `weir new` projects in all four languages build
//! and pass their own test cases.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use serde_json::{Value, json};
use weir::build::{self, Lang, Project, cases, scaffold};
use weir::capabilities::config::StepConfig;
use weir::capabilities::files::DirGrant;
use weir::capabilities::log::{LogLevel, LogSource};
use weir::{Grants, Limits, StepFailure, StepSpec};

use crate::support::{denied, ok, run, spec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the example plugin `plugins/<name>` once per test process; returns the component.
pub fn component(name: &str) -> String {
    static BUILT: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Mutex::default);
    // One build at a time: they are CPU-bound, and two of the same project would race.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let project = Project::open(&repo().join("plugins").join(name), None).unwrap();
    let output = build::build(&project, false)
        .unwrap_or_else(|e| panic!("building plugins/{name}: {e:#}"))
        .outputs[0]
        .to_string_lossy()
        .into_owned();
    built.insert(name.to_string(), output.clone());
    output
}

fn with_config(config: Value) -> StepSpec {
    StepSpec {
        config: StepConfig::from_value(config).unwrap(),
        ..spec(Limits::default())
    }
}

fn fuel(units: u64) -> StepSpec {
    spec(Limits {
        fuel: Some(units),
        ..Limits::default()
    })
}

fn guest_logs(report: &weir::AttemptReport) -> Vec<(LogLevel, String)> {
    report
        .logs
        .iter()
        .filter(|l| l.source == LogSource::Guest)
        .map(|l| (l.level, l.message.clone()))
        .collect()
}

fn model_denied(report: &weir::AttemptReport, alias: &str) {
    // A step that fails after a refusal failed because of it: the host reports the denial.
    let (capability, target, detail) = denied(report);
    assert_eq!((capability, target), ("model", alias));
    assert!(detail.contains("not granted"), "{detail}");
    assert_eq!(report.denials.len(), 1, "{:?}", report.denials);
    assert_eq!(report.denials[0].capability, "model");
    assert_eq!(report.denials[0].target, alias);
}

#[tokio::test]
async fn python_text_stats() {
    let plugin = component("text-stats-py");
    let ticket = json!({
        "subject": "Refund",
        "body": "The order is late and I want my money back. This is the second time!"
    });
    let report = run(&plugin, &spec(Limits::default()), &ticket.to_string()).await;
    let output = ok(&report);
    assert_eq!(output.payload["language"], "en");
    assert_eq!(output.payload["words"], 16);
    assert_eq!(output.payload["sentences"], 2);
    assert_eq!(output.route.as_deref(), Some("en"));
    assert!(
        output.confidence.unwrap() >= 0.75,
        "{:?}",
        output.confidence
    );
    assert_eq!(output.payload["top_words"].as_array().unwrap().len(), 5);
    assert_eq!(
        guest_logs(&report),
        [(
            LogLevel::Info,
            "16 words, 2 sentences, language en (stopwords)".to_string()
        )]
    );

    let french = json!("Le colis est arrivé et la boîte est vide, je ne suis pas content.");
    let report = run(
        &plugin,
        &with_config(json!({"top": 2})),
        &french.to_string(),
    )
    .await;
    let output = ok(&report);
    assert_eq!(output.payload["language"], "fr");
    assert_eq!(output.payload["top_words"].as_array().unwrap().len(), 2);

    // Input the step refuses, in its own words; a bad config value too.
    let report = run(&plugin, &spec(Limits::default()), r#""   ""#).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidInput { message }) if message.contains("empty")),
        "{:?}",
        report.outcome
    );
    let report = run(&plugin, &with_config(json!({"top": -1})), r#""hello""#).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidInput { message }) if message.contains("`top`")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn python_limits_and_grants() {
    let plugin = component("text-stats-py");
    // Fuel is enough for a short text, not for a long one.
    let short = run(&plugin, &fuel(20_000_000), r#""the fuel lasts""#).await;
    assert_eq!(ok(&short).payload["words"], 3);
    let long = json!("the fuel runs out ".repeat(20_000)).to_string();
    let report = run(&plugin, &fuel(20_000_000), &long).await;
    assert!(
        matches!(
            report.outcome,
            Err(StepFailure::FuelExhausted { limit: 20_000_000 })
        ),
        "{:?}",
        report.outcome
    );
    // Unsure of the language, the step asks a model it was not granted.
    let report = run(
        &plugin,
        &with_config(json!({"alias": "smart"})),
        r#""xyzzy 42""#,
    )
    .await;
    model_denied(&report, "smart");
}

#[tokio::test]
async fn js_reshape() {
    let plugin = component("reshape-js");
    let order = json!({
        "order": {"id": "A-17", "lines": [{"sku": "kb-1", "qty": 2}, {"sku": "ms-3", "qty": 1}]},
        "customer": {"email": "ada@example.com"}
    });
    let config = json!({
        "mapping": {"id": "order.id", "skus": "order.lines[*].sku", "first_qty": "order.lines[0].qty",
                    "contact.email": "customer.email", "contact.phone": "customer.phone"},
        "required": ["id", "contact.email"],
        "defaults": {"contact.phone": "unknown"}
    });
    let report = run(&plugin, &with_config(config.clone()), &order.to_string()).await;
    let output = ok(&report);
    assert_eq!(
        output.payload,
        json!({"id": "A-17", "skus": ["kb-1", "ms-3"], "first_qty": 2,
               "contact": {"email": "ada@example.com", "phone": "unknown"}})
    );
    assert_eq!(output.confidence, Some(1.0));
    assert_eq!(
        guest_logs(&report),
        [(LogLevel::Info, "reshaped 4 of 5 fields".to_string())]
    );

    // A required field that is missing, with no model to ask: the step says which.
    let report = run(&plugin, &with_config(config.clone()), r#"{"order": {}}"#).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidInput { message }) if message.contains("id, contact.email")),
        "{:?}",
        report.outcome
    );
    // A config mistake is named.
    let report = run(&plugin, &with_config(json!({"mapping": [1]})), "{}").await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidInput { message }) if message.contains("`mapping`")),
        "{:?}",
        report.outcome
    );
    let report = run(&plugin, &spec(Limits::default()), "{}").await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::Fatal { message }) if message.contains("`mapping` is required")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn js_limits_and_grants() {
    let plugin = component("reshape-js");
    let mapping = json!({"mapping": {"id": "id"}, "required": ["id"]});
    let report = run(
        &plugin,
        &StepSpec {
            limits: Limits {
                fuel: Some(200_000),
                ..Limits::default()
            },
            ..with_config(mapping.clone())
        },
        r#"{"id": 1}"#,
    )
    .await;
    assert!(
        matches!(
            report.outcome,
            Err(StepFailure::FuelExhausted { limit: 200_000 })
        ),
        "{:?}",
        report.outcome
    );
    // The id is missing: the step asks a model it was not granted for it.
    let mut config = mapping;
    config["alias"] = json!("fast");
    let report = run(&plugin, &with_config(config), r#"{"body": "order A-9"}"#).await;
    model_denied(&report, "fast");
}

#[tokio::test]
async fn c_fingerprint() {
    let plugin = component("fingerprint-c");
    let a = json!({"subject": "Refund", "body": "My order #42 never arrived; please refund it."});
    let b = json!("refund\n my ORDER 42 never arrived, please REFUND it!!");
    let c = json!({"body": "My order #42 never arrived; please refund it. Thanks, Ada"});
    let plain = spec(Limits::default());
    let [ra, rb, rc] = [&a, &b, &c].map(|v| v.to_string());
    let (ra, rb, rc) = (
        run(&plugin, &plain, &ra).await,
        run(&plugin, &plain, &rb).await,
        run(&plugin, &plain, &rc).await,
    );
    let (oa, ob, oc) = (ok(&ra), ok(&rb), ok(&rc));
    assert_eq!(oa.payload["tokens"], 9);
    assert_eq!(oa.payload["unique_tokens"], 8);
    // Case, punctuation and spacing do not change the fingerprint; words do.
    assert_eq!(oa.payload["fingerprint"], ob.payload["fingerprint"]);
    assert_ne!(oa.payload["fingerprint"], oc.payload["fingerprint"]);
    let hash = |o: &weir::StepOutput| {
        u64::from_str_radix(o.payload["simhash"].as_str().unwrap(), 16).unwrap()
    };
    let near = (hash(oa) ^ hash(oc)).count_ones();
    let far_text = json!("The quarterly invoice for the enterprise plan is attached below.");
    let far = run(&plugin, &plain, &far_text.to_string()).await;
    let distant = (hash(oa) ^ hash(ok(&far))).count_ones();
    assert!(
        near < distant,
        "near-duplicate {near} bits apart, unrelated {distant}"
    );
    assert_eq!(
        guest_logs(&ra),
        [(
            LogLevel::Info,
            "9 tokens, 8 unique, 0 stopwords skipped".to_string()
        )]
    );
    assert!(
        matches!(&run(&plugin, &plain, "[1]").await.outcome, Err(StepFailure::InvalidInput { message }) if message.contains("\"body\"")),
    );
}

#[tokio::test]
async fn c_limits_and_grants() {
    let plugin = component("fingerprint-c");
    let words = "lorem ipsum dolor sit amet ".repeat(20_000);
    let report = run(&plugin, &fuel(1_000_000), &json!(words).to_string()).await;
    assert!(
        matches!(
            report.outcome,
            Err(StepFailure::FuelExhausted { limit: 1_000_000 })
        ),
        "{:?}",
        report.outcome
    );

    // The stopwords file is read through a directory grant, and only through one.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stop.txt"), "please\nmy\nit\n").unwrap();
    let config = json!({"stopwords": "/lists/stop.txt"});
    let text = json!("My order never arrived; please refund it.").to_string();
    let denied = run(&plugin, &with_config(config.clone()), &text).await;
    assert!(
        matches!(&denied.outcome, Err(StepFailure::Fatal { message }) if message.contains("/lists/stop.txt") && message.contains("granted")),
        "{:?}",
        denied.outcome
    );
    let granted = StepSpec {
        grants: Grants {
            dirs: vec![
                format!("{}:/lists", dir.path().display())
                    .parse::<DirGrant>()
                    .unwrap(),
            ],
            ..Grants::default()
        },
        ..with_config(config)
    };
    let report = run(&plugin, &granted, &text).await;
    assert_eq!(ok(&report).payload["tokens"], 7);
    assert_eq!(
        guest_logs(&report),
        [(
            LogLevel::Info,
            "7 tokens, 7 unique, 3 stopwords skipped".to_string()
        )]
    );
}

/// `weir new` in every language: the project builds and passes its own cases, and a case
/// that expects the wrong answer fails with the difference.
#[tokio::test]
async fn scaffolds_build_and_pass_their_tests() {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolds");
    std::fs::create_dir_all(&scratch).unwrap();
    for lang in Lang::ALL {
        let root = tempfile::Builder::new()
            .prefix("new-")
            .tempdir_in(&scratch)
            .unwrap();
        let dir = root.path().join(format!("hello-{lang}"));
        scaffold::create(&dir, lang).unwrap();
        // Keep cargo's dependency builds between runs: only the step crate itself rebuilds.
        let kept = scratch.join("rust-target");
        if lang == Lang::Rust && kept.is_dir() {
            std::fs::rename(&kept, dir.join("target")).unwrap();
        }
        let project = Project::open(&dir, None).unwrap();
        assert_eq!(project.lang, lang);
        let built = tokio::task::spawn_blocking({
            let project = project.clone();
            move || build::build(&project, false)
        })
        .await
        .unwrap();
        if lang == Lang::Rust {
            let _ = std::fs::rename(dir.join("target"), &kept);
        }
        let built = built.unwrap_or_else(|e| panic!("weir build of a new {lang} step: {e:#}"));
        assert_eq!(built.outputs[0], project.output());

        let host = crate::support::host();
        let plugin = host.load_plugin_file(&built.outputs[0]).await.unwrap();
        assert_eq!(plugin.meta().name, format!("hello-{lang}"));
        let files = cases::case_files(&dir).unwrap();
        assert_eq!(files.len(), 3);
        for file in &files {
            let result = cases::run_case(host, &plugin, file).await.unwrap();
            assert!(
                result.mismatch.is_none(),
                "{lang} {}: {:?}",
                file.display(),
                result.mismatch
            );
        }
        let wrong = dir.join("tests/wrong.json");
        std::fs::write(
            &wrong,
            r#"{"input": {"text": "a b"}, "expect": {"payload": {"words": 3, "shout": "A B!"}}}"#,
        )
        .unwrap();
        let result = cases::run_case(host, &plugin, &wrong).await.unwrap();
        let why = result.mismatch.expect("a wrong expectation fails");
        assert!(why.contains(r#""words":2"#), "{lang}: {why}");
    }
}

/// A second build of an unchanged project is skipped; a changed source builds again, and a
/// syntax error comes back with the toolchain's message and leaves no current output.
#[tokio::test]
async fn builds_are_incremental_and_errors_name_the_source() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("inc-c");
    scaffold::create(&dir, Lang::C).unwrap();
    let project = Project::open(&dir, None).unwrap();
    assert!(build::build(&project, false).unwrap().rebuilt);
    assert!(!build::build(&project, false).unwrap().rebuilt);
    assert!(build::build(&project, true).unwrap().rebuilt);

    let source = dir.join("step.c");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        text.replace("size_t words = 0;", "size_t words = 0"),
    )
    .unwrap();
    let err = format!("{:#}", build::build(&project, false).unwrap_err());
    assert!(
        err.contains("clang failed") && err.contains("step.c:"),
        "{err}"
    );
    std::fs::write(&source, &text).unwrap();
    assert!(build::build(&project, false).unwrap().rebuilt);
}

fn weir_cmd(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.current_dir(dir)
        .env("WEIR_DATA_DIR", dir.join("data"))
        .arg("--cache-dir")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache"));
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `weir new`, `weir test` and `weir build` as a user types them, mistakes included.
#[test]
fn new_test_and_build_from_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let out = weir_cmd(root.path())
        .args(["new", "word-count", "--lang", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = weir_cmd(root.path())
        .args(["test", "word-count"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("3 passed, 0 failed (3 cases)\n"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(
        root.path().join("word-count/tests/wrong.json"),
        r#"{"input": {"text": "x"}, "expect": {"failure": "invalid_input"}}"#,
    )
    .unwrap();
    let out = weir_cmd(root.path())
        .args(["test", "word-count"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED wrong.json: expected failure invalid_input, got payload"),
        "{report}"
    );
    std::fs::write(
        root.path().join("word-count/tests/wrong.json"),
        "{\"input\": 1}",
    )
    .unwrap();
    let out = weir_cmd(root.path())
        .args(["test", "word-count"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("wrong.json is not a valid test case: missing field `expect`"),
        "{}",
        text(&out.stderr)
    );

    for (args, message) in [
        (
            vec!["new", "word-count", "--lang", "c"],
            "already exists and is not empty",
        ),
        (vec!["new", "Bad_Name"], "is not a valid step name"),
        (
            vec!["new", "x", "--lang", "cobol"],
            "unknown language \"cobol\": expected rust, python, js or c",
        ),
        (vec!["build", "."], "holds no step project"),
    ] {
        let out = weir_cmd(root.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // A missing toolchain says what to install.
    let out = weir_cmd(root.path())
        .args(["new", "py-step", "--lang", "python"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = weir_cmd(root.path())
        .env("WEIR_TOOLCHAINS", root.path().join("none"))
        .env("PATH", "/usr/bin:/bin")
        .args(["build", "py-step"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("componentize-py 0.25.1 (needed to build Python steps) is not installed")
            && err.contains("scripts/toolchains python"),
        "{err}"
    );
}

/// `weir dev`: builds the workflow's step project, runs it, and on a save rebuilds and runs
/// the new code.
#[test]
fn dev_rebuilds_and_reruns_on_save() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    let root = tempfile::tempdir().unwrap();
    scaffold::create(&root.path().join("shout"), Lang::C).unwrap();
    std::fs::write(
        root.path().join("workflow.toml"),
        "name = \"dev-loop\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"shout\"\nplugin = \"shout/build/shout.wasm\"\n",
    )
    .unwrap();
    std::fs::write(root.path().join("input.json"), r#"{"text": "hello weir"}"#).unwrap();
    let mut child = weir_cmd(root.path())
        .args(["dev", "workflow.toml", "--input", "input.json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    // stdout and stderr arrive on two threads, so their lines interleave in either order: a
    // needle may already be among the lines seen while waiting for another.
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        if seen.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return true;
                }
            }
        }
        false
    };
    let mut seen = Vec::new();
    let first = wait_for("HELLO WEIR!", &mut seen) && wait_for("watching", &mut seen);
    if first {
        let source = root.path().join("shout/step.c");
        let code = std::fs::read_to_string(&source).unwrap();
        std::fs::write(
            &source,
            code.replace("suffix ? suffix : \"!\"", "suffix ? suffix : \"?!\""),
        )
        .unwrap();
    }
    let second = first && wait_for("HELLO WEIR?!", &mut seen);
    // A run writes the journal; that must not set off another run.
    if second {
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
            seen.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first,
        "the first run never showed its output:\n{}",
        seen.join("\n")
    );
    assert!(second, "no rerun after the save:\n{}", seen.join("\n"));
    let runs = seen.iter().filter(|l| l.starts_with("run ")).count();
    assert_eq!(
        runs,
        2,
        "one run at the start, one per save:\n{}",
        seen.join("\n")
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("== changed: ") && l.contains("step.c")),
        "{}",
        seen.join("\n")
    );
}
