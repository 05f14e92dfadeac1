use serde_json::json;

use super::*;

fn redactor(detectors: &[&str], fields: &[&str]) -> Redactor {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Redactor::new(&owned(detectors), &owned(fields)).unwrap()
}

#[test]
fn fields_are_removed_and_strings_scanned_with_their_paths() {
    let r = redactor(
        &["email", "ssn"],
        &["input.customer.phone", "input.items.*.card"],
    );
    let mut input = json!({
        "body": "I am 123-45-6789, write to ana@example.com",
        "customer": {"phone": "+1 415 555 0132", "name": "Ana"},
        "items": [{"card": "4111111111111111"}, {"sku": "x"}]
    });
    let found = r.input(&mut input);
    assert_eq!(
        input,
        json!({
            "body": "I am [SSN], write to [EMAIL]",
            "customer": {"phone": "[REDACTED]", "name": "Ana"},
            "items": [{"card": "[REDACTED]"}, {"sku": "x"}]
        })
    );
    let listed: Vec<(&str, &str, u64)> = found
        .iter()
        .map(|r| (r.at.as_str(), r.rule.as_str(), r.count))
        .collect();
    assert_eq!(
        listed,
        [
            ("input.customer.phone", "field", 1),
            ("input.items.0.card", "field", 1),
            ("input.body", "email", 1),
            ("input.body", "ssn", 1),
        ]
    );
}

#[test]
fn step_fields_apply_to_their_step_or_every_step() {
    let r = redactor(&[], &["steps.clean.output.secret", "steps.*.output.token"]);
    let mut out = json!({"secret": "s", "token": "t"});
    assert_eq!(r.output("clean", &mut out).len(), 2);
    assert_eq!(out, json!({"secret": "[REDACTED]", "token": "[REDACTED]"}));
    let mut other = json!({"secret": "s", "token": "t"});
    assert_eq!(r.output("route", &mut other).len(), 1);
    assert_eq!(other, json!({"secret": "s", "token": "[REDACTED]"}));
    let mut input = json!({"token": "t"});
    assert!(
        r.input(&mut input).is_empty(),
        "step paths leave the input alone"
    );
}

#[test]
fn keys_are_scanned_and_strings_counted_once_per_rule() {
    let r = redactor(&["email"], &[]);
    let mut logs =
        json!({"logs": [{"message": "from a@b.co"}, {"message": "and c@d.co"}], "x@y.io": 1});
    let found = r.strings("steps.s.logs", &mut logs);
    assert_eq!(
        found,
        [Redaction {
            at: "steps.s.logs".into(),
            rule: "email".into(),
            count: 3
        }]
    );
    assert!(!logs.to_string().contains('@'), "{logs}");
}

#[test]
fn bad_entries_are_named() {
    let bad = |d: &[&str], f: &[&str]| {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Redactor::new(&owned(d), &owned(f)).unwrap_err()
    };
    assert!(bad(&["passport"], &[]).contains("\"passport\""));
    assert!(bad(&[], &["customer.email"]).contains("must start with `input.`"));
    assert!(bad(&[], &["input"]).contains("names a whole value"));
    assert!(bad(&[], &["input..x"]).contains("empty segment"));
    assert!(bad(&[], &["steps.a.input.x"]).contains("steps.<step-id>.output."));
}
