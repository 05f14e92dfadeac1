//! CEL expressions for conditions, input mappings and the run output.
//!
//! An expression sees two variables: `input` (the run input) and `steps`, a map from step id
//! to `{output, confidence, route, status}`. Which steps an expression reads is found from
//! its syntax tree when the workflow loads, so a reference to an unknown step is an error
//! before anything runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr as Node};
use cel::{Context, IdedExpr, Program};
use serde_json::Value as Json;

use super::cel_json::ExactNumbers;

/// Variables an expression may use.
pub const VARIABLES: &[&str] = &["input", "steps"];

/// A compiled CEL expression with its source text.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// What an expression refers to, found in its syntax tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Step ids read as `steps.<id>` or `steps["<id>"]`.
    pub steps: BTreeSet<String>,
    /// Top-level variables other than `input` and `steps` (comprehension variables excluded).
    pub unknown_variables: BTreeSet<String>,
}

/// The CEL parser's grammar terms (`mismatched input '<EOF>' expecting 'ident'`) in words a
/// workflow author knows.
fn plain_words(message: &str) -> String {
    let mut text = message
        .replace("Syntax error: ", "")
        .replace("mismatched input '<EOF>'", "the expression ends too early")
        .replace("mismatched input", "unexpected")
        .replace("extraneous input", "unexpected");
    if let Some(at) = text.find(" expecting {")
        && let Some(len) = text[at..].find('}')
    {
        text.replace_range(at..=at + len, ": a value or a name should come here");
    }
    text.replace(
        " expecting 'ident'",
        ": a name (a step id or a field) should come here",
    )
    .replace(" expecting ", ": expected ")
    .replace("'<EOF>'", "the end of the expression")
    .replace("reserved_word", "a reserved word")
}

impl Expr {
    /// Compiles `source`; the error is the parser's message.
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|e| {
            // The parser's first line says what and where; the rest repeats the source.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first
                .strip_prefix("ERROR: <input>:")
                .map_or_else(|| first.to_string(), |rest| format!("at {rest}"));
            plain_words(&first)
        })?;
        Ok(Self {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The steps and variables the expression reads.
    pub fn references(&self) -> References {
        let mut refs = References::default();
        walk(self.program.expression(), &mut Vec::new(), &mut refs);
        refs
    }

    /// Evaluates the expression to JSON.
    pub fn eval(
        &self,
        input: &Json,
        steps: &serde_json::Map<String, Json>,
    ) -> Result<Json, String> {
        let mut exact = ExactNumbers::default();
        let mut context = Context::default();
        context.add_variable_from_value("input", exact.admit(input));
        context.add_variable_from_value("steps", exact.admit(&Json::Object(steps.clone())));
        let value = self
            .program
            .execute(&context)
            .map_err(|e| format!("`{}` failed: {e}", self.source))?;
        exact
            .release(&value)
            .map_err(|e| format!("`{}` produced a value that is not JSON: {e}", self.source))
    }

    /// Evaluates the expression as a condition; anything but a boolean is an error.
    pub fn eval_bool(
        &self,
        input: &Json,
        steps: &serde_json::Map<String, Json>,
    ) -> Result<bool, String> {
        match self.eval(input, steps)? {
            Json::Bool(b) => Ok(b),
            other => Err(format!(
                "`{}` must be true or false, but gave {other}",
                self.source
            )),
        }
    }
}

fn walk(node: &IdedExpr, scope: &mut Vec<String>, refs: &mut References) {
    match &node.expr {
        Node::Ident(name) => {
            if !VARIABLES.contains(&name.as_str()) && !scope.contains(name) {
                refs.unknown_variables.insert(name.clone());
            }
        }
        Node::Select(select) => {
            if matches!(&select.operand.expr, Node::Ident(name) if name == "steps" && !scope.iter().any(|s| s == "steps"))
            {
                refs.steps.insert(select.field.clone());
            } else {
                walk(&select.operand, scope, refs);
            }
        }
        Node::Call(call) => {
            // steps["id"] is an index call on `steps` with a string literal.
            if call.func_name == "_[_]"
                && let [target, key] = call.args.as_slice()
                && matches!(&target.expr, Node::Ident(name) if name == "steps")
                && let Node::Literal(cel::common::ast::LiteralValue::String(id)) = &key.expr
            {
                refs.steps.insert(id.to_string());
                return;
            }
            if let Some(target) = &call.target {
                walk(target, scope, refs);
            }
            for arg in &call.args {
                walk(arg, scope, refs);
            }
        }
        Node::Comprehension(c) => {
            walk(&c.iter_range, scope, refs);
            walk(&c.accu_init, scope, refs);
            let pushed = 2 + usize::from(c.iter_var2.is_some());
            scope.push(c.iter_var.clone());
            scope.push(c.accu_var.clone());
            if let Some(v) = &c.iter_var2 {
                scope.push(v.clone());
            }
            walk(&c.loop_cond, scope, refs);
            walk(&c.loop_step, scope, refs);
            walk(&c.result, scope, refs);
            scope.truncate(scope.len() - pushed);
        }
        Node::List(list) => list.elements.iter().for_each(|e| walk(e, scope, refs)),
        Node::Map(map) => map
            .entries
            .iter()
            .for_each(|e| walk_entry(&e.expr, scope, refs)),
        Node::Struct(s) => s
            .entries
            .iter()
            .for_each(|e| walk_entry(&e.expr, scope, refs)),
        Node::Literal(_) | Node::Unspecified => {}
    }
}

fn walk_entry(entry: &EntryExpr, scope: &mut Vec<String>, refs: &mut References) {
    match entry {
        EntryExpr::MapEntry(e) => {
            walk(&e.key, scope, refs);
            walk(&e.value, scope, refs);
        }
        EntryExpr::StructField(f) => walk(&f.value, scope, refs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_step_references_and_unknown_variables() {
        let e = Expr::compile(
            r#"steps.route.route == "ok" && steps["classify"].confidence > 0.5 && inpt.x"#,
        )
        .unwrap();
        let refs = e.references();
        assert_eq!(
            refs.steps,
            ["classify", "route"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert_eq!(
            refs.unknown_variables,
            ["inpt"].into_iter().map(String::from).collect()
        );
        let e = Expr::compile("input.tags.exists(t, t == 'vip')").unwrap();
        assert_eq!(e.references(), References::default());
    }

    #[test]
    fn evaluates_over_json() {
        let steps = json!({"classify": {"output": {"label": "billing"}, "confidence": 0.42, "route": "billing"}});
        let steps = steps.as_object().unwrap();
        let input = json!({"n": 5, "subject": "Hi"});
        let gate = Expr::compile("steps.classify.confidence < 0.6 && input.n > 3").unwrap();
        assert_eq!(gate.eval_bool(&input, steps), Ok(true));
        let mapping =
            Expr::compile(r#"{"ticket": input, "label": steps.classify.output.label}"#).unwrap();
        assert_eq!(
            mapping.eval(&input, steps).unwrap(),
            json!({"ticket": input, "label": "billing"})
        );
        let not_bool = Expr::compile("input.n").unwrap();
        assert_eq!(
            not_bool.eval_bool(&input, steps),
            Err("`input.n` must be true or false, but gave 5".into())
        );
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(Expr::compile("steps.a ==").is_err());
    }
}
