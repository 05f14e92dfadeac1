//! A circuit breaker per provider, shared by every run on the host: after enough transient
//! failures in a row it opens and calls fail fast; after a cooldown one probe goes through
//! (half-open), and its outcome closes or reopens it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When the breaker opens, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Transient failures in a row that open it.
    pub failure_threshold: u32,
    /// How long it stays open before letting a probe through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe is allowed to find out whether the provider is back.
    HalfOpen,
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
    probing: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Instant::now(),
                probing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("breaker poisoned")
    }

    /// Where it is now (an open breaker past its cooldown reads as half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match inner.state {
            BreakerState::Open if inner.opened_at.elapsed() >= self.config.cooldown => {
                BreakerState::HalfOpen
            }
            state => state,
        }
    }

    /// Whether a call may go upstream now; when half-open, only the one probe may.
    pub fn admit(&self) -> bool {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open if inner.opened_at.elapsed() < self.config.cooldown => false,
            BreakerState::Open | BreakerState::HalfOpen if !inner.probing => {
                inner.state = BreakerState::HalfOpen;
                inner.probing = true;
                true
            }
            BreakerState::Open | BreakerState::HalfOpen => false,
        }
    }

    /// Records an admitted call's outcome: `Err(true)` is a transient failure (it counts
    /// towards opening); success and non-transient failures (the provider answered) close.
    pub fn record(&self, outcome: Result<(), bool>) {
        let mut inner = self.lock();
        inner.probing = false;
        match outcome {
            Ok(()) | Err(false) => {
                inner.state = BreakerState::Closed;
                inner.failures = 0;
            }
            Err(true) => {
                inner.failures += 1;
                if inner.state == BreakerState::HalfOpen
                    || inner.failures >= self.config.failure_threshold
                {
                    inner.state = BreakerState::Open;
                    inner.opened_at = Instant::now();
                }
            }
        }
    }
}
