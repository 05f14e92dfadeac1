//! JSON Schemas compiled once: a workflow's input schema and a step's declared input and
//! output schemas are checked on every run or attempt, and compiling a schema costs far more
//! than checking a document against it.

use std::sync::Arc;

use serde_json::Value;

/// Violations listed at most, so a huge bad document yields a readable error.
const MAX_VIOLATIONS: usize = 20;

/// A JSON Schema with its compiled validator. Cheap to clone.
#[derive(Clone)]
pub struct Schema {
    source: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl Schema {
    /// Compiles `source`; the error says why it is not a valid JSON Schema.
    pub fn compile(source: Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(&source).map_err(|e| e.to_string())?;
        Ok(Self {
            source: Arc::new(source),
            validator: Arc::new(validator),
        })
    }

    /// The schema document.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Every way `value` violates the schema (at most 20), each naming its JSON path.
    pub fn violations(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .take(MAX_VIOLATIONS)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("at {}: {e}", if path.is_empty() { "/" } else { &path })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_name_their_json_path() {
        let schema = Schema::compile(json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}}
        }))
        .unwrap();
        assert!(schema.violations(&json!({"items": [1, 2]})).is_empty());
        let found = schema.violations(&json!({"items": [1, "two"]}));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("at /items/1: "), "{found:?}");
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = Schema::compile(json!({"type": 12})).unwrap_err();
        assert!(err.contains("12"), "{err}");
    }
}
