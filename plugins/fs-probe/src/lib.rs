//! Reads, writes and lists files in the directories the host grants, reporting each
//! operation's result instead of failing, so tests can see exactly what the sandbox allowed.

use serde::Deserialize;
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Op {
    Read { path: String },
    Write { path: String, content: String },
    List { path: String },
}

fn run_op(op: &Op) -> Value {
    let result = match op {
        Op::Read { path } => std::fs::read_to_string(path).map(Value::String),
        Op::Write { path, content } => std::fs::write(path, content).map(|()| Value::Bool(true)),
        Op::List { path } => std::fs::read_dir(path).and_then(|entries| {
            let mut names = entries
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            names.sort();
            Ok(json!(names))
        }),
    };
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

struct FsProbe;

impl Step for FsProbe {
    type Input = Vec<Op>;
    type Output = Vec<Value>;

    fn meta() -> Meta {
        Meta::new("fs-probe", "1.0.0")
            .description("Reads, writes and lists granted files")
            .capability("files")
    }

    fn run(_ctx: &Context, ops: Vec<Op>) -> Result<Output<Vec<Value>>, StepError> {
        Ok(Output::new(ops.iter().map(run_op).collect()))
    }
}

weir_sdk::export_step!(FsProbe);
