//! Attack: looks for what an earlier attempt on the same pooled slot left in linear memory,
//! then leaves marks of its own for the next one. It scans a static area (zero-initialized
//! memory, larger than the part of a slot the host keeps resident between attempts) and a
//! zeroed heap block (the allocator trusts fresh memory to be zero and skips clearing it),
//! counts the words that are not zero, and fills both with a marker.
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

/// Words in the static area: 3 MiB.
const STATIC_WORDS: usize = (3 << 20) / 8;
/// Words in the heap block: 1 MiB.
const HEAP_WORDS: usize = (1 << 20) / 8;
const MARK: u64 = 0x5EC2_E75E_C2E7_5EC2;

static AREA: [AtomicU64; STATIC_WORDS] = [const { AtomicU64::new(0) }; STATIC_WORDS];

struct MemoryResidue;

impl Step for MemoryResidue {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-memory-residue", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<Value>, StepError> {
        let found_static = AREA
            .iter()
            .filter(|w| w.load(Ordering::Relaxed) != 0)
            .count();
        let mut heap = vec![0u64; HEAP_WORDS];
        let found_heap = heap.iter().filter(|w| **w != 0).count();
        for word in &AREA {
            word.store(MARK, Ordering::Relaxed);
        }
        heap.fill(MARK);
        let marked = AREA
            .iter()
            .filter(|w| w.load(Ordering::Relaxed) == MARK)
            .count()
            + heap.iter().filter(|w| **w == MARK).count();
        // Left behind on purpose: the next attempt looks for it.
        std::mem::forget(std::hint::black_box(heap));
        Ok(Output::new(json!({
            "found_static": found_static,
            "found_heap": found_heap,
            "marked": marked,
        })))
    }
}

weir_sdk::export_step!(MemoryResidue);
