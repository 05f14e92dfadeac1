//! The second round of attacks: what a step makes the host hold, keep, compute or show
//! outside the limits of its own sandbox (descriptors, resources, disk, guest text, schema
//! checks, blocking opens, the operator's terminal).

use std::time::{Duration, Instant};

use serde_json::json;
use weir::{Limits, StepFailure};
use weir_artifacts as artifacts;

use super::{sandbox_tree, with_dir};
use crate::support::{assert_host_healthy, denied, ok, run, spec, tight};

/// Guest text no limit bounded: a 1 MiB description, a 16 MiB error message, 1 MiB log
/// lines and a hundred refusals of a 1 MiB model alias are each cut to their documented
/// bound, so the whole report (what the journal keeps) stays small.
#[tokio::test]
pub(crate) async fn hostile_text_bomb() {
    use weir::text::MARKER_BYTES;
    let plugin = crate::support::plugin(artifacts::HOSTILE_TEXT_BOMB).await;
    let description = &plugin.meta().description;
    assert!(description.len() <= weir::plugin::MAX_DESCRIPTION_BYTES + MARKER_BYTES);
    assert!(description.ends_with("… [truncated, 1048576 bytes]"));

    let limits = Limits {
        memory_bytes: 128 << 20,
        ..tight()
    };
    let report = run(
        artifacts::HOSTILE_TEXT_BOMB,
        &spec(limits.clone()),
        r#"{"attack":"error"}"#,
    )
    .await;
    match &report.outcome {
        Err(StepFailure::Fatal { message }) => {
            assert!(message.len() <= weir::failure::MAX_MESSAGE_BYTES + MARKER_BYTES);
            assert!(
                message.ends_with("… [truncated, 16777216 bytes]"),
                "{}",
                &message[message.len() - 40..]
            );
        }
        other => panic!("expected fatal, got {:?}", other.as_ref().map(|_| ())),
    }
    let kept = serde_json::to_string(&report).unwrap().len();
    assert!(kept < 32 * 1024, "the report keeps {kept} bytes");

    let report = run(
        artifacts::HOSTILE_TEXT_BOMB,
        &spec(limits.clone()),
        r#"{"attack":"log","lines":4,"bytes":1048576}"#,
    )
    .await;
    ok(&report);
    assert_eq!(report.logs.len(), 4);
    for line in &report.logs {
        assert!(line.message.len() <= weir::capabilities::log::MAX_LINE_BYTES + MARKER_BYTES);
        assert!(line.message.ends_with("… [truncated, 1048576 bytes]"));
    }

    let report = run(
        artifacts::HOSTILE_TEXT_BOMB,
        &spec(limits),
        r#"{"attack":"denials","count":100,"bytes":1048576}"#,
    )
    .await;
    let (capability, target, _) = denied(&report);
    assert_eq!(capability, "model");
    assert!(target.len() <= weir::capabilities::MAX_DENIAL_TARGET_BYTES + MARKER_BYTES);
    assert!(target.ends_with("… [truncated, 1048576 bytes]"), "{target}");
    assert_eq!(report.denials.len(), weir::capabilities::MAX_KEPT_DENIALS);
    assert_eq!(
        report.denials_dropped,
        100 - weir::capabilities::MAX_KEPT_DENIALS as u64
    );
    let kept = serde_json::to_string(&report).unwrap().len();
    assert!(kept < 64 * 1024, "the report keeps {kept} bytes");
    assert_host_healthy().await;
}

/// The bytes the SQLite journal at `db` holds for run `run_id`: every column of every row
/// of every table that names the run.
fn journal_bytes(db: &std::path::Path, run_id: &str) -> Vec<(String, usize)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut total = Vec::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // A run's events are keyed by its number: `(num << 24) + seq`.
        let key = match table.as_str() {
            "runs" => "id = ?1".to_string(),
            "events" => "key > (SELECT num FROM runs WHERE id = ?1) << 24 \
                         AND key < ((SELECT num FROM runs WHERE id = ?1) + 1) << 24"
                .to_string(),
            _ if columns.iter().any(|c| c == "run_id") => "run_id = ?1".to_string(),
            _ => continue,
        };
        let lengths = columns
            .iter()
            .map(|c| format!("coalesce(length(CAST(\"{c}\" AS BLOB)), 0)"))
            .collect::<Vec<_>>()
            .join(" + ");
        let sql = format!("SELECT coalesce(sum({lengths}), 0) FROM \"{table}\" WHERE {key}");
        let bytes: i64 = conn.query_row(&sql, [run_id], |row| row.get(0)).unwrap();
        if bytes > 0 {
            total.push((table, bytes as usize));
        }
    }
    assert!(total.iter().any(|(t, _)| t == "events"), "{total:?}");
    total
}

