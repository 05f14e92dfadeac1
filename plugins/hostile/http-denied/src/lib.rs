//! Attack: sends an HTTP request to `input.url`, a host it was not granted.
use serde::Deserialize;
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Target {
    url: String,
}

struct HttpDenied;

impl Step for HttpDenied {
    type Input = Target;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-http-denied", "1.0.0")
    }

    fn run(_ctx: &Context, target: Target) -> Result<Output<String>, StepError> {
        let response = plugin_support::get(&target.url)
            .map_err(|e| StepError::fatal(format!("GET {} failed: {e}", target.url)))?;
        Ok(Output::new(response.body))
    }
}

weir_sdk::export_step!(HttpDenied);
