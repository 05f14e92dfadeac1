//! The per-attempt memory limiter: enforces `Limits::memory_bytes` across all of a
//! component's linear memories and records the peak for the attempt's report.

use wasmtime::ResourceLimiter;

use crate::limits::MAX_TABLE_ELEMENTS;

/// Raised (as a trap) when a guest asks for more memory than it may have.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: the step asked for {requested} bytes in total")]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    total: u64,
    pub(crate) peak: u64,
    pub(crate) exceeded: Option<MemoryLimitHit>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            total: 0,
            peak: 0,
            exceeded: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = self.total + (desired.saturating_sub(current)) as u64;
        if requested > self.limit {
            // Trap rather than return `false`: a guest allocator that sees a failed grow just
            // aborts with a less precise message, and a trap names the limit exactly.
            let hit = MemoryLimitHit {
                limit: self.limit,
                requested,
            };
            self.exceeded = Some(MemoryLimitHit {
                limit: self.limit,
                requested,
            });
            return Err(wasmtime::Error::new(hit));
        }
        self.total = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_all_memories_together_and_tracks_the_peak() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert_eq!(limiter.peak, 90);
        assert!(limiter.memory_growing(30, 50, None).is_err());
        let hit = limiter.exceeded.as_ref().unwrap();
        assert_eq!((hit.limit, hit.requested), (100, 110));
    }
}
