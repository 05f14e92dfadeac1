//! `--gate`: a CEL condition over an evaluation's summary that decides the exit code, so an
//! evaluation can stop a change in CI (`route_agreement.lo >= 0.95 && errors == 0`).

use cel::{Context, Program};

use super::summary::Summary;
use crate::workflow::cel_json::ExactNumbers;

/// A compiled gate.
pub struct Gate {
    source: String,
    program: Program,
}

impl Gate {
    /// Compiles `source`; the error names what is wrong and where.
    pub fn compile(source: &str) -> anyhow::Result<Self> {
        let program = Program::compile(source).map_err(|e| {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            anyhow::anyhow!("--gate `{source}` is not a valid condition: {first}")
        })?;
        Ok(Self {
            source: source.to_string(),
            program,
        })
    }

    /// Whether `summary` passes: every top-level field of the summary is a variable.
    pub fn passes(&self, summary: &Summary) -> anyhow::Result<bool> {
        let json = serde_json::to_value(summary)?;
        let mut exact = ExactNumbers::default();
        let mut context = Context::default();
        if let serde_json::Value::Object(fields) = &json {
            for (name, value) in fields {
                context.add_variable_from_value(name.as_str(), exact.admit(value));
            }
        }
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(pass)) => Ok(pass),
            Ok(other) => anyhow::bail!(
                "--gate `{}` must be true or false, but gave {other:?}",
                self.source
            ),
            Err(e) => {
                let fields: Vec<&str> = json
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                anyhow::bail!(
                    "--gate `{}` failed: {e} (the summary's fields: {})",
                    self.source,
                    fields.join(", ")
                )
            }
        }
    }
}