/// The journal, not only the report, grows by a bounded amount per attempt whatever the
/// guest says: a 16 MiB failure, 64 log lines of 64 KiB and 100 refusals of a 1 MiB alias
/// each leave at most their documented bounds (a failure of 16 KiB, and a refusal's 16 KiB
/// detail, in each of the four places a failure is kept; the 256 KiB log budget; 32 refusals
/// of 256 bytes) and a few KiB of run metadata in the database, every table counted.
#[tokio::test]
async fn the_journal_grows_by_a_bounded_amount_per_attempt() {
    use weir::text::MARKER_BYTES;
    let f = crate::workflows::Fixture::new().await;
    let text = format!(
        "name = \"text\"\nversion = \"1.0.0\"\n[limits]\noutput = \"1KiB\"\n[[steps]]\nid = \"bomb\"\nplugin = {:?}\n",
        artifacts::HOSTILE_TEXT_BOMB
    );
    let path = f.workflow("text.toml", &text);
    // What a run of this one-step workflow keeps beside the attack's text: ids, times,
    // the input, the plugin digest, the event log.
    const METADATA: usize = 8 * 1024;
    // A failure is kept where each reader finds it: in the failing step's event (its data
    // and its record) and, when it ends the run, in the run's end event and its row.
    const FAILURE_COPIES: usize = 4;
    // A failure's message and, for a refusal, its detail: each cut to its bound.
    let failure = 2 * (weir::failure::MAX_MESSAGE_BYTES + MARKER_BYTES);
    let log = weir::limits::DEFAULT_LOG_BYTES as usize;
    let line = weir::capabilities::log::MAX_LINE_BYTES + MARKER_BYTES;
    let denial = weir::capabilities::MAX_DENIAL_TARGET_BYTES + MARKER_BYTES;
    let cases = [
        (
            json!({"attack": "error"}),
            16 << 20,
            FAILURE_COPIES * failure,
        ),
        (
            json!({"attack": "log", "lines": 64, "bytes": 65536}),
            64 << 16,
            log + line,
        ),
        (
            json!({"attack": "denials", "count": 100, "bytes": 1048576}),
            100 << 20,
            // Each kept refusal names its target in the denial and in its log line; the
            // failure quotes the last.
            2 * weir::capabilities::MAX_KEPT_DENIALS * (denial + 256) + FAILURE_COPIES * failure,
        ),
    ];
    let db = f.dir.path().join("weir.db");
    assert!(db.exists(), "the hostile suite runs on SQLite");
    for (input, said, bound) in cases {
        let run = f.run(&path, input.clone()).await;
        let tables = journal_bytes(&db, &run.id);
        let kept: usize = tables.iter().map(|(_, n)| n).sum();
        assert!(
            kept <= bound + METADATA,
            "{input}: the guest said {said} bytes; the journal keeps {kept} ({tables:?}), over {bound} + {METADATA}"
        );
    }
    assert_host_healthy().await;
}

/// A step's output is checked against its own schema on the host, after the attempt: a
/// backtracking `pattern` costs linear time there, so the check neither outlasts the step
/// nor delays other runs, and the violation it reports (which quotes the output) is cut to
/// its bound in the journal. A pattern only a backtracking engine could run is refused when
/// the workflow loads.
#[tokio::test]
pub(crate) async fn hostile_regex_bomb() {
    let f = crate::workflows::Fixture::new().await;
    let text = format!(
        "name = \"regex\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"bomb\"\nplugin = {:?}\n",
        artifacts::HOSTILE_REGEX_BOMB
    );
    let path = f.workflow("regex.toml", &text);
    let started = Instant::now();
    let run = f.run(&path, json!({"len": 200_000})).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the output check took {:?}",
        started.elapsed()
    );
    assert_eq!(run.status, weir::store::RunStatus::Failed);
    let failure = &run.failure.as_ref().unwrap()["failure"];
    assert_eq!(failure["kind"], json!("invalid_output"));
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("does not match the step's output schema"),
        "{message}"
    );
    assert!(
        message.len() <= weir::failure::MAX_MESSAGE_BYTES + weir::text::MARKER_BYTES + 64,
        "{} bytes",
        message.len()
    );

    let lookahead = r#"
