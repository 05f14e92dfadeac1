//! Attack: spins forever without touching memory or calling the host.
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct InfiniteLoop;

impl Step for InfiniteLoop {
    type Input = Value;
    type Output = u64;

    fn meta() -> Meta {
        Meta::new("hostile-infinite-loop", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<u64>, StepError> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

weir_sdk::export_step!(InfiniteLoop);
