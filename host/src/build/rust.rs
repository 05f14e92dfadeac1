//! Rust steps: cargo builds the project's `cdylib` crates for `wasm32-wasip2`; each is a
//! component already. A project that is a single crate also gets `build/<name>.wasm`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use super::Project;

pub(super) fn build(project: &Project) -> anyhow::Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&project.dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["--message-format=json-render-diagnostics"])
        // The project's own target directory, always: workflows name components by path, and
        // a CARGO_TARGET_DIR meant for another build (perhaps locked by it) would move them.
        .arg("--target-dir")
        .arg(project.dir.join("target"))
        .output()
        .context("could not start cargo")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
            bail!(
                "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2`"
            );
        }
        bail!("cargo build failed:\n{}", stderr.trim_end());
    }
    let mut components = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if msg["reason"] != "compiler-artifact" || !is_cdylib {
            continue;
        }
        if let Some(wasm) = msg["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
        {
            components.push(PathBuf::from(wasm));
        }
    }
    match components.as_slice() {
        [] => bail!(
            "{}: cargo built no component; a step crate needs `crate-type = [\"cdylib\"]`",
            project.dir.display()
        ),
        [single] => {
            let named = project.output();
            std::fs::copy(single, &named)
                .with_context(|| format!("cannot copy the component to {}", named.display()))?;
            Ok(vec![named, single.clone()])
        }
        _ => Ok(components),
    }
}
