//! Shared test helpers: one host per test process, plugins loaded once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use weir::{
    AttemptContext, AttemptReport, Host, HostConfig, Limits, Plugin, StepFailure, StepOutput,
    StepSpec,
};

/// The shared host; its compile cache lives in the target directory so reruns are quick.
pub fn host() -> &'static Host {
    static HOST: LazyLock<Host> = LazyLock::new(|| {
        let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-compile-cache");
        Host::new(HostConfig {
            cache_dir: Some(cache),
            ..HostConfig::default()
        })
        .expect("host starts")
    });
    &HOST
}

/// Loads a plugin (once per process) on the shared host.
pub async fn plugin(path: &str) -> Plugin {
    static LOADED: LazyLock<Mutex<HashMap<String, Plugin>>> = LazyLock::new(Mutex::default);
    if let Some(p) = LOADED.lock().unwrap().get(path) {
        return p.clone();
    }
    let p = host()
        .load_plugin_file(path.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{path} loads: {e}"));
    LOADED.lock().unwrap().insert(path.to_string(), p.clone());
    p
}

/// Limits tight enough that an attack ends quickly.
pub fn tight() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        memory_bytes: 64 << 20,
        ..Limits::default()
    }
}

/// A spec with the given limits and nothing granted.
pub fn spec(limits: Limits) -> StepSpec {
    StepSpec {
        limits,
        ..StepSpec::default()
    }
}

/// Runs `path` on `input` under `spec` on the shared host.
pub async fn run(path: &str, spec: &StepSpec, input: &str) -> AttemptReport {
    let plugin = plugin(path).await;
    host()
        .run_step(&plugin, spec, input, AttemptContext::default())
        .await
        .expect("the host runs the attempt")
}

/// The output of a report that must have succeeded.
pub fn ok(report: &AttemptReport) -> &StepOutput {
    match &report.outcome {
        Ok(output) => output,
        Err(failure) => panic!(
            "expected success, got {failure:?}; stderr: {}",
            report.stderr
        ),
    }
}

/// The capability, target and detail of a report that must have been denied.
pub fn denied(report: &AttemptReport) -> (&str, &str, &str) {
    match &report.outcome {
        Err(StepFailure::Denied {
            capability,
            target,
            detail,
        }) => (capability, target, detail),
        other => panic!("expected denied, got {other:?}"),
    }
}

/// After an attack: the same host still runs a normal step correctly.
pub async fn assert_host_healthy() {
    let report = run(
        weir_artifacts::ECHO,
        &spec(Limits::default()),
        r#"{"still":"fine"}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, serde_json::json!({"still": "fine"}));
}
