//! Attack: allocates and touches 1 MiB blocks until something gives.
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct MemoryBomb;

impl Step for MemoryBomb {
    type Input = Value;
    type Output = usize;

    fn meta() -> Meta {
        Meta::new("hostile-memory-bomb", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<usize>, StepError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

weir_sdk::export_step!(MemoryBomb);
