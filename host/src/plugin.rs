//! Plugins: WebAssembly components implementing `weir:step`, identified by sha256.
//!
//! Loading checks, in order, that the bytes are WebAssembly, that they are a component (not
//! a core module), that every import is one the host provides, that the exports are the
//! `weir:step` world's, and that `describe()` answers with usable metadata. Each failure
//! has its own error naming the file and what to do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::attempt::{self, AttemptContext, StepSpec};
use crate::engine::{CompileSource, Host};
use crate::failure::StepFailure;
use crate::limits::Limits;
use crate::schema::Schema;

/// Limits for the `describe()` call made at load time: metadata is small and quick.
const DESCRIBE_LIMITS: Limits = Limits {
    fuel: None,
    timeout: Duration::from_secs(10),
    memory_bytes: 256 * 1024 * 1024,
    output_bytes: 1024 * 1024,
    log_lines: 100,
    log_bytes: 64 * 1024,
    stdio_bytes: 64 * 1024,
    http_requests: 0,
};

/// Longest step name `describe()` may return, in bytes; a name is an identifier shown in
/// every report, so a longer one is refused.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest version `describe()` may return, in bytes (refused past it).
pub const MAX_VERSION_BYTES: usize = 64;
/// Longest description kept, in bytes; a longer one is cut with a marker.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Most capabilities `describe()` may list, and the longest name of one, in bytes (refused
/// past either).
pub const MAX_CAPABILITIES: usize = 32;
/// See [`MAX_CAPABILITIES`].
pub const MAX_CAPABILITY_BYTES: usize = 64;
/// Longest input or output schema, in bytes of JSON text (refused past it): a schema is
/// compiled at load and kept for the plugin's life.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Longest metadata as a whole, in bytes, every field counted as kept (refused past it):
/// it is held for the plugin's life, printed by `weir plugin inspect` and served by
/// `GET /v1/plugins`.
pub const MAX_META_BYTES: usize = 512 * 1024;

/// A plugin that could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("cannot read plugin {path:?}: {error}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        error: Arc<std::io::Error>,
    },
    /// Not WebAssembly at all.
    #[error(
        "{origin} is not a WebAssembly file (it starts with {found}); a plugin is a component built for the wasm32-wasip2 target"
    )]
    NotWasm {
        /// The file or source.
        origin: String,
        /// The first bytes, in hex.
        found: String,
    },
    /// A core module rather than a component.
    #[error(
        "{origin} is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`"
    )]
    CoreModule {
        /// The file or source.
        origin: String,
    },
    /// Malformed or failed to compile.
    #[error("{origin} is not a valid WebAssembly component: {message}")]
    Invalid {
        /// The file or source.
        origin: String,
        /// The compiler's message.
        message: String,
    },
    /// Imports something the host does not offer.
    #[error("{origin} imports something Weir does not provide: {message}")]
    UnsupportedImports {
        /// The file or source.
        origin: String,
        /// The linker's message.
        message: String,
    },
    /// Does not export the `weir:step` world.
    #[error(
        "{origin} does not implement the weir:step world (exports `describe` and `run`): {message}"
    )]
    NotAStep {
        /// The file or source.
        origin: String,
        /// What is missing or mistyped.
        message: String,
    },
    /// `describe()` failed or returned unusable metadata.
    #[error("{origin}: describe() {message}")]
    Describe {
        /// The file or source.
        origin: String,
        /// What went wrong.
        message: String,
    },
}

/// What a step says about itself, with its schemas parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMeta {
    /// Short machine name.
    pub name: String,
    /// The step's own semantic version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// JSON Schema for the input, if declared.
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema for the output payload, if declared.
    pub output_schema: Option<serde_json::Value>,
    /// Capabilities the step expects to be granted.
    pub capabilities: Vec<String>,
}

/// A loaded plugin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Plugin(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    digest: String,
    bytes: Arc<[u8]>,
    origin: String,
    meta: StepMeta,
    imports: Vec<String>,
    exports: Vec<String>,
    compile_source: CompileSource,
    load_time: Duration,
    input_schema: Option<Schema>,
    output_schema: Option<Schema>,
}

