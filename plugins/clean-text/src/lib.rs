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

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;
use weir_sdk::{Context, Meta, Output, Step, StepError, config, log};

struct CleanText;

struct Patterns {
    email: Regex,
    ssn: Regex,
    iban: Regex,
    card: Regex,
    phone: Regex,
    ipv4: Regex,
    space: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        email: Regex::new(r"(?i-u)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap(),
        // ASCII classes (`(?-u)`): a Unicode `\d` repeated is a far larger automaton, which
        // costs fuel to build on every attempt.
        ssn: Regex::new(r"(?-u)\b\d{3}-\d{2}-\d{4}\b").unwrap(),
        iban: Regex::new(r"(?-u)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
            .unwrap(),
        card: Regex::new(r"(?-u)\b(?:\d[ -]?){12,18}\d\b").unwrap(),
        // An optional country code, an optional area code in brackets, then two to five
        // groups of digits separated by spaces, dots or dashes.
        phone: Regex::new(
            r"(?-u)(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,8}){1,4}\b",
        )
        .unwrap(),
        ipv4: Regex::new(
            r"(?-u)\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
        )
        .unwrap(),
        space: Regex::new(r"\s+").unwrap(),
    })
}

/// A US social security number as issued: no area 000, 666 or 9xx, no group 00, no serial
/// 0000 (so `123-45-6789`-shaped part numbers with a zero group stay).
fn ssn_valid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [area, group, serial] = parts[..] else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// The IBAN check (ISO 13616): letters to numbers, the first four characters moved to the
/// end, the whole number modulo 97 is 1.
fn iban_valid(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        let (shift, v) = if value >= 10 {
            (100, value)
        } else {
            (10, value)
        };
        remainder = (remainder * shift + v) % 97;
    }
    remainder == 1
}

/// A phone number has 7 to 15 digits (E.164), and is not a date such as `2024-01-17` or
/// `17.01.2024`.
fn phone_valid(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let groups: Vec<usize> = text
        .split([' ', '.', '-'])
        .map(str::len)
        .filter(|&n| n > 0)
        .collect();
    let date = !text.starts_with('+') && matches!(groups[..], [4, 2, 2] | [2, 2, 4]);
    (7..=15).contains(&digits) && !date
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
        if count > 0 {
            *self.counts.entry(kind).or_default() += count;
        }
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
        // Order matters: SSNs, IBANs and cards before phones, which they also look like.
        s = self.replace(s, "email", &p.email, |_| true);
        s = self.replace(s, "ssn", &p.ssn, ssn_valid);
        s = self.replace(s, "iban", &p.iban, iban_valid);
        s = self.replace(s, "card", &p.card, luhn_valid);
        s = self.replace(s, "ipv4", &p.ipv4, |_| true);
        s = self.replace(s, "phone", &p.phone, phone_valid);
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
            "Normalizes whitespace and redacts emails, SSNs, IBANs, card numbers, IPs and phone numbers",
        )
    }

    fn run(_ctx: &Context, input: Value) -> Result<Output<Value>, StepError> {
        const ALL: [&str; 6] = ["email", "ssn", "iban", "card", "ipv4", "phone"];
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
