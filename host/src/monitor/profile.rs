//! What one step result adds to its step's profile: the automatic features, each counted in
//! bins fixed before any baseline exists, so that every window (and every host) counts the
//! same way and a baseline pinned later is a sum of windows already counted.
//!
//! - Numeric features (sizes, latency, attempts, tokens, cost) go into DDSketch's logarithmic
//!   buckets (`sketches-ddsketch`'s mapping, [`RELATIVE_ACCURACY`] wide): any quantile is read
//!   back to within that accuracy, and the baseline's deciles, snapped to bucket edges, count
//!   a window exactly.
//! - Confidence goes into twenty fixed bins on [0, 1] (see [`NumericBins::confidence`]).
//! - Categorical features (route, status, the path of a schema violation) count their values;
//!   presence features (the input's top-level fields) count each field a result has.
//!
//! Each count carries the sum of its values, so a window's mean is one division away.

use std::sync::LazyLock;

use serde_json::Value;
use sketches_ddsketch::Config;

use super::bins::{MISSING, NumericBins};
use crate::store::{AttemptOutcome, StepProfile};

/// How long a profile window is, by default: an hour.
pub const DEFAULT_WINDOW_MS: i64 = 3_600_000;
/// Relative accuracy of a numeric feature's buckets: a value is counted in a bucket whose
/// representative is within 2% of it.
pub const RELATIVE_ACCURACY: f64 = 0.02;
/// Top-level input fields counted per result, in name order; further ones are not.
pub const MAX_FIELDS: usize = 32;
/// Longest field name or violation path kept; longer ones are cut.
const MAX_NAME_BYTES: usize = 64;

/// The input's size, in bytes of JSON.
pub const INPUT_BYTES: &str = "input.bytes";
/// Which top-level input fields a result has, not null (a presence feature).
pub const INPUT_FIELDS: &str = "input.fields";
/// Which top-level input fields a result has as null.
pub const INPUT_NULLS: &str = "input.nulls";
/// Where the input broke the step's input schema (its first violation's JSON path).
pub const INPUT_VIOLATION: &str = "input.violation";
/// The output's size, in bytes of JSON (results that succeeded).
pub const OUTPUT_BYTES: &str = "output.bytes";
/// The output's confidence (results that succeeded).
pub const CONFIDENCE: &str = "output.confidence";
/// The output's route (results that succeeded; [`MISSING`] when it names none).
pub const ROUTE: &str = "output.route";
/// `succeeded`, or the failure's kind.
pub const STATUS: &str = "status";
/// The attempt that gave the result.
pub const ATTEMPTS: &str = "attempts";
/// The attempt's wall-clock time, in milliseconds.
pub const LATENCY_MS: &str = "latency_ms";
/// Model calls the attempt made (steps granted models).
pub const MODEL_CALLS: &str = "model.calls";
/// Prompt and completion tokens of those calls.
pub const MODEL_TOKENS: &str = "model.tokens";
/// What they cost, in US dollars.
pub const MODEL_COST_USD: &str = "model.cost_usd";

/// How a feature is counted, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Logarithmic buckets.
    Numeric,
    /// Twenty fixed bins on [0, 1].
    Confidence,
    /// One count per value.
    Categorical,
    /// One count per field present: each bin's share is of all results, not of the bins.
    Presence,
}

/// The kind of an automatic feature.
pub fn kind_of(feature: &str) -> Kind {
    match feature {
        CONFIDENCE => Kind::Confidence,
        ROUTE | STATUS | INPUT_VIOLATION => Kind::Categorical,
        INPUT_FIELDS | INPUT_NULLS => Kind::Presence,
        // Declared features (see `features`) say their kind in their name.
        _ if feature.starts_with("cat.") => Kind::Categorical,
        _ => Kind::Numeric,
    }
}

static SKETCH: LazyLock<Config> = LazyLock::new(|| Config::new(RELATIVE_ACCURACY, u32::MAX, 1e-9));

/// The bucket of a numeric value: `p<key>` above zero, `n<key>` below, `z` at (about) zero,
/// [`MISSING`] for none or a value that is not finite.
pub fn numeric_bin(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() && v > SKETCH.min_possible() => format!("p{}", SKETCH.key(v)),
        Some(v) if v.is_finite() && v < -SKETCH.min_possible() => format!("n{}", SKETCH.key(-v)),
        Some(v) if v.is_finite() => "z".to_string(),
        _ => MISSING.to_string(),
    }
}

/// The value a bucket stands for (within [`RELATIVE_ACCURACY`] of all it holds); `None` for
/// [`MISSING`] or a label that is not a bucket.
pub fn bucket_value(bin: &str) -> Option<f64> {
    if bin == "z" {
        return Some(0.0);
    }
    let (sign, key) = match bin.split_at_checked(1)? {
        ("p", key) => (1.0, key),
        ("n", key) => (-1.0, key),
        _ => return None,
    };
    Some(sign * SKETCH.value(key.parse().ok()?))
}

