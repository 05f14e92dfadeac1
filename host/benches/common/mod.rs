//! The raw wasmtime floor shared by the benchmarks: the same `weir:step` component run with
//! nothing but `InstancePre`, a default WASI context and stub capabilities.

#![allow(dead_code, reason = "each benchmark uses part of this")]

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub mod raw {
    wasmtime::component::bindgen!({ world: "step", path: "../wit", exports: { default: async } });
}

/// The floor's store data: a default WASI context (the component imports WASI) and stubs.
pub struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl raw::weir::step::log::Host for RawState {
    fn log(&mut self, _level: raw::weir::step::log::Level, _message: String) {}
}

impl raw::weir::step::config::Host for RawState {
    fn get(&mut self, _key: String) -> Option<String> {
        None
    }
    fn all(&mut self) -> String {
        "{}".into()
    }
}

impl raw::weir::step::state::Host for RawState {
    fn get(&mut self, _key: String) -> Option<String> {
        None
    }
    fn set(&mut self, _key: String, _value: String) -> Result<(), String> {
        Ok(())
    }
    fn delete(&mut self, _key: String) {}
}

/// How the floor's pooling allocator resets a slot between instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// wasmtime's defaults: every slot's memory is returned with `madvise`.
    Default,
    /// Weir's setting ([`weir::engine::pool::reuse_slots_warm`]): dirtied pages are reset
    /// in place and stay resident, where the kernel can find them. A like-for-like floor.
    Warm,
}

/// The floor: an engine with pooling and epoch interruption, a linker with WASI and stubs,
/// and the component's `InstancePre`.
pub struct Floor {
    pub engine: Engine,
    pub pre: raw::StepPre<RawState>,
}

impl Floor {
    pub fn new(component_path: &str, slots: Slots) -> Self {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        if slots == Slots::Warm {
            weir::engine::pool::reuse_slots_warm(&mut pool);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).unwrap();
        let component = wasmtime::component::Component::from_file(&engine, component_path).unwrap();
        let mut linker: Linker<RawState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        raw::weir::step::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
        raw::weir::step::config::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
        raw::weir::step::state::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
        let pre = raw::StepPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Self { engine, pre }
    }

    /// One call of the step's `run` in a fresh store; returns the payload.
    pub async fn call(&self, input: &str) -> String {
        let mut store = Store::new(
            &self.engine,
            RawState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(u64::MAX / 2);
        let step = self.pre.instantiate_async(&mut store).await.unwrap();
        let ctx = raw::weir::step::types::StepContext {
            run_id: "r".into(),
            step_id: "s".into(),
            attempt: 1,
            deadline_ms: None,
        };
        step.call_run(&mut store, &ctx, input)
            .await
            .unwrap()
            .unwrap()
            .payload
    }
}

/// Median time per operation over `samples` batches of `batch` operations, after one batch
/// of warm-up.
pub async fn per_op<F, Fut>(samples: usize, batch: usize, mut op: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..batch {
        op().await;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = std::time::Instant::now();
        for _ in 0..batch {
            op().await;
        }
        times.push(start.elapsed() / batch as u32);
    }
    times.sort();
    times[samples / 2]
}
