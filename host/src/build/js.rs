//! JavaScript (and TypeScript) steps: esbuild bundles `step.js` (or `step.ts`, or the
//! `main` of `package.json`) with the `weir-step` SDK and any npm packages into one ES
//! module, and componentize-js turns it into a component around StarlingMonkey.
//!
//! The component is built without `wasi:http`: componentize-js would otherwise import the
//! outgoing handler for `fetch` and export an incoming one, making every JS step look like
//! an HTTP server that wants the network. Steps reach the outside through the host's
//! capabilities (model calls, granted files) instead.

use std::path::Path;
use std::process::Command;

use super::Project;
use super::toolchain::{self, arg};

/// The entry module: `step.ts`, `step.js`, or `main` in `package.json`.
pub(super) fn entry(dir: &Path) -> Option<&'static str> {
    ["step.ts", "step.js", "src/step.ts", "src/step.js"]
        .into_iter()
        .find(|name| dir.join(name).is_file())
        .or_else(|| dir.join("package.json").is_file().then_some("package.json"))
}

fn entry_path(project: &Project) -> anyhow::Result<std::path::PathBuf> {
    match entry(&project.dir) {
        Some("package.json") => {
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(project.dir.join("package.json"))?)?;
            let main = manifest["main"].as_str().ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no step.js or step.ts, and package.json names no \"main\"",
                    project.dir.display()
                )
            })?;
            Ok(project.dir.join(main))
        }
        Some(name) => Ok(project.dir.join(name)),
        None => anyhow::bail!("{}: no step.js or step.ts", project.dir.display()),
    }
}

pub(super) fn build(project: &Project, output: &Path) -> anyhow::Result<()> {
    let (esbuild, componentize) = toolchain::js_tools()?;
    let work = project.work_dir();
    let bundle = work.join("bundle.js");
    toolchain::run(
        Command::new(&esbuild)
            .current_dir(&project.dir)
            .arg(entry_path(project)?)
            .args(["--bundle", "--format=esm", "--platform=neutral"])
            .args(["--main-fields=module,main", "--log-level=warning"])
            .args(["--external:weir:*", "--external:wasi:*"])
            .arg(format!(
                "--alias:weir-step={}",
                arg(&work.join("sdk/js/weir-step.js"))?
            ))
            .arg(format!("--outfile={}", arg(&bundle)?)),
        "esbuild (bundling the step)",
    )?;
    toolchain::run(
        Command::new(&componentize)
            .current_dir(&project.dir)
            .arg(&bundle)
            .args(["--wit", arg(&work.join("wit"))?, "--world-name", "step"])
            .args(["--disable", "http", "fetch-event"])
            .args(["--out", arg(output)?]),
        "componentize-js",
    )
}
