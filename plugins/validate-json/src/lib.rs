//! Validates its input against the JSON Schema in config key `schema` and passes the input
//! through unchanged. Every violation is reported, each with the JSON pointer of the value
//! at fault, so a caller can fix all of them at once.

use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError, config};

/// At most this many violations are listed, so a huge bad document yields a readable error.
const MAX_REPORTED_ERRORS: usize = 20;

struct ValidateJson;

impl Step for ValidateJson {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("validate-json", "1.0.0")
            .description("Checks the input against a JSON Schema given in config `schema`")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let schema: Value = config::require("schema")?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            StepError::fatal(format!("config `schema` is not a valid JSON Schema: {e}"))
        })?;
        let errors: Vec<String> = validator
            .iter_errors(&input)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                };
                format!("at {at}: {e}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(Output::new(input).confidence(1.0));
        }
        let shown = errors.len().min(MAX_REPORTED_ERRORS);
        let mut message = format!(
            "{} schema violation(s): {}",
            errors.len(),
            errors[..shown].join("; ")
        );
        if errors.len() > shown {
            message.push_str(&format!("; and {} more", errors.len() - shown));
        }
        Err(StepError::invalid_input(message))
    }
}

weir_sdk::export_step!(ValidateJson);
