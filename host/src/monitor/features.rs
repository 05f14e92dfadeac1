//! Features a workflow declares for a step: CEL over the step's `input` and `output`, each
//! numeric or categorical, with text helpers in the manner of Evidently's text descriptors:
//! `lang(text)` (the language, ISO 639-3, `und` when the guess is unreliable; `whatlang`),
//! `tokens(text)` (an estimate: a token per four characters, as model providers count them
//! on average) and `non_letter_pct(text)` (the share of characters, spaces left out, that
//! are not letters, in percent).
//!
//! ```toml
//! [[steps]]
//! id = "classify"
//! plugin = "classify_ticket.wasm"
//! [steps.monitor.features]
//! body_len = { expr = "size(input.body)", type = "numeric" }
//! lang = { expr = "lang(input.body)", type = "categorical" }
//! ```
//!
//! A numeric feature is counted as `num.<name>`, a categorical one as `cat.<name>`. An
//! expression that fails, or gives null or a value of the other kind, counts as missing; a
//! category is cut to [`MAX_CATEGORY_BYTES`].

use std::sync::Arc;

use cel::{Context, Program, Value};
use serde_json::Value as Json;

use crate::workflow::cel_json::ExactNumbers;

/// Features a step may declare.
pub const MAX_DECLARED: usize = 32;
/// The longest category kept; longer ones are cut.
pub const MAX_CATEGORY_BYTES: usize = 64;
/// Variables a declared feature may read.
pub const VARIABLES: &[&str] = &["input", "output"];

/// A feature's kind, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredKind {
    /// A number: counted in logarithmic buckets.
    Numeric,
    /// A value: counted by value.
    Categorical,
}

/// One declared feature, compiled.
#[derive(Clone)]
pub struct Declared {
    /// Its name, as declared.
    pub name: String,
    /// The name it is counted under: `num.<name>` or `cat.<name>`.
    pub feature: String,
    /// Its kind.
    pub kind: DeclaredKind,
    source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Declared({} = {:?})", self.feature, self.source)
    }
}

/// What one evaluation gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// A number.
    Number(f64),
    /// A category.
    Category(String),
    /// Nothing usable.
    Missing,
}

impl Declared {
    /// Compiles `expr`; the error is the parser's message.
    pub fn compile(name: &str, expr: &str, kind: DeclaredKind) -> Result<Self, String> {
        let program = Program::compile(expr).map_err(|e| {
            let text = e.to_string();
            text.lines().next().unwrap_or_default().to_string()
        })?;
        let prefix = match kind {
            DeclaredKind::Numeric => "num",
            DeclaredKind::Categorical => "cat",
        };
        Ok(Self {
            name: name.to_string(),
            feature: format!("{prefix}.{name}"),
            kind,
            source: expr.to_string(),
            program: Arc::new(program),
        })
    }

    /// The variables the expression reads that a feature cannot (anything but `input` and
    /// `output`).
    pub fn unknown_variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .program
            .references()
            .variables()
            .into_iter()
            .filter(|v| !VARIABLES.contains(v))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// The feature's value for a step that saw `input` and answered `output` (null when it
    /// failed).
    pub fn observe(&self, input: &Json, output: &Json) -> Observed {
        let mut exact = ExactNumbers::default();
        let mut context = Context::default();
        context.add_variable_from_value("input", exact.admit(input));
        context.add_variable_from_value("output", exact.admit(output));
        // Helpers no CEL built-in shadows: these cannot fail to register.
        let _ = context.add_function("lang", |text: Arc<String>| language(&text));
        let _ = context.add_function("tokens", |text: Arc<String>| token_estimate(&text));
        let _ = context.add_function("non_letter_pct", |text: Arc<String>| non_letter_pct(&text));
        let Ok(value) = self.program.execute(&context) else {
            return Observed::Missing;
        };
        match (self.kind, value) {
            (DeclaredKind::Numeric, Value::Int(i)) => Observed::Number(i as f64),
            (DeclaredKind::Numeric, Value::UInt(u)) => Observed::Number(u as f64),
            (DeclaredKind::Numeric, Value::Float(f)) if f.is_finite() => Observed::Number(f),
            (DeclaredKind::Categorical, Value::String(s)) => Observed::Category(cut(&s)),
            (DeclaredKind::Categorical, Value::Bool(b)) => Observed::Category(b.to_string()),
            (DeclaredKind::Categorical, Value::Int(i)) => Observed::Category(i.to_string()),
            (DeclaredKind::Categorical, Value::UInt(u)) => Observed::Category(u.to_string()),
            _ => Observed::Missing,
        }
    }
}

