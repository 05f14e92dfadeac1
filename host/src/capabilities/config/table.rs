//! The step's configuration table: a JSON object, from a workflow or from `--config k=v`.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A `--config` argument or table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `k=v` without `=`.
    #[error("config entry {0:?} is not of the form key=value")]
    NotKeyValue(String),
    /// An empty key.
    #[error("config entry {0:?} has an empty key")]
    EmptyKey(String),
    /// A table that is not a JSON object.
    #[error("step config must be a table (a JSON object), found {0}")]
    NotAnObject(&'static str),
}

/// The configuration a step reads through the `config` import. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepConfig(Arc<Map<String, Value>>);

impl StepConfig {
    /// A configuration from a JSON object.
    pub fn from_value(value: Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Self(Arc::new(map))),
            Value::Null => Ok(Self::default()),
            other => Err(ConfigError::NotAnObject(json_type(&other))),
        }
    }

    /// A configuration from `key=value` entries. A value that parses as JSON is taken as
    /// JSON (`n=5` is a number, `schema={"type":"object"}` an object); anything else is a
    /// string, so `name=triage` needs no quotes.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let mut map = Map::new();
        for pair in pairs {
            let (key, raw) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::NotKeyValue(pair.into()))?;
            if key.trim().is_empty() {
                return Err(ConfigError::EmptyKey(pair.into()));
            }
            let value =
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
            map.insert(key.trim().to_string(), value);
        }
        Ok(Self(Arc::new(map)))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The whole table as a JSON object.
    pub fn to_json(&self) -> String {
        Value::Object((*self.0).clone()).to_string()
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_take_json_values_and_fall_back_to_strings() {
        let config = StepConfig::from_pairs([
            "n=5",
            "name=triage",
            r#"schema={"type":"object"}"#,
            "flag=true",
        ])
        .unwrap();
        assert_eq!(config.get("n"), Some(&json!(5)));
        assert_eq!(config.get("name"), Some(&json!("triage")));
        assert_eq!(config.get("schema"), Some(&json!({"type": "object"})));
        assert_eq!(config.get("flag"), Some(&json!(true)));
    }

    #[test]
    fn malformed_pairs_are_named() {
        let err = StepConfig::from_pairs(["novalue"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"config entry "novalue" is not of the form key=value"#
        );
        let err = StepConfig::from_pairs(["=x"]).unwrap_err();
        assert_eq!(err.to_string(), r#"config entry "=x" has an empty key"#);
    }

    #[test]
    fn a_table_must_be_an_object() {
        let err = StepConfig::from_value(json!([1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step config must be a table (a JSON object), found an array"
        );
    }
}
