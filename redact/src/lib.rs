//! Detectors of personal data in text: emails, US social security numbers, IBANs that pass
//! their mod-97 check, payment card numbers that pass the Luhn check, IPv4 addresses, and
//! phone numbers in international and national formats (North American `(415) 555-0132`,
//! British `020 7946 0958`, French `01 23 45 67 89`, German `030 12345678`, Indian
//! `+91 98765 43210`, Japanese `03-1234-5678`, ...).
//!
//! Each match is replaced with a typed placeholder such as `[EMAIL]`. The same code runs in
//! Weir's host (the redaction a workflow declares, applied before anything is journaled or
//! sent to a model) and in the example's `clean-text` step, so both find the same things.

mod checks;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detector {
    /// `name@example.com`.
    Email,
    /// A US social security number as issued (`123-45-6789` shapes with a zero group stay).
    Ssn,
    /// An IBAN whose mod-97 check passes, with or without spaces.
    Iban,
    /// A payment card number (13 to 19 digits) whose Luhn check passes.
    Card,
    /// A dotted IPv4 address.
    Ipv4,
    /// A phone number of 7 to 15 digits, with an optional country code; not a date.
    Phone,
}

impl Detector {
    /// Every detector, in the order they are applied: SSNs, IBANs and cards before phones,
    /// which they also look like.
    pub const ALL: [Detector; 6] = [
        Detector::Email,
        Detector::Ssn,
        Detector::Iban,
        Detector::Card,
        Detector::Ipv4,
        Detector::Phone,
    ];

    /// Its name in configuration: `email`, `ssn`, `iban`, `card`, `ipv4`, `phone`.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Ssn => "ssn",
            Detector::Iban => "iban",
            Detector::Card => "card",
            Detector::Ipv4 => "ipv4",
            Detector::Phone => "phone",
        }
    }

    /// What a match is replaced with: `[EMAIL]`, `[SSN]`, ...
    pub fn placeholder(self) -> &'static str {
        match self {
            Detector::Email => "[EMAIL]",
            Detector::Ssn => "[SSN]",
            Detector::Iban => "[IBAN]",
            Detector::Card => "[CARD]",
            Detector::Ipv4 => "[IPV4]",
            Detector::Phone => "[PHONE]",
        }
    }

    fn pattern(self) -> &'static Regex {
        let p = patterns();
        match self {
            Detector::Email => &p.email,
            Detector::Ssn => &p.ssn,
            Detector::Iban => &p.iban,
            Detector::Card => &p.card,
            Detector::Ipv4 => &p.ipv4,
            Detector::Phone => &p.phone,
        }
    }

    /// Whether a pattern match is really this kind (a checksum, a range, not a date).
    fn confirms(self, text: &str) -> bool {
        match self {
            Detector::Email | Detector::Ipv4 => true,
            Detector::Ssn => checks::ssn_valid(text),
            Detector::Iban => checks::iban_valid(text),
            Detector::Card => checks::luhn_valid(text),
            Detector::Phone => checks::phone_valid(text),
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A detector name that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDetector(pub String);

impl fmt::Display for UnknownDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
        write!(
            f,
            "unknown detector {:?}; known detectors: {}",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownDetector {}

impl FromStr for Detector {
    type Err = UnknownDetector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Detector::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| UnknownDetector(s.to_string()))
    }
}

/// How many matches of each kind were replaced.
pub type Counts = BTreeMap<Detector, u64>;

struct Patterns {
    email: Regex,
    ssn: Regex,
    iban: Regex,
    card: Regex,
    phone: Regex,
    ipv4: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        email: Regex::new(r"(?i-u)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap(),
        // ASCII classes (`(?-u)`): a Unicode `\d` repeated is a far larger automaton, which
        // a step pays for in fuel on every attempt.
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
    })
}

/// `text` with every match of `detectors` replaced by its placeholder (applied in
/// [`Detector::ALL`]'s order, whatever the order given), counting each replacement.
/// Borrowed when nothing matched.
pub fn redact<'t>(text: &'t str, detectors: &[Detector], counts: &mut Counts) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for detector in Detector::ALL {
        if !detectors.contains(&detector) {
            continue;
        }
        let mut found = 0;
        let replaced = detector
            .pattern()
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                let m = &caps[0];
                if detector.confirms(m) {
                    found += 1;
                    detector.placeholder().to_string()
                } else {
                    m.to_string()
                }
            });
        if found > 0 {
            let replaced = replaced.into_owned();
            *counts.entry(detector).or_default() += found;
            out = Cow::Owned(replaced);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> (String, Counts) {
        let mut counts = Counts::new();
        let out = redact(text, &Detector::ALL, &mut counts).into_owned();
        (out, counts)
    }

    #[test]
    fn each_kind_is_replaced_and_counted() {
        let (out, counts) = clean(
            "mail ana@example.com, ssn 123-45-6789, iban DE89 3704 0044 0532 0130 00, \
             card 4111 1111 1111 1111, ip 10.0.0.1, call +44 20 7946 0958",
        );
        assert_eq!(
            out,
            "mail [EMAIL], ssn [SSN], iban [IBAN], card [CARD], ip [IPV4], call [PHONE]"
        );
        assert!(counts.values().all(|&n| n == 1), "{counts:?}");
        assert_eq!(counts.len(), 6);
    }

    #[test]
    fn lookalikes_that_fail_their_check_stay() {
        // A zero SSN group, a card that fails Luhn, an IBAN that fails mod-97, a date.
        for (text, detector) in [
            ("part 123-00-6789", Detector::Ssn),
            ("order 4111 1111 1111 1112", Detector::Card),
            ("ref DE89 3704 0044 0532 0130 01", Detector::Iban),
            ("due 2024-01-17", Detector::Phone),
        ] {
            let mut counts = Counts::new();
            assert_eq!(redact(text, &[detector], &mut counts), text);
            assert!(counts.is_empty(), "{text}: {counts:?}");
        }
    }

    #[test]
    fn only_the_detectors_asked_for_run() {
        let mut counts = Counts::new();
        let out = redact("ana@example.com 10.0.0.1", &[Detector::Ipv4], &mut counts);
        assert_eq!(out, "ana@example.com [IPV4]");
        assert_eq!(counts, Counts::from([(Detector::Ipv4, 1)]));
    }

    #[test]
    fn names_parse_and_unknown_ones_are_named() {
        assert_eq!("iban".parse::<Detector>(), Ok(Detector::Iban));
        let e = "passport".parse::<Detector>().unwrap_err().to_string();
        assert!(
            e.contains("\"passport\"") && e.contains("email, ssn"),
            "{e}"
        );
    }
}
