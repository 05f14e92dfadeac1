//! The persistent compile cache: compiled components on disk, keyed by the component's
//! sha256 and the engine's compatibility hash, so a second process start does not recompile.
//!
//! Each entry is two files: `<key>.cwasm`, wasmtime's serialized code and nothing else, so
//! that it can be mapped into memory rather than read and copied (a large plugin's compiled
//! code is tens of MiB), and `<key>.cwasm.blake3`, the BLAKE3 digest of those bytes. Both
//! are written to temporary names and renamed into place, the digest first, so a crash never
//! leaves a partial entry; the digest is checked on the mapped bytes before wasmtime loads
//! them, so a corrupted entry is recompiled instead of trusted. BLAKE3 rather than sha256:
//! it is several times faster, and the check guards against a damaged file, not an attacker
//! (one who can write the cache directory can write the digest too).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a compiled plugin came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompileSource {
    /// Compiled from the component bytes in this process.
    Compiled,
    /// Loaded from the compile cache on disk.
    Cache,
}

fn entry_path(dir: &Path, engine: &Engine, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Where the digest of the entry at `path` is kept.
fn digest_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".blake3");
    PathBuf::from(name)
}

pub(crate) fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    dir: Option<&Path>,
) -> anyhow::Result<(Component, CompileSource)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, CompileSource::Compiled));
    };
    let path = entry_path(dir, engine, digest);
    if let Some(component) = load(engine, &path) {
        return Ok((component, CompileSource::Cache));
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store(&component, dir, &path) {
        // The cache is an optimisation: a read-only or full disk must not fail the step.
        tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "could not write compile cache entry");
    }
    Ok((component, CompileSource::Compiled))
}

fn load(engine: &Engine, path: &Path) -> Option<Component> {
    let expected = std::fs::read_to_string(digest_path(path)).ok()?;
    // Hashed through a memory map: the bytes are not copied, and the pages stay in the page
    // cache for the mapping wasmtime makes next.
    let intact = blake3::Hasher::new()
        .update_mmap(path)
        .is_ok_and(|h| h.finalize().to_hex().as_str() == expected.trim());
    if !intact {
        tracing::warn!(path = %path.display(), "compile cache entry is corrupt; recompiling");
        let _ = std::fs::remove_file(path);
        return None;
    }
    match deserialize_verified(engine, path) {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "compile cache entry unusable; recompiling");
            None
        }
    }
}

/// Maps native code that this host compiled and wrote itself.
///
/// `Component::deserialize_file` trusts its input to be wasmtime's own output; the caller
/// checked the entry's digest against the one written with it, and wasmtime checks the
/// engine compatibility header, so only intact entries produced by a compatible engine get
/// here. The file is mapped copy-on-write, not copied: loading costs what the code touched.
#[expect(
    unsafe_code,
    reason = "mapping a digest-checked entry this host produced"
)]
fn deserialize_verified(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see above: the file is an intact artifact of `Component::serialize`, and
    // entries are replaced by rename, never modified while mapped.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create cache directory {dir:?}"))?;
    let compiled = component.serialize()?;
    let write = |target: &Path, bytes: &[u8]| -> anyhow::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        tmp.persist(target)?;
        Ok(())
    };
    // The digest first: an entry without its digest is never trusted, and one whose digest
    // is of other bytes (a crash, or two hosts writing at once) is only recompiled.
    write(
        &digest_path(path),
        blake3::hash(&compiled).to_hex().as_bytes(),
    )?;
    write(path, &compiled)
}
