//! The host: engines, linkers, compiled plugins and the epoch ticker.
//!
//! Fuel metering instruments every compiled function, which costs call-heavy code dearly, so
//! the host keeps two engines: a plain one (wall-clock limits by epoch interruption only) and
//! a metered one (fuel as well), created on first use. A step pays for metering only when
//! its limits ask for fuel. Each engine has its own linker and its own compiled copy of a
//! plugin, both built once and shared by every attempt.

mod cache;
mod epoch;
pub mod pool;
mod slot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use cache::CompileSource;
pub(crate) use slot::{Compiled, EngineSlot};

use tracing::Instrument as _;

use crate::attempt::{self, AttemptContext, AttemptReport, StepSpec};
use crate::limits::Limits;
use crate::plugin::{Plugin, PluginError};

/// How often the epoch advances: the granularity of timeouts and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Concurrent attempts one engine's pooling allocator reserves slots for.
pub const DEFAULT_POOL_INSTANCES: u32 = 256;

/// Host-wide settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Upper bounds for every step's limits.
    pub ceilings: Limits,
    /// Where compiled plugins are kept between processes; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Concurrent instances the pooling allocator reserves; `0` uses on-demand allocation.
    pub pool_instances: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            ceilings: Limits::default_ceilings(),
            cache_dir: None,
            pool_instances: DEFAULT_POOL_INSTANCES,
        }
    }
}

/// The default compile cache directory: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir`, else
/// `~/.cache/weir`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("weir"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("weir"))
}

/// A Weir host. Cheap to clone; clones share engines, compiled plugins and the ticker.
#[derive(Clone)]
pub struct Host(Arc<Inner>);

struct Inner {
    config: HostConfig,
    plain: Arc<EngineSlot>,
    metered: Mutex<Option<Arc<EngineSlot>>>,
    ticker: epoch::Ticker,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Builds the plain engine and starts the epoch ticker. Must be called within a Tokio
    /// runtime only for running steps, not for construction.
    pub fn new(config: HostConfig) -> anyhow::Result<Self> {
        let ticker = epoch::Ticker::start(EPOCH_TICK);
        let plain = Arc::new(EngineSlot::new(false, &config)?);
        ticker.watch(plain.engine.clone());
        Ok(Self(Arc::new(Inner {
            config,
            plain,
            metered: Mutex::new(None),
            ticker,
        })))
    }

    /// The host's settings.
    pub fn config(&self) -> &HostConfig {
        &self.0.config
    }

    /// Whether the plain engine got its pooling allocator (false: on-demand, with the
    /// reason logged at start).
    pub fn is_pooling(&self) -> bool {
        self.0.plain.pooling
    }

    pub(crate) fn plain(&self) -> &Arc<EngineSlot> {
        &self.0.plain
    }

    fn metered(&self) -> anyhow::Result<Arc<EngineSlot>> {
        let mut metered = self.0.metered.lock().expect("engine lock poisoned");
        if let Some(slot) = &*metered {
            return Ok(slot.clone());
        }
        let slot = Arc::new(EngineSlot::new(true, &self.0.config)?);
        self.0.ticker.watch(slot.engine.clone());
        *metered = Some(slot.clone());
        Ok(slot)
    }

    /// Loads, validates, compiles (or takes from the compile cache) and describes a plugin.
    pub async fn load_plugin_file(&self, path: &Path) -> Result<Plugin, PluginError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| PluginError::Read {
                path: path.to_path_buf(),
                error: Arc::new(source),
            })?;
        self.load_plugin_bytes(bytes, path.display().to_string())
            .await
    }

    /// Like [`Host::load_plugin_file`], for bytes from elsewhere; `origin` names them in errors.
    pub async fn load_plugin_bytes(
        &self,
        bytes: Vec<u8>,
        origin: String,
    ) -> Result<Plugin, PluginError> {
        Plugin::load(self, bytes, origin).await
    }

    /// Runs one attempt of `plugin` on `input` (JSON text) under `spec`, its limits clamped
    /// to the host's ceilings. A limit hit, trap or guest error is a typed failure inside the
    /// report; `Err` means the host itself could not run the attempt.
    pub async fn run_step(
        &self,
        plugin: &Plugin,
        spec: &StepSpec,
        input: &str,
        ctx: AttemptContext,
    ) -> anyhow::Result<AttemptReport> {
        let limits = spec.limits.clamped_to(&self.0.config.ceilings);
        let slot = if limits.fuel.is_some() {
            self.metered()?
        } else {
            self.plain().clone()
        };
        let compiled = slot
            .compiled(
                plugin.digest(),
                plugin.bytes(),
                plugin.origin(),
                self.0.config.cache_dir.as_deref(),
            )
            .await?;
        let span = tracing::info_span!("attempt", run_id = %ctx.run_id, step_id = %ctx.step_id, attempt = ctx.attempt, plugin = %plugin.meta().name);
        // The span is entered only while the attempt's future is polled: a guard held
        // across `.await` would leave it current on the thread for whatever runs next
        // there (other runs' attempts, unrelated log lines).
        attempt::run(&slot, &compiled, spec, &limits, input, &ctx)
            .instrument(span)
            .await
    }
}
