//! Attack: returns an output of `input.bytes` bytes (default 32 MiB).
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct HugeOutput;

impl Step for HugeOutput {
    type Input = Value;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-huge-output", "1.0.0")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<String>, StepError> {
        let bytes = input["bytes"].as_u64().unwrap_or(32 << 20) as usize;
        Ok(Output::new("x".repeat(bytes)))
    }
}

weir_sdk::export_step!(HugeOutput);
