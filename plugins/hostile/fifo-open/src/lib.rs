//! Attack: opens `input.path`, a FIFO with no writer that the host left in a granted
//! directory; a plain open of it blocks until a writer appears, that is for ever.
use serde::Deserialize;
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Target {
    path: String,
}

struct FifoOpen;

impl Step for FifoOpen {
    type Input = Target;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-fifo-open", "1.0.0")
    }

    fn run(_ctx: &Context, target: Target) -> Result<Output<String>, StepError> {
        let text = std::fs::read_to_string(&target.path)
            .map_err(|e| StepError::fatal(format!("open {} failed: {e}", target.path)))?;
        Ok(Output::new(text))
    }
}

weir_sdk::export_step!(FifoOpen);
