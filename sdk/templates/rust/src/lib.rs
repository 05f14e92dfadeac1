//! {{name}}: a Weir step. Counts the words of `text` and shouts it back.

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Input {
    text: String,
}

#[derive(Serialize)]
struct Shout {
    words: usize,
    shout: String,
}

struct Shouter;

impl Step for Shouter {
    type Input = Input;
    type Output = Shout;

    fn meta() -> Meta {
        Meta::new("{{name}}", "0.1.0").description("Counts the words of a text and shouts it back")
    }

    fn run(ctx: &Context, input: Input) -> Result<Output<Shout>, StepError> {
        let text = input.text.trim();
        if text.is_empty() {
            return Err(StepError::invalid_input("the text is empty"));
        }
        let suffix: String = weir_sdk::config::get("suffix")?.unwrap_or_else(|| "!".into());
        weir_sdk::log::info(&format!("attempt {} of step {}", ctx.attempt, ctx.step_id));
        Ok(Output::new(Shout {
            words: text.split_whitespace().count(),
            shout: text.to_uppercase() + &suffix,
        }))
    }
}

weir_sdk::export_step!(Shouter);
