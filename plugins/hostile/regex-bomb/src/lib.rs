//! Attack: makes the host work hard checking its output against its own declared schema,
//! after the attempt. Two ways:
//! - `{"len": n}`: the schema's `pattern` makes a backtracking engine take exponential time
//!   (`^(a+)+$`), and the step returns `n` times `a` followed by `!`, which fails it;
//! - `{"items": n}`: the schema checks every item of an array against 64 patterns, and the
//!   step returns `n` items that match them all: a long check of a valid output.
use serde::Deserialize;
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Bomb {
    len: Option<usize>,
    items: Option<usize>,
}

struct RegexBomb;

impl Step for RegexBomb {
    type Input = Bomb;
    type Output = Value;

    fn meta() -> Meta {
        let patterns: Vec<Value> = (1..=64)
            .map(|i| json!({"pattern": format!("^a{{1,{i}}}[b-z]{{1,9}}$")}))
            .collect();
        Meta::new("hostile-regex-bomb", "1.0.0").output_schema(json!({"anyOf": [
            {"type": "string", "pattern": "^(a+)+$"},
            {"type": "array", "items": {"type": "string", "allOf": patterns}},
        ]}))
    }

    fn run(_ctx: &Context, bomb: Bomb) -> Result<Output<Value>, StepError> {
        Ok(Output::new(match (bomb.len, bomb.items) {
            (_, Some(n)) => json!(vec!["ab"; n]),
            (len, None) => json!(format!("{}!", "a".repeat(len.unwrap_or(1)))),
        }))
    }
}

weir_sdk::export_step!(RegexBomb);
