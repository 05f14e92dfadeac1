//! What a workflow declares must never be kept or sent in the clear (`[redact]`): fields
//! removed by path, and personal data found by detectors in every string. Applied to the run
//! input before the run is journaled, to each step's output, logs and failure before its
//! result is journaled (so later steps, reviews and the run's output only ever see the
//! redacted value), and to every model request before it is sent or journaled.
//!
//! Each redaction is listed with where it happened ([`Redaction`]), so a run says what was
//! taken out of it without keeping what it was.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use weir_redact::{Counts, Detector};

/// What replaces a field removed by path.
pub const REMOVED: &str = "[REDACTED]";

/// The redaction a workflow declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redactor {
    detectors: Vec<Detector>,
    fields: Vec<FieldPath>,
}

/// One redaction in a run: where, by which rule, how many matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Redaction {
    /// The value's path: `input.customer.email`, `steps.clean.output.body`,
    /// `steps.classify.logs`, `steps.classify.model_calls.0.request`.
    pub at: String,
    /// `field` (removed by path) or the detector that matched (`email`, `ssn`, ...).
    pub rule: String,
    /// Matches replaced (1 for a field).
    pub count: u64,
}

/// A `fields` entry: `input.a.b`, `steps.<id>.output.a`, with `*` for any one key or index.
#[derive(Debug, Clone, PartialEq)]
struct FieldPath {
    /// `None` for the run input; `Some("*")` for every step.
    step: Option<String>,
    segments: Vec<String>,
}

impl FieldPath {
    fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("field {text:?} has an empty segment"));
        }
        let (step, rest) = match parts[..] {
            ["input", ref rest @ ..] => (None, rest),
            ["steps", step, "output", ref rest @ ..] => (Some(step.to_string()), rest),
            _ => {
                return Err(format!(
                    "field {text:?} must start with `input.` or `steps.<step-id>.output.`"
                ));
            }
        };
        if rest.is_empty() {
            return Err(format!(
                "field {text:?} names a whole value; name a field inside it"
            ));
        }
        Ok(Self {
            step,
            segments: rest.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn applies_to(&self, step: Option<&str>) -> bool {
        match (&self.step, step) {
            (None, None) => true,
            (Some(want), Some(step)) => want == "*" || want == step,
            _ => false,
        }
    }
}

impl Redactor {
    /// The redaction of `detectors` (names) and `fields` (paths); errors name the entry.
    pub fn new(detectors: &[String], fields: &[String]) -> Result<Self, String> {
        let detectors = detectors
            .iter()
            .map(|d| d.parse::<Detector>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let fields = fields
            .iter()
            .map(|f| FieldPath::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { detectors, fields })
    }

    /// The names of the steps its fields name (to check against the workflow's steps).
    pub fn named_steps(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter_map(|f| f.step.as_deref())
            .filter(|s| *s != "*")
    }

    /// Redacts the run input in place.
    pub fn input(&self, value: &mut Value) -> Vec<Redaction> {
        self.value(None, "input", value)
    }

    /// Redacts a step's output in place.
    pub fn output(&self, step: &str, value: &mut Value) -> Vec<Redaction> {
        self.value(Some(step), &format!("steps.{step}.output"), value)
    }

    /// Redacts every string in `value` with the detectors alone (logs, failures, model
    /// requests), listed under `at` as one entry per detector.
    pub fn strings(&self, at: &str, value: &mut Value) -> Vec<Redaction> {
        let mut found = Vec::new();
        walk(
            value,
            &mut vec![at.to_string()],
            &self.detectors,
            &mut found,
        );
        let mut counts = Counts::new();
        for r in found {
            if let Ok(d) = r.rule.parse::<Detector>() {
                *counts.entry(d).or_default() += r.count;
            }
        }
        by_rule(at, counts)
    }

    /// `text` with the detectors applied, and what they replaced.
    pub fn text(&self, text: &str) -> (String, Counts) {
        let mut counts = Counts::new();
        let out = weir_redact::redact(text, &self.detectors, &mut counts).into_owned();
        (out, counts)
    }

    fn value(&self, step: Option<&str>, root: &str, value: &mut Value) -> Vec<Redaction> {
        let mut found = Vec::new();
        for field in self.fields.iter().filter(|f| f.applies_to(step)) {
            remove(value, &field.segments, root, &mut found);
        }
        let mut path = vec![root.to_string()];
        walk(value, &mut path, &self.detectors, &mut found);
        found
    }
}

/// Replaces what `segments` names under `value` with [`REMOVED`], listing each.
fn remove(value: &mut Value, segments: &[String], at: &str, found: &mut Vec<Redaction>) {
    let Some((head, rest)) = segments.split_first() else {
        if *value != Value::String(REMOVED.into()) {
            *value = Value::String(REMOVED.into());
            found.push(Redaction {
                at: at.to_string(),
                rule: "field".into(),
                count: 1,
            });
        }
        return;
    };
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if head == "*" || head == key {
                    remove(child, rest, &format!("{at}.{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                if head == "*" || *head == i.to_string() {
                    remove(child, rest, &format!("{at}.{i}"), found);
                }
            }
        }
        _ => {}
    }
}

/// Applies the detectors to every string (and object key) under `value`, listing each
/// string that changed under its path.
fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    detectors: &[Detector],
    found: &mut Vec<Redaction>,
) {
    if detectors.is_empty() {
        return;
    }
    match value {
        Value::String(s) => {
            let mut counts = Counts::new();
            let out = weir_redact::redact(s, detectors, &mut counts);
            if !counts.is_empty() {
                *s = out.into_owned();
                found.extend(by_rule(&path.join("."), counts));
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(child, path, detectors, found);
                path.pop();
            }
        }
        Value::Object(map) => {
            // Keys can carry personal data too (`{"ana@example.com": ...}`).
            let entries = std::mem::take(map);
            for (key, mut child) in entries {
                let mut counts = Counts::new();
                let key = weir_redact::redact(&key, detectors, &mut counts).into_owned();
                path.push(key.clone());
                if !counts.is_empty() {
                    found.extend(by_rule(&path.join("."), counts));
                }
                walk(&mut child, path, detectors, found);
                path.pop();
                map.insert(key, child);
            }
        }
        _ => {}
    }
}

fn by_rule(at: &str, counts: Counts) -> Vec<Redaction> {
    counts
        .into_iter()
        .map(|(d, count)| Redaction {
            at: at.to_string(),
            rule: d.name().to_string(),
            count,
        })
        .collect()
}

/// Every redaction a run's event log lists, in order.
pub fn listed(events: &[crate::store::EventRecord]) -> Vec<Redaction> {
    events
        .iter()
        .filter_map(|e| e.data.get("redacted"))
        .filter_map(|r| serde_json::from_value::<Vec<Redaction>>(r.clone()).ok())
        .flatten()
        .collect()
}

/// `input.body (ssn ×2), input.customer.phone (field)`, for people.
pub fn describe(redacted: &[Redaction]) -> String {
    redacted
        .iter()
        .map(|r| match r.count {
            1 => format!("{} ({})", r.at, r.rule),
            n => format!("{} ({} ×{n})", r.at, r.rule),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
