//! C steps: bindings for the `weir:step` world are generated in-process (wit-bindgen's C
//! generator), the project's `*.c` files are compiled with the SDK by clang for
//! `wasm32-wasi` as a reactor, and the core module is wrapped as a component in-process
//! with the WASI preview1 adapter that matches this host's wasmtime. So a C author needs
//! clang and wasi-libc, nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use wit_bindgen_core::wit_parser::Resolve;

use super::toolchain::{self, arg};
use super::{Project, sdk_files};

/// The project's C sources: `*.c` in the project directory and in `src/`.
pub(super) fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("src")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "c") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Writes the world's C bindings (`step.h`, `step.c`, `step_component_type.o`) to `out`.
fn generate_bindings(out: &Path) -> anyhow::Result<()> {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("step.wit", sdk_files::WIT)
        .context("the embedded WIT world does not parse")?;
    let world = resolve.select_world(&[package], Some("step"))?;
    let mut files = wit_bindgen_core::Files::default();
    let mut generator = wit_bindgen_c::Opts::default().build();
    generator.generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == contents) {
            continue;
        }
        std::fs::write(&path, contents)?;
    }
    Ok(())
}

pub(super) fn build(project: &Project, output: &Path) -> anyhow::Result<()> {
    let sources = sources(&project.dir);
    anyhow::ensure!(
        !sources.is_empty(),
        "{}: no *.c files",
        project.dir.display()
    );
    let clang = toolchain::clang()?;
    let work = project.work_dir();
    let generated = work.join("gen");
    generate_bindings(&generated)?;
    let sdk = work.join("sdk/c");
    let core = work.join("core.wasm");

    let mut cmd = Command::new(&clang);
    cmd.current_dir(&project.dir)
        .args([
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-Wall",
        ])
        .args([
            "-I",
            arg(&generated)?,
            "-I",
            arg(&sdk)?,
            "-I",
            arg(&project.dir)?,
        ]);
    if let Some(sysroot) = std::env::var_os("WASI_SYSROOT") {
        cmd.arg("--sysroot").arg(sysroot);
    }
    cmd.args(&sources)
        .arg(sdk.join("weir_step.c"))
        .arg(generated.join("step.c"))
        .arg(generated.join("step_component_type.o"))
        .arg("-o")
        .arg(&core);
    toolchain::run(&mut cmd, "clang").map_err(|e| {
        let text = e.to_string();
        if text.contains("stdio.h' file not found") || text.contains("cannot find -lc") {
            e.context(format!(
                "clang has no WASI sysroot: install wasi-libc and libclang-rt-{0}-dev-wasm32 \
                 (`scripts/toolchains c`) or set WASI_SYSROOT",
                toolchain::CLANG_MAJOR
            ))
        } else {
            e
        }
    })?;

    let module = std::fs::read(&core)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the compiled module does not carry the weir:step world")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .context("wrapping the module as a component")?;
    std::fs::write(output, component)?;
    Ok(())
}
