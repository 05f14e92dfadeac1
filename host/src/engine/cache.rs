//! The persistent compile cache: compiled components on disk, keyed by the component's
//! sha256 and the engine's compatibility hash, so a second process start does not recompile.
//!
//! Each entry is one file: the sha256 of the compiled bytes, then the bytes. The file is
//! written to a temporary name and renamed into place, so a crash never leaves a partial
//! entry, and the digest is checked before the bytes are loaded, so a corrupted entry is
//! recompiled instead of trusted.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
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

const DIGEST_LEN: usize = 32;

fn entry_path(dir: &Path, engine: &Engine, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
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
    let data = std::fs::read(path).ok()?;
    if data.len() < DIGEST_LEN
        || Sha256::digest(&data[DIGEST_LEN..]).as_slice() != &data[..DIGEST_LEN]
    {
        tracing::warn!(path = %path.display(), "compile cache entry is corrupt; recompiling");
        let _ = std::fs::remove_file(path);
        return None;
    }
    match deserialize_verified(engine, &data[DIGEST_LEN..]) {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "compile cache entry unusable; recompiling");
            None
        }
    }
}

/// Loads native code that this host compiled and wrote itself.
///
/// `Component::deserialize` trusts its input to be wasmtime's own output; the caller checked
/// the entry's sha256 against the digest written with it, and wasmtime checks the engine
/// compatibility header, so only intact entries produced by a compatible engine get here.
#[expect(
    unsafe_code,
    reason = "deserializing a digest-checked entry this host produced"
)]
fn deserialize_verified(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above: the bytes are an intact artifact of `Component::serialize`.
    unsafe { Component::deserialize(engine, compiled) }
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create cache directory {dir:?}"))?;
    let compiled = component.serialize()?;
    let mut data = Vec::with_capacity(DIGEST_LEN + compiled.len());
    data.extend_from_slice(&Sha256::digest(&compiled));
    data.extend_from_slice(&compiled);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &data)?;
    tmp.persist(path)?;
    Ok(())
}
