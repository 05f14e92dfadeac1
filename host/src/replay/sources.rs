//! The WASI clocks and random sources of an attempt, read through its [`Deck`]: the host's
//! own when the step runs (and written to tape), the tape's when it is replayed.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::deck::Deck;

/// The wall clock.
pub struct TapedWallClock(pub Deck);

impl HostWallClock for TapedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let live = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Duration::from_nanos(self.0.wall(live))
    }
}

/// The monotonic clock: nanoseconds since the attempt's sandbox was made.
pub struct TapedMonotonicClock {
    deck: Deck,
    start: std::time::Instant,
}

impl TapedMonotonicClock {
    /// A clock that starts at zero now.
    pub fn new(deck: Deck) -> Self {
        Self {
            deck,
            start: std::time::Instant::now(),
        }
    }
}

impl HostMonotonicClock for TapedMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.deck.monotonic(self.start.elapsed().as_nanos() as u64)
    }
}

/// A random source: the operating system's when live.
pub struct TapedRandom(pub Deck);

impl rand_core::TryRng for TapedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.random(dst, |dst| {
            // The operating system's source does not fail on any platform Weir runs on;
            // if it ever did, zeros would be a silent weakness, so stop loudly.
            getrandom::fill(dst).expect("the operating system's random source failed");
        });
        Ok(())
    }
}

/// Gives a WASI context its clocks and random sources from `deck`.
pub fn prepare(builder: &mut wasmtime_wasi::WasiCtxBuilder, deck: &Deck) {
    builder
        .wall_clock(TapedWallClock(deck.clone()))
        .monotonic_clock(TapedMonotonicClock::new(deck.clone()))
        .secure_random(TapedRandom(deck.clone()))
        .insecure_random(TapedRandom(deck.clone()));
}

/// Replaces WASI's `insecure-seed` with one read through the attempt's deck when the guest
/// asks for it (most never do), so a seed goes on tape only when it was used. Called after
/// the WASI interfaces are linked, with shadowing allowed.
pub(crate) fn link(
    linker: &mut wasmtime::component::Linker<crate::attempt::AttemptState>,
) -> anyhow::Result<()> {
    wasmtime_wasi::p2::bindings::random::insecure_seed::add_to_linker::<_, Seeded>(linker, |s| {
        TapedSeed(s.deck())
    })?;
    Ok(())
}

struct Seeded;

impl wasmtime::component::HasData for Seeded {
    type Data<'a> = TapedSeed<'a>;
}

/// The view of an attempt that `insecure-seed` gets: its deck.
struct TapedSeed<'a>(&'a Deck);

impl wasmtime_wasi::p2::bindings::random::insecure_seed::Host for TapedSeed<'_> {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        let mut live = [0u8; 16];
        getrandom::fill(&mut live).expect("the operating system's random source failed");
        let seed = self.0.seed(u128::from_le_bytes(live));
        Ok((seed as u64, (seed >> 64) as u64))
    }
}
