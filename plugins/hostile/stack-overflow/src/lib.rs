//! Attack: recurses without bound until the wasm call stack is exhausted. The frames keep
//! their state in wasm locals (not in linear memory), so it is the host's stack limit that
//! stops it.
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[inline(never)]
fn descend(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        0
    } else {
        descend(depth + 1).wrapping_add(depth)
    }
}

struct StackOverflow;

impl Step for StackOverflow {
    type Input = Value;
    type Output = u64;

    fn meta() -> Meta {
        Meta::new("hostile-stack-overflow", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<u64>, StepError> {
        Ok(Output::new(descend(0)))
    }
}

weir_sdk::export_step!(StackOverflow);
