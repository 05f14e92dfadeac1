//! Echoes its input. Config switches turn it into a probe of the host:
//! `annotate` (report config and context, log a line, print to stdout and stderr),
//! `route` and `confidence` (set on the output), `fail` (return that step-error variant),
//! `sleep_ms` (sleep first), `remember` / `recall` (write the input to, or read, a run-state key),
//! `clock` (report the wall clock, the monotonic time between two reads, a random number and a
//! hash seeded by the host), `ask` (send
//! each of these questions to the model alias `alias`, in order, and report the answers).

use serde_json::{Value, json};
use std::hash::BuildHasher as _;

use weir_sdk::{Context, Meta, Output, Step, StepError, config, log, model, state};

struct Echo;

impl Step for Echo {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("echo", "1.0.0")
            .description("Echoes its input; probes config, context, logging and routing")
            // Any output but one sentinel, so tests can make the host catch a schema violation.
            .output_schema(json!({"not": {"const": "violate-output-schema"}}))
    }

    fn run(ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        if let Some(kind) = config::get::<String>("fail")? {
            let message = format!("asked to fail with {kind}");
            return Err(match kind.as_str() {
                "invalid-input" => StepError::invalid_input(message),
                "transient" => StepError::transient(message),
                "needs-review" => StepError::needs_review(message),
                _ => StepError::fatal(message),
            });
        }
        if let Some(ms) = config::get::<u64>("sleep_ms")? {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if config::get::<bool>("clock")?.unwrap_or(false) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let started = std::time::Instant::now();
            let between = started.elapsed();
            let random = wasip2::random::random::get_random_u64();
            // The standard library seeds its hash keys from the host's insecure seed.
            let hash = std::collections::hash_map::RandomState::new().hash_one(0u8);
            return Ok(Output::new(json!({
                "input": input,
                "now_ns": now.as_nanos().to_string(),
                "between_ns": between.as_nanos().to_string(),
                "random": random.to_string(),
                "hash": hash.to_string(),
            })));
        }
        if let Some(questions) = config::get::<Vec<String>>("ask")? {
            let alias = config::get::<String>("alias")?.unwrap_or_else(|| "fast".into());
            let mut answers = Vec::new();
            for question in questions {
                answers.push(model::Request::new(&alias).user(question).send()?.content);
            }
            return Ok(Output::new(json!({ "input": input, "answers": answers })));
        }
        if let Some(key) = config::get::<String>("remember")? {
            state::set(&key, &input)?;
        }
        if let Some(key) = config::get::<String>("recall")? {
            let recalled: Option<Value> = state::get(&key)?;
            return Ok(Output::new(json!({ "input": input, "recalled": recalled })));
        }
        let payload = if config::get::<bool>("annotate")?.unwrap_or(false) {
            log::info(&format!("echo attempt {} of {}", ctx.attempt, ctx.step_id));
            println!("echo stdout line");
            eprintln!("echo stderr line");
            json!({
                "input": input,
                "config": config::all(),
                "context": {
                    "run_id": ctx.run_id,
                    "step_id": ctx.step_id,
                    "attempt": ctx.attempt,
                    "deadline_ms": ctx.deadline.map(|d| d.as_millis() as u64),
                },
            })
        } else {
            input
        };
        let mut output = Output::new(payload);
        if let Some(route) = config::get::<String>("route")? {
            output = output.route(route);
        }
        if let Some(confidence) = config::get::<f64>("confidence")? {
            output = output.confidence(confidence);
        }
        Ok(output)
    }
}

weir_sdk::export_step!(Echo);
