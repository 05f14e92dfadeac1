//! Attack: climbs out of the granted directory `input.dir` with `..` in several forms and
//! reports what each read returned.
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct PathEscape;

impl Step for PathEscape {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-path-escape", "1.0.0")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let dir = input["dir"].as_str().unwrap_or("/data");
        let attempts: Vec<Value> = [
            format!("{dir}/../secret.txt"),
            format!("{dir}/sub/../../secret.txt"),
            format!("{dir}/../../../../../../etc/passwd"),
            "../secret.txt".to_string(),
            "secret.txt".to_string(),
        ]
        .iter()
        .map(|p| plugin_support::try_read(p))
        .collect();
        Ok(Output::new(json!(attempts)))
    }
}

weir_sdk::export_step!(PathEscape);
