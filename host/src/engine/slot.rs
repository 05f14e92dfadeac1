//! One engine with its linker and its compiled plugins.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::HostConfig;
use super::cache::{self, CompileSource};
use crate::attempt::AttemptState;
use crate::bindings::StepPre;
use crate::plugin::PluginError;

/// A plugin compiled for one engine, ready to instantiate.
pub(crate) struct Compiled {
    pub(crate) pre: StepPre<AttemptState>,
    pub(crate) component: Component,
    pub(crate) source: CompileSource,
}

pub(crate) struct EngineSlot {
    pub(crate) engine: Engine,
    linker: Linker<AttemptState>,
    pub(crate) pooling: bool,
    compiled: Mutex<HashMap<String, Arc<OnceCell<Arc<Compiled>>>>>,
}

impl EngineSlot {
    pub(crate) fn new(metered: bool, config: &HostConfig) -> anyhow::Result<Self> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(metered);
        let (engine, pooling) = build_engine(&mut wasm, config)?;
        let mut linker = Linker::new(&engine);
        crate::capabilities::link(&mut linker)?;
        Ok(Self {
            engine,
            linker,
            pooling,
            compiled: Mutex::default(),
        })
    }

    /// The plugin compiled for this engine: from memory, else the disk cache, else compiled
    /// now (off the async threads). Concurrent callers for one plugin share one compilation.
    pub(crate) async fn compiled(
        &self,
        digest: &str,
        bytes: &Arc<[u8]>,
        origin: &str,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<Compiled>, PluginError> {
        let cell = self
            .compiled
            .lock()
            .expect("compiled-plugin lock poisoned")
            .entry(digest.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| {
            self.compile(
                bytes.clone(),
                digest.to_string(),
                origin.to_string(),
                cache_dir,
            )
        })
        .await
        .cloned()
    }

    async fn compile(
        &self,
        bytes: Arc<[u8]>,
        digest: String,
        origin: String,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<Compiled>, PluginError> {
        let engine = self.engine.clone();
        let cache_dir = cache_dir.map(Path::to_path_buf);
        let origin_for_task = origin.clone();
        let (component, source) = tokio::task::spawn_blocking(move || {
            cache::load_or_compile(&engine, &bytes, &digest, cache_dir.as_deref()).map_err(|e| {
                PluginError::Invalid {
                    origin: origin_for_task,
                    message: format!("{e:#}"),
                }
            })
        })
        .await
        .map_err(|e| PluginError::Invalid {
            origin: origin.clone(),
            message: format!("compilation panicked: {e}"),
        })??;
        self.prepare(component, source, &origin)
    }

    /// Resolves the component's imports against the linker and checks its exports.
    pub(crate) fn prepare(
        &self,
        component: Component,
        source: CompileSource,
        origin: &str,
    ) -> Result<Arc<Compiled>, PluginError> {
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::UnsupportedImports {
                origin: origin.to_string(),
                message: format!("{e:#}"),
            }
        })?;
        let pre = StepPre::new(instance_pre).map_err(|e| PluginError::NotAStep {
            origin: origin.to_string(),
            message: format!("{e:#}"),
        })?;
        Ok(Arc::new(Compiled {
            pre,
            component,
            source,
        }))
    }
}

fn build_engine(wasm: &mut Config, config: &HostConfig) -> anyhow::Result<(Engine, bool)> {
    if config.pool_instances > 0 {
        let n = config.pool_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 4)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(usize::try_from(config.ceilings.memory_bytes).unwrap_or(usize::MAX));
        super::pool::reuse_slots_warm(&mut pool);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(wasm) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                // Some machines (low vm.overcommit or address-space limits) cannot reserve
                // the pool; on-demand allocation is slower to instantiate but equally safe.
                tracing::warn!(error = %format!("{e:#}"), "pooling allocator unavailable; falling back to on-demand allocation");
                wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            }
        }
    }
    Ok((Engine::new(wasm)?, false))
}
