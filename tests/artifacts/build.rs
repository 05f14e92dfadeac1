//! Compiles `plugins/` (its own workspace) for wasm32-wasip2 into `OUT_DIR` and writes
//! `plugins.rs`: a path constant per component and the `foreach_plugin!` macro.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = out_dir.join("plugins-target");

    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "wit",
        "sdk/rust",
        "redact",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The host build's flags and wrappers (coverage, clippy, sanitizers) are not the guests'.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_TARGET_") && key.ends_with("_RUSTFLAGS")
        {
            cmd.env_remove(key);
        }
    }
    let output = cmd.output().expect("failed to run cargo for the plugins");
    if !output.status.success() {
        panic!(
            "building plugins/ for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let mut components: Vec<(String, PathBuf)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || !msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            continue;
        }
        let name = msg["target"]["name"].as_str().unwrap().replace('-', "_");
        let wasm = msg["filenames"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
            .map(PathBuf::from)
            .expect("a cdylib artifact without a .wasm file");
        watch_sources(&wasm);
        components.push((name, wasm));
    }
    components.sort();
    assert!(!components.is_empty(), "plugins/ built no components");

    let mut code = String::new();
    for (name, path) in &components {
        code.push_str(&format!(
            "/// The `{name}` plugin component.\npub const {}: &str = {:?};\n",
            name.to_uppercase(),
            path.display().to_string()
        ));
    }
    code.push_str("/// Calls `$mac!(plugin_name)` once for every plugin.\n#[macro_export]\nmacro_rules! foreach_plugin {\n    ($mac:ident) => {\n");
    for (name, _) in &components {
        code.push_str(&format!("        $mac!({name});\n"));
    }
    code.push_str("    };\n}\n");
    std::fs::write(out_dir.join("plugins.rs"), code).unwrap();
}

/// Reruns the build script when any source file a component was built from changes.
fn watch_sources(wasm: &Path) {
    let Ok(deps) = std::fs::read_to_string(wasm.with_extension("d")) else {
        return;
    };
    for line in deps.lines() {
        let Some((_, sources)) = line.split_once(": ") else {
            continue;
        };
        for source in sources.split_whitespace() {
            if !source.contains("/.cargo/registry/") {
                println!("cargo:rerun-if-changed={source}");
            }
        }
    }
}
