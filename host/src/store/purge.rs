//! What purging a run's payloads keeps, shared by the backends: a run keeps its metadata
//! (ids, workflow version, statuses, times, plugin pins, attempts' timing and usage, routes
//! and confidences, failure kinds, what was redacted) and its model calls' tokens and costs;
//! inputs, outputs, logs, state, review data, failure messages and model requests and
//! responses go.

use serde_json::{Map, Value};

/// Keys of an event's data that are metadata.
const EVENT_KEYS: &[&str] = &[
    "workflow",
    "version",
    "attempt",
    "latency_us",
    "confidence",
    "route",
    "review",
    "decision",
    "by",
    "expires_ms",
    "default_action",
    "redacted",
];

/// Keys of an event's step record (SQLite's folded rows) that are metadata.
const RECORD_KEYS: &[&str] = &[
    "input_digest",
    "confidence",
    "route",
    "skip_reason",
    "latency_us",
    "fuel",
    "memory_peak",
    "steps",
];

/// What a purge leaves of a failure: its kind (the message may quote the payload).
pub(crate) fn failure(failure: &Value) -> Value {
    let kind = failure.get("kind").cloned().unwrap_or(Value::Null);
    serde_json::json!({"kind": kind, "message": format!("(purged) {}", kind.as_str().unwrap_or("failure"))})
}

/// [`failure`] over a failure column's text; `None` stays `None`.
pub(crate) fn failure_text(text: Option<String>) -> Option<String> {
    text.map(|t| {
        let value = serde_json::from_str(&t).unwrap_or(Value::Null);
        failure(&value).to_string()
    })
}

/// What a purge leaves of an event's data.
pub(crate) fn event_data(data: &Value) -> Value {
    kept(data, EVENT_KEYS)
}

/// What a purge leaves of an event's step record.
pub(crate) fn event_record(record: &Value) -> Value {
    kept(record, RECORD_KEYS)
}

fn kept(value: &Value, keys: &[&str]) -> Value {
    let Value::Object(map) = value else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (key, v) in map {
        if key == "failure" && !v.is_null() {
            out.insert(key.clone(), failure(v));
        } else if keys.contains(&key.as_str()) {
            out.insert(key.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn payloads_go_and_metadata_stays() {
        let data = json!({"attempt": 2, "latency_us": 9, "before": {"ssn": "x"}, "note": "n",
                          "failure": {"kind": "fatal", "message": "bad ana@example.com"}});
        assert_eq!(
            event_data(&data),
            json!({"attempt": 2, "latency_us": 9,
                   "failure": {"kind": "fatal", "message": "(purged) fatal"}})
        );
        let record = json!({"output": {"a": 1}, "logs": ["x"], "fuel": 5, "steps": [["a", "d"]]});
        assert_eq!(
            event_record(&record),
            json!({"fuel": 5, "steps": [["a", "d"]]})
        );
        assert_eq!(event_data(&Value::Null), Value::Null);
    }
}
