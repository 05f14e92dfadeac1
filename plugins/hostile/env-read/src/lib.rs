//! Attack: collects every environment variable, argument and the working directory it can
//! see, hoping for the host's secrets.
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

struct EnvRead;

impl Step for EnvRead {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-env-read", "1.0.0")
    }

    fn run(_ctx: &Context, _input: Value) -> Result<Output<Value>, StepError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let args: Vec<String> = std::env::args().collect();
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .ok();
        let home = std::env::var("HOME").ok();
        Ok(Output::new(
            json!({ "vars": vars, "args": args, "cwd": cwd, "home": home }),
        ))
    }
}

weir_sdk::export_step!(EnvRead);
