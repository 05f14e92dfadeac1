//! Cleans every string in its input: strips control characters, collapses runs of
//! whitespace, and redacts personal data (emails, US social security numbers, IBANs that
//! pass their mod-97 check, payment card numbers that pass the Luhn check, IPv4 addresses,
//! phone numbers in international and national formats: North American `(415) 555-0132`,
//! British `020 7946 0958`, French `01 23 45 67 89`, German `030 12345678`, Indian
//! `+91 98765 43210`, Japanese `03-1234-5678`, ...) with a typed placeholder such as `[EMAIL]`.
//!
//! Config: `redact` (list of kinds to redact; default all), `normalize` (default true).
//! The output has the input's shape; the route label is `redacted` when anything was
//! redacted and `clean` otherwise, and the counts per kind are logged.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;
use weir_redact::{Counts, Detector, redact};
use weir_sdk::{Context, Meta, Output, Step, StepError, config, log};

struct CleanText;

fn space() -> &'static Regex {
    static SPACE: OnceLock<Regex> = OnceLock::new();
    SPACE.get_or_init(|| Regex::new(r"\s+").unwrap())
}

struct Cleaner {
    kinds: Vec<Detector>,
    normalize: bool,
    counts: Counts,
}

impl Cleaner {
    fn clean_str(&mut self, text: &str) -> String {
        let mut s: String = text
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .collect();
        if self.normalize {
            s = space().replace_all(s.trim(), " ").into_owned();
        }
        redact(&s, &self.kinds, &mut self.counts).into_owned()
    }

    fn clean(&mut self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.clean_str(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.clean(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, self.clean(v))).collect())
            }
            other => other,
        }
    }
}

impl Step for CleanText {
    type Input = Value;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("clean-text", "1.0.0").description(
            "Normalizes whitespace and redacts emails, SSNs, IBANs, card numbers, IPs and phone numbers",
        )
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        let names: Option<Vec<String>> = config::get("redact")?;
        let kinds = match names {
            None => Detector::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|n| n.parse::<Detector>())
                .collect::<Result<_, _>>()
                .map_err(|e| StepError::fatal(format!("config `redact`: {e}")))?,
        };
        let normalize = config::get("normalize")?.unwrap_or(true);
        let mut cleaner = Cleaner {
            kinds,
            normalize,
            counts: Counts::new(),
        };
        let output = cleaner.clean(input);
        let total: u64 = cleaner.counts.values().sum();
        let counts: Vec<String> = cleaner
            .counts
            .iter()
            .map(|(kind, n)| format!("{:?}: {n}", kind.name()))
            .collect();
        log::info(&format!(
            "redacted {total} item(s): {{{}}}",
            counts.join(", ")
        ));
        Ok(Output::new(output).route(if total > 0 { "redacted" } else { "clean" }))
    }
}

weir_sdk::export_step!(CleanText);
