//! The hostile suite: one plugin per attack, each contained with its exact typed failure (or
//! shown to have seen nothing), and a normal step run right after on the same host.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::{Grants, Limits, StepFailure, StepSpec};
use weir_artifacts as artifacts;

use crate::support::{assert_host_healthy, denied, ok, run, spec, tight};

mod host_limits;
pub(crate) use host_limits::*;

const SECRET: &str = "TOP-SECRET-0451";

/// A temp tree: `root/secret.txt` (outside any grant) and `root/data/` (granted).
fn sandbox_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("public.txt"), "public").unwrap();
    (root, data)
}

fn with_dir(limits: Limits, grant: &str) -> StepSpec {
    StepSpec {
        grants: Grants {
            dirs: vec![grant.parse().unwrap()],
            ..Grants::default()
        },
        ..spec(limits)
    }
}

/// Every attempt in the plugin's report was refused, and no secret leaked anywhere.
fn assert_saw_nothing(output: &Value) {
    let text = output.to_string();
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains("root:"), "/etc/passwd leaked: {text}");
}

#[tokio::test]
pub(crate) async fn hostile_infinite_loop() {
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..tight()
    };
    let started = Instant::now();
    let report = run(artifacts::HOSTILE_INFINITE_LOOP, &spec(limits), "{}").await;
    assert_eq!(
        report.outcome,
        Err(StepFailure::Timeout {
            limit: Duration::from_millis(300),
            run_deadline: false,
        })
    );
    assert!(report.usage.elapsed >= Duration::from_millis(300));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the loop was not stopped promptly"
    );
    assert_eq!(
        report.usage.fuel_consumed, None,
        "no fuel limit, so no metering"
    );
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_fuel_bomb() {
    let limits = Limits {
        fuel: Some(20_000_000),
        timeout: Duration::from_secs(60),
        ..tight()
    };
    let report = run(artifacts::HOSTILE_FUEL_BOMB, &spec(limits), "{}").await;
    assert_eq!(
        report.outcome,
        Err(StepFailure::FuelExhausted { limit: 20_000_000 })
    );
    assert_eq!(report.usage.fuel_consumed, Some(20_000_000));
    assert_eq!(report.usage.fuel_limit, Some(20_000_000));
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_memory_bomb() {
    let limits = Limits {
        memory_bytes: 48 << 20,
        ..tight()
    };
    let report = run(artifacts::HOSTILE_MEMORY_BOMB, &spec(limits), "{}").await;
    match report.outcome {
        Err(StepFailure::MemoryExceeded { limit, requested }) => {
            assert_eq!(limit, 48 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected memory_exceeded, got {other:?}"),
    }
    assert!(report.usage.memory_peak_bytes <= 48 << 20);
    assert!(
        report.usage.memory_peak_bytes > 32 << 20,
        "the bomb got close to the limit first"
    );
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_stack_overflow() {
    let report = run(artifacts::HOSTILE_STACK_OVERFLOW, &spec(tight()), "{}").await;
    match &report.outcome {
        Err(StepFailure::Trap { message }) => {
            assert!(message.starts_with("stack overflow"), "{message}");
        }
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_path_escape() {
    let (_root, data) = sandbox_tree();
    let spec = with_dir(tight(), &format!("{}:/data", data.display()));
    let report = run(artifacts::HOSTILE_PATH_ESCAPE, &spec, r#"{"dir":"/data"}"#).await;
    let output = &ok(&report).payload;
    assert_saw_nothing(output);
    let attempts = output.as_array().unwrap();
    assert_eq!(attempts.len(), 5);
    for attempt in attempts {
        assert!(
            attempt.get("error").is_some(),
            "an escape attempt was not refused: {attempt}"
        );
    }
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_absolute_path() {
    let (root, data) = sandbox_tree();
    let spec = with_dir(tight(), &format!("{}:/data", data.display()));
    let secret_path = root.path().join("secret.txt");
    let input = json!({ "host_path": secret_path }).to_string();
    let report = run(artifacts::HOSTILE_ABSOLUTE_PATH, &spec, &input).await;
    let output = &ok(&report).payload;
    assert_saw_nothing(output);
    for attempt in output.as_array().unwrap() {
        assert!(
            attempt.get("error").is_some(),
            "an absolute path was readable: {attempt}"
        );
    }
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_symlink_escape() {
    let (root, data) = sandbox_tree();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), data.join("link")).unwrap();
    // Even with write access the guest cannot make a link that leads out.
    let spec = with_dir(tight(), &format!("{}:/data:rw", data.display()));
    let report = run(
        artifacts::HOSTILE_SYMLINK_ESCAPE,
        &spec,
        r#"{"dir":"/data"}"#,
    )
    .await;
    let output = &ok(&report).payload;
    assert_saw_nothing(output);
    for key in ["existing", "read_relative", "read_absolute"] {
        assert!(
            output[key].get("error").is_some(),
            "{key} was readable: {output}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.path().join("secret.txt")).unwrap(),
        SECRET
    );
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_socket_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let report = run(
        artifacts::HOSTILE_SOCKET_CONNECT,
        &spec(tight()),
        &json!({ "addr": addr }).to_string(),
    )
    .await;
    // The socket is refused when it is created, before the host opens a descriptor.
    let (capability, target, detail) = denied(&report);
    assert_eq!((capability, target), ("sockets", "tcp socket (ipv4)"));
    assert!(
        detail.contains(&format!("connect to {addr} failed")),
        "{detail}"
    );
    assert!(report.denials.iter().all(|d| d.capability == "sockets"));
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the guest reached the listener: {accepted:?}"
    );
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_http_denied() {
    let server = crate::steps::LoopbackServer::start().await;
    let grants = Grants {
        hosts: vec![weir::capabilities::http::HostGrant::parse("example.com").unwrap()].into(),
        ..Grants::default()
    };
    let spec = StepSpec {
        grants,
        ..spec(tight())
    };
    let input = json!({ "url": format!("http://{}/doc", server.addr) }).to_string();
    let report = run(artifacts::HOSTILE_HTTP_DENIED, &spec, &input).await;
    let (capability, target, detail) = denied(&report);
    assert_eq!(capability, "http");
    assert_eq!(target, server.addr.to_string());
    assert!(detail.contains("HttpRequestDenied"), "{detail}");
    assert_eq!(server.hits(), 0, "the request left the host");
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_huge_output() {
    let limits = Limits {
        memory_bytes: 128 << 20,
        ..tight()
    };
    let report = run(
        artifacts::HOSTILE_HUGE_OUTPUT,
        &spec(limits),
        r#"{"bytes": 8388608}"#,
    )
    .await;
    assert_eq!(
        report.outcome,
        Err(StepFailure::OutputTooLarge {
            size: 8_388_608 + 2,
            limit: weir::limits::DEFAULT_OUTPUT_BYTES
        })
    );
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_panic() {
    let report = run(artifacts::HOSTILE_PANIC, &spec(tight()), r#"{"index": 3}"#).await;
    match &report.outcome {
        Err(StepFailure::Trap { message }) => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(
                message.contains("step gave up: index 3 is out of range for 0 items"),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_env_read() {
    let report = run(artifacts::HOSTILE_ENV_READ, &spec(tight()), "{}").await;
    let output = &ok(&report).payload;
    assert_eq!(output["vars"], json!([]), "environment leaked");
    assert_eq!(output["args"], json!([]), "arguments leaked");
    assert_eq!(output["home"], Value::Null);
    assert_host_healthy().await;
}

#[tokio::test]
pub(crate) async fn hostile_log_flood() {
    let limits = Limits {
        timeout: Duration::from_secs(60),
        ..tight()
    };
    let report = run(
        artifacts::HOSTILE_LOG_FLOOD,
        &spec(limits.clone()),
        r#"{"lines": 100000, "stdout_bytes": 4194304}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, json!(100000));
    assert_eq!(report.logs.len() as u64, limits.log_lines);
    assert_eq!(report.logs_dropped, 100_000 - limits.log_lines);
    assert_eq!(report.stdout.len() as u64, limits.stdio_bytes);
    assert_eq!(report.stderr.len() as u64, limits.stdio_bytes);
    assert_eq!(
        report.stdio_dropped_bytes,
        2 * (4_194_304 - limits.stdio_bytes)
    );
    assert_host_healthy().await;
}

/// A host with one pooled slot, so every attempt reuses the memory of the one before:
/// whatever an attempt wrote is gone for the next, kept-resident pages included.
#[tokio::test]
pub(crate) async fn hostile_memory_residue() {
    let host = weir::Host::new(weir::HostConfig {
        pool_instances: 1,
        ..weir::HostConfig::default()
    })
    .unwrap();
    assert!(host.is_pooling(), "the test needs the pooling allocator");
    let plugin = host
        .load_plugin_file(artifacts::HOSTILE_MEMORY_RESIDUE.as_ref())
        .await
        .unwrap();
    let words = ((3 << 20) + (1 << 20)) / 8;
    for attempt in 1..=3 {
        let report = host
            .run_step(
                &plugin,
                &spec(tight()),
                "{}",
                weir::AttemptContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            ok(&report).payload,
            json!({"found_static": 0, "found_heap": 0, "marked": words}),
            "attempt {attempt} saw what the one before it left"
        );
    }
}
/// A spinning step yields at every epoch tick, so steps sharing its thread keep running.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_step_does_not_starve_others_on_its_thread() {
    crate::support::plugin(artifacts::HOSTILE_INFINITE_LOOP).await;
    crate::support::plugin(artifacts::ECHO).await;
    let limits = Limits {
        timeout: Duration::from_secs(3),
        ..tight()
    };
    let spinner =
        tokio::spawn(
            async move { run(artifacts::HOSTILE_INFINITE_LOOP, &spec(limits), "{}").await },
        );
    tokio::task::yield_now().await;
    for i in 0..5 {
        let report = run(artifacts::ECHO, &spec(Limits::default()), &format!("{i}")).await;
        assert_eq!(ok(&report).payload, json!(i));
    }
    assert!(
        !spinner.is_finished(),
        "the others finished only after the spinner was stopped"
    );
    let report = spinner.await.unwrap();
    assert!(matches!(report.outcome, Err(StepFailure::Timeout { .. })));
}