/// The confidence bin of a value: `c00` … `c19`, or [`MISSING`].
pub fn confidence_bin(confidence: Option<f64>) -> String {
    static BINS: LazyLock<NumericBins> = LazyLock::new(NumericBins::confidence);
    match confidence {
        Some(c) if c.is_finite() => format!("c{:02}", BINS.bin(Some(c.clamp(0.0, 1.0)))),
        _ => MISSING.to_string(),
    }
}

/// What the attempt's model calls came to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelUse {
    /// Calls made.
    pub calls: u32,
    /// Prompt and completion tokens.
    pub tokens: u64,
    /// Cost, in millionths of a US dollar.
    pub cost_micros: i64,
}

/// One step result, as the profile sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The step's input, when the workflow could compute it.
    pub input: Option<&'a Value>,
    /// How the attempt ended.
    pub outcome: &'a AttemptOutcome,
    /// Its number.
    pub attempt: u32,
    /// Its wall-clock time.
    pub latency_us: u64,
    /// Its model calls, for a step granted models.
    pub model: Option<ModelUse>,
}

/// The step a result belongs to and when it was recorded.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The workflow.
    pub workflow: &'a str,
    /// Its version.
    pub version: &'a str,
    /// The step.
    pub step_id: &'a str,
    /// When the result was recorded, ms since the epoch.
    pub at_ms: i64,
    /// The window length.
    pub window_ms: i64,
}

/// What `seen` adds to its step's profile.
pub fn observe(origin: Origin<'_>, seen: &Observation<'_>) -> StepProfile {
    let window = origin.window_ms.max(1);
    let mut profile = StepProfile {
        workflow: origin.workflow.to_string(),
        version: origin.version.to_string(),
        step_id: origin.step_id.to_string(),
        window_ms: origin.at_ms.div_euclid(window) * window,
        counts: Vec::new(),
    };
    let numeric = |profile: &mut StepProfile, feature: &str, value: f64| {
        profile.add(feature, &numeric_bin(Some(value)), 1, value);
    };
    if let Some(input) = seen.input {
        numeric(&mut profile, INPUT_BYTES, json_bytes(input) as f64);
        if let Value::Object(fields) = input {
            for (name, value) in fields.iter().take(MAX_FIELDS) {
                let feature = if value.is_null() {
                    INPUT_NULLS
                } else {
                    INPUT_FIELDS
                };
                profile.add(feature, &cut(name), 1, 0.0);
            }
        }
    }
    let status = match seen.outcome {
        AttemptOutcome::Succeeded {
            output,
            confidence,
            route,
        } => {
            numeric(&mut profile, OUTPUT_BYTES, json_bytes(output) as f64);
            profile.add(
                CONFIDENCE,
                &confidence_bin(*confidence),
                1,
                confidence.unwrap_or(0.0),
            );
            profile.add(ROUTE, route.as_deref().unwrap_or(MISSING), 1, 0.0);
            "succeeded".to_string()
        }
        AttemptOutcome::Failed(failure) => {
            let kind = failure["kind"].as_str().unwrap_or("failed").to_string();
            if kind == "invalid_input"
                && let Some(path) = failure["message"].as_str().and_then(violation_path)
            {
                profile.add(INPUT_VIOLATION, &path, 1, 0.0);
            }
            kind
        }
    };
    profile.add(STATUS, &status, 1, 0.0);
    numeric(&mut profile, ATTEMPTS, f64::from(seen.attempt));
    numeric(&mut profile, LATENCY_MS, seen.latency_us as f64 / 1000.0);
    if let Some(model) = seen.model {
        numeric(&mut profile, MODEL_CALLS, f64::from(model.calls));
        numeric(&mut profile, MODEL_TOKENS, model.tokens as f64);
        numeric(&mut profile, MODEL_COST_USD, model.cost_micros as f64 / 1e6);
    }
    profile
}

/// The path of the first violation an input schema failure names (`at /items/3/id: …`), with
/// array positions as `*` so that a violation at every position is one path.
pub fn violation_path(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("at /")?;
    let path = rest.split(':').next()?;
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                segment
            }
        })
        .collect();
    Some(cut(&format!("/{}", path.join("/"))))
}