impl Plugin {
    pub(crate) async fn load(
        host: &Host,
        bytes: Vec<u8>,
        origin: String,
    ) -> Result<Self, PluginError> {
        let started = Instant::now();
        sniff(&bytes, &origin)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let bytes: Arc<[u8]> = bytes.into();
        let slot = host.plain().clone();
        let compiled = slot
            .compiled(&digest, &bytes, &origin, host.config().cache_dir.as_deref())
            .await?;
        let (meta, input_schema, output_schema) = describe(&slot, &compiled, &origin).await?;
        let ty = compiled.component.component_type();
        let imports = ty
            .imports(&slot.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = ty
            .exports(&slot.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(Plugin(Arc::new(Inner {
            digest,
            bytes,
            origin,
            meta,
            imports,
            exports,
            compile_source: compiled.source,
            load_time: started.elapsed(),
            input_schema,
            output_schema,
        })))
    }

    /// The sha256 of the component bytes, in hex.
    pub fn digest(&self) -> &str {
        &self.0.digest
    }

    /// The component bytes.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.0.bytes
    }

    /// Where the plugin came from (a path, usually).
    pub fn origin(&self) -> &str {
        &self.0.origin
    }

    /// What `describe()` returned.
    pub fn meta(&self) -> &StepMeta {
        &self.0.meta
    }

    /// The declared input schema, compiled.
    pub fn input_schema(&self) -> Option<&Schema> {
        self.0.input_schema.as_ref()
    }

    /// The declared output schema, compiled.
    pub fn output_schema(&self) -> Option<&Schema> {
        self.0.output_schema.as_ref()
    }

    /// The component's import names (interfaces it needs from the host).
    pub fn imports(&self) -> &[String] {
        &self.0.imports
    }

    /// The component's export names.
    pub fn exports(&self) -> &[String] {
        &self.0.exports
    }

    /// Whether the plain engine's compilation came from the disk cache.
    pub fn compile_source(&self) -> CompileSource {
        self.0.compile_source
    }

    /// How long loading took: reading, compiling or loading from cache, and `describe()`.
    pub fn load_time(&self) -> Duration {
        self.0.load_time
    }
}

fn sniff(bytes: &[u8], origin: &str) -> Result<(), PluginError> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(());
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(PluginError::CoreModule {
            origin: origin.to_string(),
        });
    }
    let found = if bytes.is_empty() {
        "nothing: the file is empty".to_string()
    } else {
        format!("0x{}", hex::encode(&bytes[..bytes.len().min(8)]))
    };
    Err(PluginError::NotWasm {
        origin: origin.to_string(),
        found,
    })
}

async fn describe(
    slot: &crate::engine::EngineSlot,
    compiled: &Arc<crate::engine::Compiled>,
    origin: &str,
) -> Result<(StepMeta, Option<Schema>, Option<Schema>), PluginError> {
    let fail = |message: String| PluginError::Describe {
        origin: origin.to_string(),
        message,
    };
    let ctx = AttemptContext {
        run_id: "load".into(),
        step_id: "describe".into(),
        ..AttemptContext::default()
    };
    let deadline = Instant::now() + DESCRIBE_LIMITS.timeout;
    let mut store =
        attempt::new_store(slot, &StepSpec::default(), &DESCRIBE_LIMITS, &ctx, deadline)
            .map_err(|e| fail(format!("could not start: {e:#}")))?;
    let call = async {
        let step = compiled.pre.instantiate_async(&mut store).await?;
        step.call_describe(&mut store).await
    };
    let meta = match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(Ok(meta)) => meta,
        Ok(Err(e)) => {
            let failure = StepFailure::Trap {
                message: format!("{e:#}"),
            };
            return Err(fail(format!("failed: {failure}")));
        }
        Err(_) => {
            return Err(fail(format!(
                "did not answer within {:?}",
                DESCRIBE_LIMITS.timeout
            )));
        }
    };
    let schema = |field: &str, text: Option<String>| -> Result<Option<Schema>, PluginError> {
        text.map(|t| {
            let schema: serde_json::Value = serde_json::from_str(&t)
                .map_err(|e| fail(format!("returned an {field} that is not JSON: {e}")))?;
            // Compiled here so a step with a broken schema fails to load, not mid-run.
            Schema::compile(schema).map_err(|e| {
                fail(format!(
                    "returned an {field} that is not a valid JSON Schema: {e}"
                ))
            })
        })
        .transpose()
    };
    check_meta_bounds(&meta).map_err(fail)?;
    if let Err(e) = semver::Version::parse(&meta.version) {
        return Err(fail(format!(
            "returned version {:?}, which is not a semantic version such as 1.0.0: {e}",
            meta.version
        )));
    }
    let input_schema = schema("input schema", meta.input_schema)?;
    let output_schema = schema("output schema", meta.output_schema)?;
    let meta = StepMeta {
        input_schema: input_schema.as_ref().map(|s| s.source().clone()),
        output_schema: output_schema.as_ref().map(|s| s.source().clone()),
        name: meta.name,
        version: meta.version,
        description: crate::text::truncate(meta.description, MAX_DESCRIPTION_BYTES),
        capabilities: meta.capabilities,
    };
    Ok((meta, input_schema, output_schema))
}

