//! The epoch ticker: one thread that advances every engine's epoch at a fixed interval.
//!
//! Epoch interruption is how wall-clock limits reach guest code without the cost of fuel:
//! each tick lets a running guest yield and have its deadline checked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Engine;

pub(crate) struct Ticker {
    engines: Arc<Mutex<Vec<Engine>>>,
    stop: Arc<AtomicBool>,
}

impl Ticker {
    pub(crate) fn start(tick: Duration) -> Self {
        let engines: Arc<Mutex<Vec<Engine>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (watched, stopped) = (engines.clone(), stop.clone());
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    for engine in watched.lock().expect("ticker lock poisoned").iter() {
                        engine.increment_epoch();
                    }
                }
            })
            .expect("failed to start the epoch ticker thread");
        Self { engines, stop }
    }

    pub(crate) fn watch(&self, engine: Engine) {
        self.engines
            .lock()
            .expect("ticker lock poisoned")
            .push(engine);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
