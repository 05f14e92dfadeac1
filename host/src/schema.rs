//! JSON Schemas compiled once: a workflow's input schema and a step's declared input and
//! output schemas are checked on every run or attempt, and compiling a schema costs far more
//! than checking a document against it.
//!
//! A schema may come from a plugin's `describe()`, so its `pattern` and `patternProperties`
//! are the guest's choice, and checking a step's output runs on the host, outside the step's
//! fuel and timeout. Patterns are therefore compiled for the `regex` crate, whose matching
//! time is linear in the input, never for a backtracking engine: a pattern such as `^(a+)+$`
//! costs microseconds, not minutes. A pattern that needs backtracking (look-around,
//! backreferences) is refused when the schema is compiled, that is when the plugin or the
//! workflow loads, with the pattern's location.

use std::sync::Arc;

use serde_json::Value;

/// Violations listed at most, so a huge bad document yields a readable error.
const MAX_VIOLATIONS: usize = 20;
/// Largest compiled program of one pattern, in bytes: bounds the host memory and load time a
/// pattern such as `(a{1000}){1000}` could take.
const MAX_PATTERN_PROGRAM_BYTES: usize = 1 << 20;
/// Largest lazy DFA cache of one pattern, in bytes: bounds the memory matching may build up.
const MAX_PATTERN_DFA_BYTES: usize = 2 << 20;

/// Bytes of an offending value a violation quotes: a 100 MB field gives a readable error (and
/// a small 422), not a 100 MB one. Longer values are cut here and their size given.
pub const MAX_QUOTED_BYTES: usize = 120;

/// A JSON Schema with its compiled validator. Cheap to clone.
#[derive(Clone)]
pub struct Schema {
    source: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
    weight: u64,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl Schema {
    /// Compiles `source`; the error says why it is not a valid JSON Schema.
    pub fn compile(source: Value) -> Result<Self, String> {
        let linear = jsonschema::PatternOptions::regex()
            .size_limit(MAX_PATTERN_PROGRAM_BYTES)
            .dfa_size_limit(MAX_PATTERN_DFA_BYTES);
        let validator = jsonschema::options()
            .with_pattern_options(linear)
            .build(&source)
            .map_err(|e| match e.kind() {
                jsonschema::error::ValidationErrorKind::Format { format } if format == "regex" => {
                    format!(
                        "the pattern at {} cannot be used: {}; patterns are matched in linear time, \
                         so look-around (`(?=`, `(?!`, `(?<=`), backreferences (`\\1`) and patterns \
                         whose compiled form exceeds {MAX_PATTERN_PROGRAM_BYTES} bytes are refused",
                        e.schema_path(),
                        crate::text::truncated(&e.instance().to_string(), 200),
                    )
                }
                _ => e.to_string(),
            })?;
        Ok(Self {
            weight: values_in(&source),
            source: Arc::new(source),
            validator: Arc::new(validator),
        })
    }

    /// A bound on the work of checking a document of `size` bytes: the size times the number
    /// of values in the schema. With linear-time patterns no keyword costs more than a pass
    /// over the document, so this is what a check can cost at worst (up to a constant).
    pub fn work(&self, size: u64) -> u64 {
        size.saturating_mul(self.weight)
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
                let path = if path.is_empty() { "/" } else { &path };
                match quote(e.instance()) {
                    None => format!("at {path}: {e}"),
                    Some(cut) => format!("at {path}: {}", e.masked_with(cut)),
                }
            })
            .collect()
    }
}

/// How many JSON values `value` holds, itself included.
fn values_in(value: &Value) -> u64 {
    match value {
        Value::Array(items) => 1 + items.iter().map(values_in).sum::<u64>(),
        Value::Object(map) => 1 + map.values().map(values_in).sum::<u64>(),
        _ => 1,
    }
}

/// `None` when `value`'s JSON text fits in [`MAX_QUOTED_BYTES`]; otherwise its first bytes and
/// its whole size, e.g. `"aaaa… (104857602 bytes)`. The text is never built whole.
fn quote(value: &Value) -> Option<String> {
    let mut head = Head::default();
    serde_json::to_writer(&mut head, value).ok()?;
    if head.total <= MAX_QUOTED_BYTES {
        return None;
    }
    let mut end = MAX_QUOTED_BYTES;
    while std::str::from_utf8(&head.bytes[..end]).is_err() {
        end -= 1;
    }
    let text = std::str::from_utf8(&head.bytes[..end]).unwrap_or_default();
    Some(format!("{text}… ({} bytes)", head.total))
}

/// Keeps the first [`MAX_QUOTED_BYTES`] bytes written and counts the rest.
#[derive(Default)]
struct Head {
    bytes: Vec<u8>,
    total: usize,
}

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = MAX_QUOTED_BYTES.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&buf[..room.min(buf.len())]);
        self.total += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    fn a_backtracking_pattern_is_matched_in_linear_time() {
        let schema = Schema::compile(json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        let evil = format!("{}!", "a".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(schema.violations(&json!(evil)).len(), 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_pattern_that_needs_backtracking_is_refused_with_its_location() {
        for pattern in ["^(?=a)a$", "^(a)\\1$", "^(?<!b)a"] {
            let err = Schema::compile(json!({
                "properties": {"name": {"type": "string", "pattern": pattern}}
            }))
            .unwrap_err();
            assert!(err.contains("/properties/name/pattern"), "{err}");
            assert!(err.contains("linear time"), "{err}");
        }
        let err = Schema::compile(json!({"patternProperties": {"(?=x)": {}}})).unwrap_err();
        assert!(err.contains("linear time"), "{err}");
    }

    #[test]
    fn a_huge_offending_value_is_quoted_up_to_a_bound_with_its_size() {
        let schema = Schema::compile(json!({
            "type": "object",
            "properties": {"ticket": {"type": "string", "maxLength": 10}, "n": {"type": "integer"}}
        }))
        .unwrap();
        let huge = "é".repeat(1_000_000);
        let found = schema.violations(&json!({"ticket": huge, "n": "two"}));
        assert_eq!(found.len(), 2, "{found:?}");
        let long = found.iter().find(|v| v.starts_with("at /ticket")).unwrap();
        assert!(long.len() < 2 * MAX_QUOTED_BYTES + 100, "{long}");
        assert!(long.contains("… (2000002 bytes)"), "{long}");
        assert!(long.contains("is longer than 10 characters"), "{long}");
        // A short value is quoted whole.
        let short = found.iter().find(|v| v.starts_with("at /n")).unwrap();
        assert_eq!(short, r#"at /n: "two" is not of type "integer""#);
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = Schema::compile(json!({"type": 12})).unwrap_err();
        assert!(err.contains("12"), "{err}");
    }
}