/// The size of `value`'s JSON text, counted without building it.
fn json_bytes(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `name` cut to [`MAX_NAME_BYTES`] on a character boundary.
fn cut(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin(at_ms: i64) -> Origin<'static> {
        Origin {
            workflow: "triage",
            version: "1.0.0",
            step_id: "classify",
            at_ms,
            window_ms: DEFAULT_WINDOW_MS,
        }
    }

    fn count(profile: &StepProfile, feature: &str, bin: &str) -> i64 {
        profile
            .counts
            .iter()
            .filter(|c| c.feature == feature && c.bin == bin)
            .map(|c| c.count)
            .sum()
    }

    #[test]
    fn a_success_counts_its_input_output_confidence_route_and_status() {
        let input = json!({"body": "printer on fire", "tags": null, "lang": "en"});
        let outcome = AttemptOutcome::Succeeded {
            output: json!({"label": "hardware"}),
            confidence: Some(0.87),
            route: Some("hardware".into()),
        };
        let seen = Observation {
            input: Some(&input),
            outcome: &outcome,
            attempt: 1,
            latency_us: 12_500,
            model: Some(ModelUse {
                calls: 1,
                tokens: 300,
                cost_micros: 450,
            }),
        };
        let profile = observe(origin(7_200_123), &seen);
        assert_eq!(profile.window_ms, 7_200_000);
        assert_eq!(count(&profile, INPUT_FIELDS, "body"), 1);
        assert_eq!(count(&profile, INPUT_FIELDS, "lang"), 1);
        assert_eq!(count(&profile, INPUT_NULLS, "tags"), 1);
        assert_eq!(count(&profile, CONFIDENCE, "c17"), 1);
        assert_eq!(count(&profile, ROUTE, "hardware"), 1);
        assert_eq!(count(&profile, STATUS, "succeeded"), 1);
        let bytes = input.to_string().len() as f64;
        assert_eq!(count(&profile, INPUT_BYTES, &numeric_bin(Some(bytes))), 1);
        let cost = profile.counts.iter().find(|c| c.feature == MODEL_COST_USD);
        assert_eq!(cost.map(|c| c.sum), Some(0.00045));
        let latency = profile.counts.iter().find(|c| c.feature == LATENCY_MS);
        assert_eq!(latency.map(|c| c.sum), Some(12.5));
    }

    #[test]
    fn a_schema_failure_counts_the_path_it_broke_with_positions_folded() {
        let failure = json!({
            "kind": "invalid_input",
            "message": "input does not match the step's input schema: at /items/3/id: 7 is not of type \"string\"; at /body: …",
        });
        let outcome = AttemptOutcome::Failed(failure);
        let seen = Observation {
            input: None,
            outcome: &outcome,
            attempt: 2,
            latency_us: 0,
            model: None,
        };
        let profile = observe(origin(0), &seen);
        assert_eq!(count(&profile, INPUT_VIOLATION, "/items/*/id"), 1);
        assert_eq!(count(&profile, STATUS, "invalid_input"), 1);
        assert_eq!(count(&profile, ROUTE, MISSING), 0, "a failure has no route");
        assert!(profile.counts.iter().all(|c| c.feature != MODEL_CALLS));
        assert_eq!(violation_path("at /: not an object").as_deref(), Some("/"));
    }

    #[test]
    fn numeric_buckets_hold_values_within_their_accuracy_and_keep_their_order() {
        for v in [0.5, 1.0, 3.0, 117.0, 1_000_000.0, -42.0] {
            let back = bucket_value(&numeric_bin(Some(v))).unwrap();
            assert!(
                ((back - v) / v).abs() <= RELATIVE_ACCURACY + 1e-12,
                "{v} came back as {back}"
            );
        }
        assert_eq!(bucket_value(&numeric_bin(Some(0.0))), Some(0.0));
        assert_eq!(numeric_bin(Some(f64::NAN)), MISSING);
        assert_eq!(bucket_value(MISSING), None);
        assert_ne!(numeric_bin(Some(100.0)), numeric_bin(Some(110.0)));
    }

    #[test]
    fn confidence_falls_in_twentieths_and_out_of_range_values_are_clamped() {
        assert_eq!(confidence_bin(Some(0.0)), "c00");
        assert_eq!(confidence_bin(Some(0.049)), "c00");
        assert_eq!(confidence_bin(Some(0.05)), "c01");
        assert_eq!(confidence_bin(Some(1.0)), "c19");
        assert_eq!(confidence_bin(Some(7.0)), "c19");
        assert_eq!(confidence_bin(None), MISSING);
    }

    #[test]
    fn many_fields_are_bounded_and_long_names_cut() {
        let mut fields = serde_json::Map::new();
        for i in 0..100 {
            fields.insert(format!("f{i:03}{}", "x".repeat(100)), json!(i));
        }
        let input = Value::Object(fields);
        let outcome = AttemptOutcome::Failed(json!({"kind": "timeout"}));
        let seen = Observation {
            input: Some(&input),
            outcome: &outcome,
            attempt: 1,
            latency_us: 0,
            model: None,
        };
        let profile = observe(origin(0), &seen);
        let counted: Vec<_> = profile
            .counts
            .iter()
            .filter(|c| c.feature == INPUT_FIELDS)
            .collect();
        assert_eq!(counted.len(), MAX_FIELDS);
        assert!(counted.iter().all(|c| c.bin.len() == MAX_NAME_BYTES));
    }
}
