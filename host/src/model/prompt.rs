//! Prompt templates: versioned files declared in a workflow's `[prompts]` table, rendered by
//! the host with MiniJinja. A template's version is the sha256 of its text, journaled with
//! every call that uses it, so a change in a prompt is visible next to the change in results.

use minijinja::{Environment, UndefinedBehavior};
use sha2::Digest as _;

/// One template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Its id in the workflow.
    pub id: String,
    /// The template text.
    pub text: String,
    /// sha256 of the text.
    pub hash: String,
}

impl Prompt {
    /// Checks the template's syntax; the error says where it is wrong.
    pub fn new(id: &str, text: String) -> Result<Self, String> {
        environment()
            .template_from_str(&text)
            .map_err(|e| describe(&e))?;
        let hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        Ok(Self {
            id: id.to_string(),
            text,
            hash,
        })
    }

    /// Renders the template with `variables` (a JSON object). A variable the template uses
    /// and the step did not give is an error, not an empty string.
    pub fn render(&self, variables: &serde_json::Value) -> Result<String, String> {
        let env = environment();
        let template = env
            .template_from_str(&self.text)
            .map_err(|e| describe(&e))?;
        template
            .render(template_value(variables))
            .map_err(|e| format!("prompt `{}` does not render: {}", self.id, describe(&e)))
    }
}

/// JSON to a template value, by hand rather than through serde: JSON numbers are kept exact
/// (serde_json's `arbitrary_precision`), and serialized that way they would reach the template
/// as a map. An integer is an integer to 128 bits; beyond that, or with a fraction, a float.
fn template_value(json: &serde_json::Value) -> minijinja::Value {
    use crate::workflow::as_double;
    use serde_json::Value as Json;
    match json {
        Json::Null => minijinja::Value::from(None::<bool>),
        Json::Bool(b) => minijinja::Value::from(*b),
        Json::Number(n) => match n.to_string().parse::<i128>() {
            Ok(i) => minijinja::Value::from(i),
            Err(_) => minijinja::Value::from(as_double(n)),
        },
        Json::String(s) => minijinja::Value::from(s.as_str()),
        Json::Array(items) => items.iter().map(template_value).collect(),
        Json::Object(map) => map
            .iter()
            .map(|(k, v)| (k.as_str(), template_value(v)))
            .collect(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "{} (line {line} of the template)",
            e.detail().unwrap_or(&e.to_string())
        ),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_reach_the_template_exactly() {
        let prompt = Prompt::new(
            "n",
            "{{ big }} {{ small }} {{ half }} {{ items[1] }} {{ nested.k }}{% if big > 3 %} big{% endif %}"
                .into(),
        )
        .unwrap();
        let variables: serde_json::Value = serde_json::from_str(
            r#"{"big": 123456789012345678901234567890, "small": -7, "half": 0.5,
                "items": [1, 2], "nested": {"k": 1e400}}"#,
        )
        .unwrap();
        assert_eq!(
            prompt.render(&variables).unwrap(),
            "123456789012345678901234567890 -7 0.5 2 inf big"
        );
    }

    #[test]
    fn renders_strictly_and_versions_by_hash() {
        let prompt = Prompt::new("classify", "Ticket: {{ subject }}\n{{ body }}".into()).unwrap();
        assert_eq!(prompt.hash.len(), 64);
        let text = prompt
            .render(&json!({"subject": "Refund", "body": "I was charged twice"}))
            .unwrap();
        assert_eq!(text, "Ticket: Refund\nI was charged twice");
        let err = prompt.render(&json!({"subject": "x"})).unwrap_err();
        assert!(
            err.starts_with("prompt `classify` does not render: "),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        let err = Prompt::new("bad", "{% if %}".into()).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
