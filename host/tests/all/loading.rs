//! Loading plugins: the compile cache, and a clear error for every way a file can be wrong.

use weir::engine::CompileSource;
use weir::{AttemptContext, Host, HostConfig, PluginError, StepSpec};
use weir_artifacts as artifacts;

fn host_with_cache(dir: &std::path::Path) -> Host {
    Host::new(HostConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..HostConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_second_host_start_loads_from_the_compile_cache() {
    let cache = tempfile::tempdir().unwrap();
    let first = host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    assert_eq!(first.compile_source(), CompileSource::Compiled);

    // A new host has a new engine: only the disk cache can spare the compilation.
    let host = host_with_cache(cache.path());
    let second = host
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    assert_eq!(second.compile_source(), CompileSource::Cache);
    assert_eq!(second.digest(), first.digest());
    let report = host
        .run_step(
            &second,
            &StepSpec::default(),
            "[1]",
            AttemptContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome.unwrap().payload, serde_json::json!([1]));
}

/// The cache entry's files: its compiled code and the digest kept beside it.
fn entry_files(cache: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut files: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let [code, digest] = files.as_slice() else {
        panic!("one entry is two files: {files:?}");
    };
    assert!(code.to_string_lossy().ends_with(".cwasm"), "{code:?}");
    assert!(
        digest.to_string_lossy().ends_with(".cwasm.blake3"),
        "{digest:?}"
    );
    (code.clone(), digest.clone())
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_recompiled_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    let (code, _) = entry_files(cache.path());
    let mut bytes = std::fs::read(&code).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&code, bytes).unwrap();

    let plugin = host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    assert_eq!(plugin.compile_source(), CompileSource::Compiled);
    // The recompiled entry replaced the damaged one, and the next host loads it.
    let plugin = host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    assert_eq!(plugin.compile_source(), CompileSource::Cache);
}

#[tokio::test]
async fn a_cache_entry_without_its_digest_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    let (_, digest) = entry_files(cache.path());
    std::fs::remove_file(&digest).unwrap();
    let plugin = host_with_cache(cache.path())
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    assert_eq!(plugin.compile_source(), CompileSource::Compiled);
    entry_files(cache.path());
}

async fn load_error(bytes: Vec<u8>) -> PluginError {
    let host = Host::new(HostConfig::default()).unwrap();
    host.load_plugin_bytes(bytes, "test.wasm".into())
        .await
        .expect_err("the plugin must not load")
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_named_as_such() {
    let err = load_error(b"#!/bin/sh\necho hi\n".to_vec()).await;
    assert_eq!(
        err.to_string(),
        "test.wasm is not a WebAssembly file (it starts with 0x23212f62696e2f73); a plugin is a component built for the wasm32-wasip2 target"
    );
    let err = load_error(Vec::new()).await;
    assert!(
        err.to_string()
            .contains("(it starts with nothing: the file is empty)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_core_module_is_told_to_become_a_component() {
    let err = load_error(wat::parse_str("(module)").unwrap()).await;
    assert_eq!(
        err.to_string(),
        "test.wasm is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`"
    );
}

#[tokio::test]
async fn a_component_without_the_step_exports_is_not_a_step() {
    let err = load_error(wat::parse_str("(component)").unwrap()).await;
    assert!(matches!(err, PluginError::NotAStep { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "test.wasm does not implement the weir:step world (exports `describe` and `run`): "
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_with_unknown_imports_is_refused() {
    let err = load_error(
        wat::parse_str(
            r#"(component (import "acme:secret/vault" (instance (export "open" (func)))))"#,
        )
        .unwrap(),
    )
    .await;
    assert!(
        matches!(err, PluginError::UnsupportedImports { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("acme:secret/vault"), "{err}");
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let host = Host::new(HostConfig::default()).unwrap();
    let err = host
        .load_plugin_file("no/such/plugin.wasm".as_ref())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read plugin \"no/such/plugin.wasm\": No such file or directory (os error 2)"
    );
}

#[tokio::test]
async fn a_host_that_cannot_reserve_its_pool_falls_back_to_on_demand() {
    let host = Host::new(HostConfig {
        pool_instances: 1_000_000,
        ..HostConfig::default()
    })
    .unwrap();
    assert!(!host.is_pooling());
    let plugin = host
        .load_plugin_file(artifacts::ECHO.as_ref())
        .await
        .unwrap();
    let report = host
        .run_step(
            &plugin,
            &StepSpec::default(),
            "true",
            AttemptContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome.unwrap().payload, serde_json::json!(true));
}

#[tokio::test]
async fn the_default_host_pools_its_instances() {
    assert!(
        crate::support::host().is_pooling(),
        "pooling should be available on the test machines"
    );
}
