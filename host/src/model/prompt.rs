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
            .render(minijinja::Value::from_serialize(variables))
            .map_err(|e| format!("prompt `{}` does not render: {}", self.id, describe(&e)))
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
