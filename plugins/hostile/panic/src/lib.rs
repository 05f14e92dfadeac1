//! Attack: panics mid-step (which aborts: a trap).
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct Panic;

impl Step for Panic {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-panic", "1.0.0")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let items: Vec<u32> = Vec::new();
        let index = input["index"].as_u64().unwrap_or(3) as usize;
        panic!(
            "step gave up: index {index} is out of range for {} items",
            items.len()
        );
    }
}

weir_sdk::export_step!(Panic);