name = "lookahead"
version = "1.0.0"
[input-schema]
type = "object"
properties = { text = { type = "string", pattern = "^(?=x)x+$" } }
[[steps]]
id = "only"
plugin = "$PLUGINS/echo.wasm"
"#;
    let path = f.workflow("lookahead.toml", lookahead);
    let Err(err) =
        weir::registry::register_file(crate::support::host(), f.store.as_ref(), &path).await
    else {
        panic!("a look-ahead pattern is refused");
    };
    let err = format!("{err:#}");
    assert!(err.contains("/properties/text/pattern"), "{err}");
    assert!(err.contains("linear time"), "{err}");
    assert_host_healthy().await;
}

/// Checking an output against its schema is part of the step's time, and a long check runs
/// off the async workers: 200,000 items against 64 patterns each outlast a 300 ms timeout and
/// fail the attempt as a `timeout`, while a run started beside it on the same single-threaded
/// runtime finishes first. A short check of a valid output still passes.
#[tokio::test]
pub(crate) async fn an_output_check_counts_against_the_steps_time() {
    let f = crate::workflows::Fixture::new().await;
    let text = |timeout: &str| {
        format!(
            "name = \"check\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"bomb\"\nplugin = {:?}\n\
             limits = {{ timeout = \"{timeout}\", output = \"16MiB\" }}\n",
            artifacts::HOSTILE_REGEX_BOMB
        )
    };
    let bomb = f.workflow("check.toml", &text("300ms"));
    let echo = f.workflow(
        "echo.toml",
        "name = \"echo\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"only\"\nplugin = \"$PLUGINS/echo.wasm\"\n",
    );
    let started = Instant::now();
    let (long, beside) = tokio::join!(
        async {
            let run = f.run(&bomb, json!({"items": 200_000})).await;
            (run, started.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let run = f.run(&echo, json!({"beside": true})).await;
            (run, started.elapsed())
        }
    );
    assert_eq!(long.0.status, weir::store::RunStatus::Failed);
    let failure = &long.0.failure.as_ref().unwrap()["failure"];
    assert_eq!(failure["kind"], json!("timeout"), "{failure}");
    // The guest itself returned in time: the check is what ran out of it.
    let attempts = f.store.attempts(&long.0.id).await.unwrap();
    let guest_us = attempts[0].latency_us.unwrap();
    assert!(guest_us < 300_000, "the guest took {guest_us} µs");
    assert_eq!(beside.0.status, weir::store::RunStatus::Succeeded);
    assert!(
        beside.1 < long.1,
        "the run beside the check ended at {:?}, the check's at {:?}",
        beside.1,
        long.1
    );

    let f = crate::workflows::Fixture::new().await;
    let bomb = f.workflow("check.toml", &text("60s"));
    let run = f.run(&bomb, json!({"items": 2_000})).await;
    assert_eq!(
        run.status,
        weir::store::RunStatus::Succeeded,
        "{:?}",
        run.failure
    );
    assert_eq!(run.output.unwrap().as_array().unwrap().len(), 2_000);
}

/// Opening a FIFO left in a granted directory would block a host thread for ever: it is
/// refused at once, as a `files` denial naming the path.
#[tokio::test]
pub(crate) async fn hostile_fifo_open() {
    let (_root, data) = sandbox_tree();
    let fifo = data.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let spec = with_dir(tight(), &format!("{}:/data", data.display()));
    let started = Instant::now();
    let report = run(
        artifacts::HOSTILE_FIFO_OPEN,
        &spec,
        r#"{"path":"/data/pipe"}"#,
    )
    .await;
    let (capability, target, detail) = denied(&report);
    assert_eq!((capability, target), ("files", "pipe"));
    assert!(detail.contains("open /data/pipe failed"), "{detail}");
    let reason = &report.denials[0].reason;
    assert!(
        reason.starts_with("opening a FIFO") && reason.ends_with("is not granted"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A regular file in the same grant still opens.
    let report = run(
        artifacts::HOSTILE_FIFO_OPEN,
        &spec,
        r#"{"path":"/data/public.txt"}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, json!("public"));
    assert_host_healthy().await;
}

/// Text meant to drive the operator's terminal reaches the report exact, but every line the
/// CLI prints shows it escaped; route labels outside the documented set are refused.
#[tokio::test]
pub(crate) async fn hostile_terminal_forge() {
    let report = run(artifacts::HOSTILE_TERMINAL_FORGE, &spec(tight()), "{}").await;
    match &report.outcome {
        Err(StepFailure::Fatal { message }) => assert!(message.contains('\u{1b}')),
        other => panic!("expected fatal, got {other:?}"),
    }
    for route in ["a\u{202E}b", "a\u{200B}b", "a\u{2028}b", "a\nb"] {
        let input = json!({ "route": route }).to_string();
        let report = run(artifacts::HOSTILE_TERMINAL_FORGE, &spec(tight()), &input).await;
        match &report.outcome {
            Err(StepFailure::InvalidOutput { message }) => {
                assert!(message.starts_with("route label"), "{message}");
            }
            other => panic!("route {route:?} was accepted: {other:?}"),
        }
    }
    crate::cli::assert_terminal_output_escaped(artifacts::HOSTILE_TERMINAL_FORGE);
    assert_host_healthy().await;
}

/// What a step makes the host hold beside its linear memory: sockets are refused before a
/// descriptor exists, and refusals past the kept count are only counted; open files and
/// HTTP header fields stop at the per-attempt resource bound.
#[tokio::test]
pub(crate) async fn hostile_host_hoard() {
    let report = run(
        artifacts::HOSTILE_HOST_HOARD,
        &spec(tight()),
        r#"{"attack":"sockets","count":5000}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, json!({"held": 0, "refused": 5000}));
    assert_eq!(report.denials.len(), weir::capabilities::MAX_KEPT_DENIALS);
    assert_eq!(report.denials[0].capability, "sockets");
    assert_eq!(report.denials[0].target, "tcp socket (ipv4)");
    assert_eq!(
        report.denials_dropped,
        5000 - weir::capabilities::MAX_KEPT_DENIALS as u64
    );

    let (_root, data) = sandbox_tree();
    let files = with_dir(tight(), &format!("{}:/data", data.display()));
    for (attack, extra) in [("files", r#","path":"/data/public.txt""#), ("fields", "")] {
        let input = format!(r#"{{"attack":"{attack}","count":100000{extra}}}"#);
        let report = run(artifacts::HOSTILE_HOST_HOARD, &files, &input).await;
        match &report.outcome {
            Err(StepFailure::Trap { message }) => assert!(
                message.starts_with(&format!(
                    "host resource limit: the step held {} host resources",
                    weir::limits::MAX_HOST_RESOURCES
                )),
                "{attack}: {message}"
            ),
            other => panic!("{attack}: expected the resource limit, got {other:?}"),
        }
    }

    // Unsent request bodies: each holds at most two small chunks on the host (wasi-http's
    // default would have taken 2 MiB each, 600 MiB here); past the resource cap, a trap.
    let report = run(
        artifacts::HOSTILE_HOST_HOARD,
        &spec(tight()),
        r#"{"attack":"bodies","count":300}"#,
    )
    .await;
    let payload = &ok(&report).payload;
    assert_eq!(payload["held"], json!(300));
    let per_body = 2 * weir::limits::OUTGOING_BODY_CHUNK_BYTES as u64;
    assert_eq!(payload["buffered"], json!(300 * per_body), "{payload}");
    let report = run(
        artifacts::HOSTILE_HOST_HOARD,
        &spec(tight()),
        r#"{"attack":"bodies","count":1000}"#,
    )
    .await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::Trap { message }) if message.starts_with("host resource limit")),
        "{:?}",
        report.outcome.as_ref().map(|_| ())
    );

    // A read-write grant with a quota: writes past it stop the step as a typed denial.
    let out = tempfile::tempdir().unwrap();
    let grant = format!("{}:/out:rw,quota=1MiB,files=10", out.path().display());
    let quota = with_dir(tight(), &grant);
    let attacks = [
        r#"{"attack":"disk","path":"/out","count":536870912}"#,
        r#"{"attack":"disk","path":"/out","count":0,"files":20000}"#,
        r#"{"attack":"disk","path":"/out","count":0,"sparse":true}"#,
    ];
    for attack in attacks {
        for entry in std::fs::read_dir(out.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let report = run(artifacts::HOSTILE_HOST_HOARD, &quota, attack).await;
        let (capability, target, detail) = denied(&report);
        assert_eq!((capability, target), ("files", "/out"), "{attack}");
        assert!(
            detail.starts_with("quota exceeded: the step added "),
            "{detail}"
        );
        assert!(
            detail.ends_with("its quota is 1048576 bytes and 10 files"),
            "{detail}"
        );
        // Stopped on the way, not at the end: the partial writes stay, bounded.
        let big = std::fs::metadata(out.path().join("big")).map_or(0, |m| m.len());
        assert!(big < 536_870_912, "{attack}: {big} bytes written");
        assert!(
            std::fs::read_dir(out.path()).unwrap().count() < 20_000,
            "{attack}"
        );
    }
    // Within its quota the same grant works.
    for entry in std::fs::read_dir(out.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let report = run(
        artifacts::HOSTILE_HOST_HOARD,
        &quota,
        r#"{"attack":"disk","path":"/out","count":65536,"files":3}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, json!({"written": 65536, "files": 3}));
    assert_host_healthy().await;
}

/// Every class of attack through `weir serve`: each run ends with its typed failure, and then
/// the sidecar still answers `/healthz` and runs a normal workflow.
#[tokio::test]
async fn the_sidecar_stays_healthy_after_the_attacks() {
    use crate::serve::{Sidecar, workflow_text};
    let s = Sidecar::start(|_, root| {
        let files = [
            (
                "echo.toml",
                workflow_text("echo", &[("only", artifacts::ECHO, "")], ""),
            ),
            (
                "hoard.toml",
                workflow_text("hoard", &[("only", artifacts::HOSTILE_HOST_HOARD, "")], ""),
            ),
            (
                "text.toml",
                workflow_text("text", &[("only", artifacts::HOSTILE_TEXT_BOMB, "")], ""),
            ),
            (
                "regex.toml",
                workflow_text("regex", &[("only", artifacts::HOSTILE_REGEX_BOMB, "")], ""),
            ),
            (
                "check.toml",
                workflow_text(
                    "check",
                    &[(
                        "only",
                        artifacts::HOSTILE_REGEX_BOMB,
                        "limits = { timeout = \"300ms\", output = \"16MiB\" }",
                    )],
                    "",
                ),
            ),
            (
                "forge.toml",
                workflow_text(
                    "forge",
                    &[("only", artifacts::HOSTILE_TERMINAL_FORGE, "")],
                    "",
                ),
            ),
        ];
        // A granted directory holding a FIFO and a regular file, for the open and hoard attacks.
        let grant = root.join("grant");
        std::fs::create_dir_all(&grant).unwrap();
        std::fs::write(grant.join("public.txt"), "public").unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(grant.join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        let dirs = format!("grants = {{ dirs = [\"{}:/data\"] }}", grant.display());
        for (name, plugin) in [
            ("fifo", artifacts::HOSTILE_FIFO_OPEN),
            ("files", artifacts::HOSTILE_HOST_HOARD),
        ] {
            std::fs::write(
                root.join("workflows").join(format!("{name}.toml")),
                workflow_text(name, &[("only", plugin, &dirs)], ""),
            )
            .unwrap();
        }
        for (name, text) in files {
            std::fs::write(root.join("workflows").join(name), text).unwrap();
        }
    })
    .await;
    // (workflow, input, the failure's kind; `None`: the run succeeds)
    let attacks = [
        ("hoard", json!({"attack": "sockets", "count": 5000}), None),
        ("text", json!({"attack": "error"}), Some("fatal")),
        ("regex", json!({"len": 200_000}), Some("invalid_output")),
        ("check", json!({"items": 200_000}), Some("timeout")),
        ("forge", json!({}), Some("fatal")),
        ("fifo", json!({"path": "/data/pipe"}), Some("denied")),
        (
            "files",
            json!({"attack": "files", "count": 100_000, "path": "/data/public.txt"}),
            Some("trap"),
        ),
    ];
    for (workflow, input, kind) in attacks {
        let (code, body) = s
            .submit("?wait=60s", json!({"workflow": workflow, "input": input}))
            .await;
        assert_eq!(code, reqwest::StatusCode::CREATED, "{body}");
        let run = &body["run"];
        match kind {
            None => assert_eq!(run["status"], json!("succeeded"), "{workflow}: {body}"),
            Some(kind) => {
                assert_eq!(run["status"], json!("failed"), "{workflow}: {body}");
                assert_eq!(
                    run["failure"]["failure"]["kind"],
                    json!(kind),
                    "{workflow}: {body}"
                );
            }
        }
        let health = s
            .client
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), reqwest::StatusCode::OK, "after {workflow}");
    }
    let (code, body) = s
        .submit(
            "?wait=20s",
            json!({"workflow": "echo", "input": {"still": "fine"}}),
        )
        .await;
    assert_eq!(code, reqwest::StatusCode::CREATED, "{body}");
    assert_eq!(body["run"]["output"], json!({"still": "fine"}));
}
