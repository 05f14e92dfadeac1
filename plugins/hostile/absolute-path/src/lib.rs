//! Attack: opens absolute host paths directly, including `input.host_path` (a real file on
//! the host that the test made), and reports what each read returned.
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct AbsolutePath;

impl Step for AbsolutePath {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-absolute-path", "1.0.0")
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let mut paths = vec!["/etc/passwd".to_string(), "/proc/self/environ".to_string()];
        if let Some(p) = input["host_path"].as_str() {
            paths.push(p.to_string());
        }
        let attempts: Vec<Value> = paths.iter().map(|p| plugin_support::try_read(p)).collect();
        Ok(Output::new(json!(attempts)))
    }
}

weir_sdk::export_step!(AbsolutePath);
