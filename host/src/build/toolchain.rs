//! Where the guest-language toolchains live, the versions Weir is built and tested with, and
//! what to tell a user whose machine lacks one.
//!
//! `scripts/toolchains` installs them (a Python venv and an npm prefix under
//! [`toolchains_dir`], Debian packages for C); a tool on `PATH` is used when the pinned
//! install is absent, so a user with their own setup is not forced into ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// componentize-py, from PyPI: Python source to a component (CPython inside).
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// @bytecodealliance/componentize-js, from npm: JavaScript to a component (StarlingMonkey).
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// The WASI shim componentize-js runs its own build steps under; newer ones cannot read a
/// WIT directory outside the working directory.
pub const PREVIEW2_SHIM: &str = "0.17.9";
/// esbuild, from npm: bundles a JS step with the SDK and its npm packages into one module.
pub const ESBUILD: &str = "0.28.2";
/// The clang major version (Debian `clang-19`, `lld-19`, `wasi-libc`,
/// `libclang-rt-19-dev-wasm32`).
pub const CLANG_MAJOR: &str = "19";

/// `$WEIR_TOOLCHAINS`, else `$XDG_CACHE_HOME/weir/toolchains`, else
/// `~/.cache/weir/toolchains`.
pub fn toolchains_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_TOOLCHAINS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("weir/toolchains")
}

/// The first of `candidates` that exists, else `name` found on `PATH`.
fn find(candidates: &[PathBuf], name: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .or_else(|| on_path(name))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn missing(what: &str, lang: &str, by_hand: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} is not installed: run `scripts/toolchains {lang}` from a Weir checkout \
         (it installs into {}), or {by_hand}",
        toolchains_dir().display()
    )
}

/// `componentize-py`.
pub fn componentize_py() -> anyhow::Result<PathBuf> {
    find(
        &[toolchains_dir().join("python/bin/componentize-py")],
        "componentize-py",
    )
    .ok_or_else(|| {
        missing(
            &format!("componentize-py {COMPONENTIZE_PY} (needed to build Python steps)"),
            "python",
            &format!("`pip install componentize-py=={COMPONENTIZE_PY}` into a venv on PATH"),
        )
    })
}

/// `esbuild` and `componentize-js`, and `node` to run the latter.
pub fn js_tools() -> anyhow::Result<(PathBuf, PathBuf)> {
    let bin = toolchains_dir().join("js/node_modules/.bin");
    let by_hand = format!(
        "`npm install --prefix DIR @bytecodealliance/componentize-js@{COMPONENTIZE_JS} \
         @bytecodealliance/preview2-shim@{PREVIEW2_SHIM} esbuild@{ESBUILD}` and put DIR/node_modules/.bin on PATH"
    );
    if on_path("node").is_none() {
        return Err(missing(
            "Node.js (needed to build JavaScript steps)",
            "js",
            "install Node.js 20 or newer",
        ));
    }
    let esbuild = find(&[bin.join("esbuild")], "esbuild")
        .ok_or_else(|| missing(&format!("esbuild {ESBUILD}"), "js", &by_hand))?;
    let componentize =
        find(&[bin.join("componentize-js")], "componentize-js").ok_or_else(|| {
            missing(
                &format!("componentize-js {COMPONENTIZE_JS} (needed to build JavaScript steps)"),
                "js",
                &by_hand,
            )
        })?;
    Ok((esbuild, componentize))
}

/// A clang that targets `wasm32-wasi` with a WASI sysroot: `$WEIR_CLANG`, else `clang-19`,
/// else `clang`.
pub fn clang() -> anyhow::Result<PathBuf> {
    let by_hand = format!(
        "on Debian `apt-get install clang-{CLANG_MAJOR} lld-{CLANG_MAJOR} wasi-libc \
         libclang-rt-{CLANG_MAJOR}-dev-wasm32` (elsewhere, set WEIR_CLANG to a clang with wasm32 \
         support and WASI_SYSROOT to a wasi-libc sysroot)"
    );
    let explicit = std::env::var_os("WEIR_CLANG").map(PathBuf::from);
    let clang = explicit
        .filter(|p| p.is_file())
        .or_else(|| on_path(&format!("clang-{CLANG_MAJOR}")))
        .or_else(|| on_path("clang"))
        .ok_or_else(|| missing("clang (needed to build C steps)", "c", &by_hand))?;
    Ok(clang)
}

/// Runs `cmd`, failing with its output when it fails; `what` names the step for the message.
pub fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let detail = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        bail!(
            "{what} failed ({}):\n{}",
            output.status,
            tail(detail.trim_end(), 60)
        );
    }
    Ok(())
}

/// The last `lines` lines of `text`: toolchains print long backtraces after the message.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// The path as a string for a command line, refusing what cannot be passed on.
pub fn arg(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("the path {} is not valid UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The install script and the build must agree on every version.
    #[test]
    fn the_install_script_pins_the_same_versions() {
        let script = include_str!("../../../scripts/toolchains");
        for (name, pin) in [
            ("COMPONENTIZE_PY", COMPONENTIZE_PY),
            ("COMPONENTIZE_JS", COMPONENTIZE_JS),
            ("PREVIEW2_SHIM", PREVIEW2_SHIM),
            ("ESBUILD", ESBUILD),
            ("CLANG_MAJOR", CLANG_MAJOR),
        ] {
            let line = format!("{name}={pin}\n");
            assert!(
                script.contains(&line),
                "scripts/toolchains should say {line:?}"
            );
        }
    }
}
