//! Cleans every string in its input: strips control characters, collapses runs of
//! whitespace, and redacts personal data (emails, phone numbers, payment card numbers that
//! pass the Luhn check, IPv4 addresses) with a typed placeholder such as `[EMAIL]`.
//!
//! Config: `redact` (list of kinds to redact; default all), `normalize` (default true).
//! The output has the input's shape; the route label is `redacted` when anything was
//! redacted and `clean` otherwise, and the counts per kind are logged.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError, config, log};

struct CleanText;

struct Patterns {
    email: Regex,
    card: Regex,
    phone: Regex,
    ipv4: Regex,
    space: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        email: Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap(),
        card: Regex::new(r"\b(?:\d[ -]?){12,18}\d\b").unwrap(),
        phone: Regex::new(
            r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{3,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?\b",
        )
        .unwrap(),
        ipv4: Regex::new(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
            .unwrap(),
        space: Regex::new(r"\s+").unwrap(),
    })
}

/// Luhn checksum: separates card numbers from other long digit runs (order ids, dates).
fn luhn_valid(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

struct Cleaner {
    kinds: Vec<String>,
    normalize: bool,
    counts: BTreeMap<&'static str, u64>,
}

impl Cleaner {
    fn wants(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    fn replace(
        &mut self,
        text: String,
        kind: &'static str,
        re: &Regex,
        keep: impl Fn(&str) -> bool,
    ) -> String {
        if !self.wants(kind) {
            return text;
        }
        let mut count = 0;
        let out = re
            .replace_all(&text, |caps: &regex::Captures<'_>| {
                let m = &caps[0];
                if keep(m) {
                    count += 1;
                    format!("[{}]", kind.to_uppercase())
                } else {
                    m.to_string()
                }
            })
            .into_owned();
        *self.counts.entry(kind).or_default() += count;
        out
    }

    fn clean_str(&mut self, text: &str) -> String {
        let p = patterns();
        let mut s: String = text
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .collect();
        if self.normalize {
            s = p.space.replace_all(s.trim(), " ").into_owned();
        }
        // Order matters: cards before phones, since a card number also looks like a phone.
        s = self.replace(s, "email", &p.email, |_| true);
        s = self.replace(s, "card", &p.card, luhn_valid);
        s = self.replace(s, "ipv4", &p.ipv4, |_| true);
        s = self.replace(s, "phone", &p.phone, |m| {
            m.chars().filter(char::is_ascii_digit).count() >= 7
        });
        s
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
            "Normalizes whitespace and redacts emails, phone numbers, card numbers and IPs",
        )
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        const ALL: [&str; 4] = ["email", "card", "ipv4", "phone"];
        let kinds: Vec<String> =
            config::get("redact")?.unwrap_or_else(|| ALL.map(String::from).to_vec());
        if let Some(bad) = kinds.iter().find(|k| !ALL.contains(&k.as_str())) {
            return Err(StepError::fatal(format!(
                "config `redact` names unknown kind {bad:?}; known kinds: {}",
                ALL.join(", ")
            )));
        }
        let normalize = config::get("normalize")?.unwrap_or(true);
        let mut cleaner = Cleaner {
            kinds,
            normalize,
            counts: BTreeMap::new(),
        };
        let output = cleaner.clean(input);
        let total: u64 = cleaner.counts.values().sum();
        log::info(&format!("redacted {total} item(s): {:?}", cleaner.counts));
        Ok(Output::new(output).route(if total > 0 { "redacted" } else { "clean" }))
    }
}

weir_sdk::export_step!(CleanText);
