//! Attack: text the host keeps or shows, as large as the guest can make it. Its
//! `describe()` returns a 1 MiB description; `run` does what `input.attack` says:
//! - `error`: fails `fatal` with a message of `input.bytes` bytes (default 16 MiB);
//! - `log`: logs `input.lines` lines of `input.bytes` bytes each;
//! - `denials`: asks `input.count` times for a model alias of `input.bytes` bytes (no model
//!   is granted), then fails with the last refusal.
use serde::Deserialize;
use weir_sdk::{Context, Meta, Output, Step, StepError, log, model};

#[derive(Deserialize)]
struct Attack {
    attack: String,
    #[serde(default = "default_bytes")]
    bytes: usize,
    #[serde(default)]
    lines: usize,
    #[serde(default)]
    count: usize,
}

fn default_bytes() -> usize {
    16 << 20
}

struct TextBomb;

impl Step for TextBomb {
    type Input = Attack;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-text-bomb", "1.0.0").description("d".repeat(1 << 20))
    }

    fn run(_ctx: &Context, attack: Attack) -> Result<Output<String>, StepError> {
        match attack.attack.as_str() {
            "error" => Err(StepError::fatal("e".repeat(attack.bytes))),
            "log" => {
                let line = "l".repeat(attack.bytes);
                for _ in 0..attack.lines {
                    log::info(&line);
                }
                Ok(Output::new("logged".into()))
            }
            "denials" => {
                let alias = "m".repeat(attack.bytes);
                let mut last = None;
                for _ in 0..attack.count {
                    last = model::Request::new(alias.clone()).user("hi").send().err();
                }
                Err(last.map_or_else(|| StepError::fatal("no refusal"), StepError::from))
            }
            other => Err(StepError::invalid_input(format!(
                "unknown attack {other:?}"
            ))),
        }
    }
}

weir_sdk::export_step!(TextBomb);