/// Refuses metadata past its bounds, or with a name or capability that is not one printable
/// line; the message names the field and the bound.
fn check_meta_bounds(meta: &crate::bindings::StepMeta) -> Result<(), String> {
    let schemas = [&meta.input_schema, &meta.output_schema]
        .into_iter()
        .flatten()
        .map(String::len);
    // The description counts as kept: it is cut, not refused.
    let total = meta.name.len()
        + meta.version.len()
        + meta.description.len().min(MAX_DESCRIPTION_BYTES)
        + schemas.clone().sum::<usize>()
        + meta.capabilities.iter().map(String::len).sum::<usize>();
    if total > MAX_META_BYTES {
        return Err(format!(
            "returned {total} bytes of metadata; the limit is {MAX_META_BYTES}"
        ));
    }
    let printable = |text: &str| {
        !text
            .chars()
            .any(|c| c.is_control() || crate::text::is_invisible_or_bidi(c))
    };
    if meta.name.trim().is_empty() {
        return Err("returned an empty name".into());
    }
    if meta.name.len() > MAX_NAME_BYTES || !printable(&meta.name) {
        return Err(format!(
            "returned a name of {} bytes that is not one printable line of at most {MAX_NAME_BYTES} bytes: {:?}",
            meta.name.len(),
            crate::text::truncated(&meta.name, 64)
        ));
    }
    if meta.version.len() > MAX_VERSION_BYTES {
        return Err(format!(
            "returned a version of {} bytes; the limit is {MAX_VERSION_BYTES}",
            meta.version.len()
        ));
    }
    if let Some(len) = schemas.clone().find(|&len| len > MAX_SCHEMA_BYTES) {
        return Err(format!(
            "returned a schema of {len} bytes; the limit is {MAX_SCHEMA_BYTES}"
        ));
    }
    if meta.capabilities.len() > MAX_CAPABILITIES {
        return Err(format!(
            "returned {} capabilities; the limit is {MAX_CAPABILITIES}",
            meta.capabilities.len()
        ));
    }
    if let Some(cap) = meta
        .capabilities
        .iter()
        .find(|c| c.len() > MAX_CAPABILITY_BYTES || !printable(c))
    {
        return Err(format!(
            "returned a capability that is not one printable line of at most {MAX_CAPABILITY_BYTES} bytes: {:?}",
            crate::text::truncated(cap, 64)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::StepMeta;

    fn meta() -> StepMeta {
        StepMeta {
            name: "ok".into(),
            version: "1.0.0".into(),
            description: "fine".into(),
            input_schema: None,
            output_schema: None,
            capabilities: vec!["http".into()],
        }
    }

    /// Each field past its bound, and the whole past its bound, is refused, naming what and
    /// the limit; a description past its bound is cut, not refused.
    #[test]
    fn metadata_past_its_bounds_is_refused_by_field() {
        assert_eq!(check_meta_bounds(&meta()), Ok(()));
        let big = |n: usize| "x".repeat(n);
        let cases: Vec<(StepMeta, String)> = vec![
            (
                StepMeta {
                    name: big(MAX_NAME_BYTES + 1),
                    ..meta()
                },
                format!("returned a name of {} bytes", MAX_NAME_BYTES + 1),
            ),
            (
                StepMeta {
                    name: "two\nlines".into(),
                    ..meta()
                },
                "returned a name of 9 bytes that is not one printable line".into(),
            ),
            (
                StepMeta {
                    version: big(MAX_VERSION_BYTES + 1),
                    ..meta()
                },
                format!("the limit is {MAX_VERSION_BYTES}"),
            ),
            (
                StepMeta {
                    output_schema: Some(big(MAX_SCHEMA_BYTES + 1)),
                    ..meta()
                },
                format!(
                    "returned a schema of {} bytes; the limit is {MAX_SCHEMA_BYTES}",
                    MAX_SCHEMA_BYTES + 1
                ),
            ),
            (
                StepMeta {
                    input_schema: Some(big(MAX_SCHEMA_BYTES)),
                    output_schema: Some(big(MAX_SCHEMA_BYTES)),
                    ..meta()
                },
                format!("bytes of metadata; the limit is {MAX_META_BYTES}"),
            ),
            (
                StepMeta {
                    capabilities: vec!["a\u{202E}b".into()],
                    ..meta()
                },
                "returned a capability that is not one printable line".into(),
            ),
            (
                StepMeta {
                    capabilities: vec!["c".into(); MAX_CAPABILITIES + 1],
                    ..meta()
                },
                format!("the limit is {MAX_CAPABILITIES}"),
            ),
        ];
        for (meta, expected) in cases {
            let err = check_meta_bounds(&meta).unwrap_err();
            assert!(err.contains(&expected), "{err} (expected {expected:?})");
        }
        let long = StepMeta {
            description: big(10 * MAX_META_BYTES),
            ..meta()
        };
        assert_eq!(check_meta_bounds(&long), Ok(()));
    }
}