/// Adds what `declared` observe of a step that saw `input` and answered `output` (null when
/// it failed) to its result's profile.
pub fn count(
    profile: &mut crate::store::StepProfile,
    declared: &[Declared],
    input: &Json,
    output: &Json,
) {
    for d in declared {
        match d.observe(input, output) {
            Observed::Number(v) => {
                profile.add(&d.feature, &super::profile::numeric_bin(Some(v)), 1, v);
            }
            Observed::Category(c) => profile.add(&d.feature, &c, 1, 0.0),
            Observed::Missing => profile.add(&d.feature, super::bins::MISSING, 1, 0.0),
        }
    }
}

/// The language of `text`, ISO 639-3, or `und` when the guess is not reliable.
pub fn language(text: &str) -> String {
    match whatlang::detect(text) {
        Some(info) if info.is_reliable() => info.lang().code().to_string(),
        _ => "und".to_string(),
    }
}

/// Tokens a model would count in `text`, estimated at one per four characters (rounded up).
pub fn token_estimate(text: &str) -> i64 {
    text.chars().count().div_ceil(4) as i64
}

/// The share of `text`'s characters other than whitespace that are not letters, in percent
/// (0 for a text of whitespace only).
pub fn non_letter_pct(text: &str) -> f64 {
    let (mut counted, mut other) = (0u64, 0u64);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        counted += 1;
        if !c.is_alphabetic() {
            other += 1;
        }
    }
    if counted == 0 {
        0.0
    } else {
        100.0 * other as f64 / counted as f64
    }
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_CATEGORY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declared_features_read_input_and_output_with_the_text_helpers() {
        let input = json!({"body": "Mi paquete no ha llegado todavía y el número de seguimiento no se actualiza desde hace una semana entera, por favor ayúdenme a encontrarlo cuanto antes", "priority": 2});
        let output = json!({"label": "shipping"});
        let numeric = |expr: &str| Declared::compile("x", expr, DeclaredKind::Numeric).unwrap();
        let categorical =
            |expr: &str| Declared::compile("x", expr, DeclaredKind::Categorical).unwrap();
        assert_eq!(
            numeric("size(input.body)").observe(&input, &output),
            Observed::Number(151.0)
        );
        assert_eq!(
            numeric("tokens(input.body)").observe(&input, &output),
            Observed::Number(38.0)
        );
        assert_eq!(
            categorical("lang(input.body)").observe(&input, &output),
            Observed::Category("spa".into())
        );
        assert_eq!(
            categorical("output.label").observe(&input, &output),
            Observed::Category("shipping".into())
        );
        assert_eq!(
            categorical("input.priority > 1").observe(&input, &output),
            Observed::Category("true".into())
        );
        // A failed expression, a null and a value of the other kind are missing.
        assert_eq!(
            numeric("size(input.nope)").observe(&input, &output),
            Observed::Missing
        );
        assert_eq!(
            numeric("output.label").observe(&input, &Json::Null),
            Observed::Missing
        );
        assert_eq!(
            numeric("input.body").observe(&input, &output),
            Observed::Missing
        );
        assert_eq!(numeric("x").feature, "num.x");
    }

    #[test]
    fn text_helpers_have_known_values() {
        assert_eq!(language("ok"), "und", "too short to tell");
        assert_eq!(
            language("The printer in the second floor office stopped working after the update"),
            "eng"
        );
        assert_eq!(token_estimate(""), 0);
        assert_eq!(token_estimate("abcde"), 2);
        assert_eq!(non_letter_pct("ab 12"), 50.0);
        assert_eq!(non_letter_pct("   "), 0.0);
        let long = "é".repeat(100);
        assert_eq!(cut(&long).len(), MAX_CATEGORY_BYTES);
        let unknown =
            Declared::compile("x", "steps.a + input.b + output.c", DeclaredKind::Numeric).unwrap();
        assert_eq!(unknown.unknown_variables(), ["steps"]);
    }
}
