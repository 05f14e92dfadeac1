//! Attack: declares an output schema whose `pattern` makes a backtracking engine take
//! exponential time (`^(a+)+$`), then returns `input.len` times `a` followed by `!`, which
//! fails it. The host checks the output against the schema after the attempt, on its own
//! threads, outside the step's fuel and timeout.
use serde::Deserialize;
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Bomb {
    len: usize,
}

struct RegexBomb;

impl Step for RegexBomb {
    type Input = Bomb;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-regex-bomb", "1.0.0")
            .output_schema(serde_json::json!({"type": "string", "pattern": "^(a+)+$"}))
    }

    fn run(_ctx: &Context, bomb: Bomb) -> Result<Output<String>, StepError> {
        Ok(Output::new(format!("{}!", "a".repeat(bomb.len))))
    }
}

weir_sdk::export_step!(RegexBomb);
