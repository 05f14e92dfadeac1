//! The useful plugins, and the capabilities they exercise: config, log, stdio, context,
//! routes, guest errors, files and HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use weir::capabilities::config::StepConfig;
use weir::capabilities::http::HostGrant;
use weir::capabilities::log::{LogLevel, LogSource};
use weir::{Grants, Limits, StepFailure, StepSpec};
use weir_artifacts as artifacts;

use crate::support::{ok, run, spec};

/// A real HTTP server on loopback that counts requests and reports whether the injected
/// secret arrived.
pub struct LoopbackServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl LoopbackServer {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/doc",
            axum::routing::get(move |headers: HeaderMap| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer s3cret") => (
                            StatusCode::OK,
                            "hello from loopback; auth=present".to_string(),
                        ),
                        Some(other) => (
                            StatusCode::UNAUTHORIZED,
                            format!("wrong credential {other:?}"),
                        ),
                        None => (StatusCode::UNAUTHORIZED, "auth=missing".to_string()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn with_config(pairs: &[&str]) -> StepSpec {
    StepSpec {
        config: StepConfig::from_pairs(pairs.iter().copied()).unwrap(),
        ..spec(Limits::default())
    }
}

#[tokio::test]
pub(crate) async fn echo() {
    let plain = run(artifacts::ECHO, &spec(Limits::default()), r#"{"a":[1,2]}"#).await;
    let output = ok(&plain);
    assert_eq!(output.payload, json!({"a": [1, 2]}));
    assert_eq!((output.route.as_deref(), output.confidence), (None, None));

    let spec = with_config(&[
        "annotate=true",
        "route=urgent",
        "confidence=0.75",
        "team=billing",
    ]);
    let report = run(artifacts::ECHO, &spec, r#""hi""#).await;
    let output = ok(&report);
    assert_eq!(output.payload["input"], json!("hi"));
    assert_eq!(output.payload["config"]["team"], json!("billing"));
    assert_eq!(output.payload["context"]["run_id"], json!("local"));
    assert_eq!(output.payload["context"]["attempt"], json!(1));
    let deadline_ms = output.payload["context"]["deadline_ms"].as_u64().unwrap();
    assert!(deadline_ms > 0 && deadline_ms <= 30_000, "{deadline_ms}");
    assert_eq!(output.route.as_deref(), Some("urgent"));
    assert_eq!(output.confidence, Some(0.75));
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].level, LogLevel::Info);
    assert_eq!(report.logs[0].source, LogSource::Guest);
    assert_eq!(report.logs[0].message, "echo attempt 1 of step");
    assert_eq!(report.stdout, "echo stdout line\n");
    assert_eq!(report.stderr, "echo stderr line\n");
}

#[tokio::test]
async fn guest_errors_come_back_as_themselves() {
    for (kind, expected) in [
        (
            "invalid-input",
            StepFailure::InvalidInput {
                message: "asked to fail with invalid-input".into(),
            },
        ),
        (
            "transient",
            StepFailure::Transient {
                message: "asked to fail with transient".into(),
            },
        ),
        (
            "fatal",
            StepFailure::Fatal {
                message: "asked to fail with fatal".into(),
            },
        ),
        (
            "needs-review",
            StepFailure::NeedsReview {
                message: "asked to fail with needs-review".into(),
            },
        ),
    ] {
        let report = run(
            artifacts::ECHO,
            &with_config(&[&format!("fail={kind}")]),
            "{}",
        )
        .await;
        assert_eq!(report.outcome, Err(expected));
    }
}

#[tokio::test]
async fn input_that_does_not_fit_the_step_is_invalid_input() {
    let report = run(
        artifacts::FETCH_URL,
        &spec(Limits::default()),
        r#"{"link": 1}"#,
    )
    .await;
    match report.outcome {
        Err(StepFailure::InvalidInput { message }) => {
            assert!(
                message.starts_with("input does not have the expected shape: missing field `url`"),
                "{message}"
            );
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[tokio::test]
pub(crate) async fn validate_json() {
    let schema = json!({
        "type": "object",
        "required": ["email", "age"],
        "properties": {"email": {"type": "string", "format": "email"}, "age": {"type": "integer", "minimum": 0}}
    });
    let spec = StepSpec {
        config: StepConfig::from_value(json!({ "schema": schema })).unwrap(),
        ..spec(Limits::default())
    };
    let good = run(
        artifacts::VALIDATE_JSON,
        &spec,
        r#"{"email":"a@b.co","age":3}"#,
    )
    .await;
    assert_eq!(ok(&good).payload, json!({"email": "a@b.co", "age": 3}));
    assert_eq!(ok(&good).confidence, Some(1.0));

    let bad = run(artifacts::VALIDATE_JSON, &spec, r#"{"age":-1}"#).await;
    match bad.outcome {
        Err(StepFailure::InvalidInput { message }) => {
            assert!(message.starts_with("2 schema violation(s): "), "{message}");
            assert!(
                message.contains("at /: \"email\" is a required property"),
                "{message}"
            );
            assert!(
                message.contains("at /age: -1 is less than the minimum of 0"),
                "{message}"
            );
        }
        other => panic!("expected invalid input, got {other:?}"),
    }

    let unconfigured = run(
        artifacts::VALIDATE_JSON,
        &crate::support::spec(Limits::default()),
        "{}",
    )
    .await;
    assert_eq!(
        unconfigured.outcome,
        Err(StepFailure::Fatal {
            message: "config key `schema` is required but not set".into()
        })
    );
}

#[tokio::test]
pub(crate) async fn clean_text() {
    let input = json!({
        "subject": "  Refund\tplease \n\n now ",
        "body": "Mail jane.doe@example.com or call +1 415-555-0132. Card 4111 1111 1111 1111, from 10.0.0.12. Order 20240117.",
        "tags": ["ok", "bob@corp.io"],
        "count": 3
    });
    let report = run(
        artifacts::CLEAN_TEXT,
        &spec(Limits::default()),
        &input.to_string(),
    )
    .await;
    let output = ok(&report);
    assert_eq!(
        output.payload,
        json!({
            "subject": "Refund please now",
            "body": "Mail [EMAIL] or call [PHONE]. Card [CARD], from [IPV4]. Order 20240117.",
            "tags": ["ok", "[EMAIL]"],
            "count": 3
        })
    );
    assert_eq!(output.route.as_deref(), Some("redacted"));
    assert!(
        report.logs[0].message.starts_with("redacted 5 item(s)"),
        "{:?}",
        report.logs
    );

    // SSNs, IBANs and phone numbers of several countries; dates and order numbers stay.
    let planted = [
        ("ssn", "SSN 536-22-8123 on file"),
        ("iban", "IBAN DE89 3704 0044 0532 0130 00 please"),
        ("iban", "pay GB82WEST12345698765432 now"),
        ("phone", "call (415) 555-0132 today"),
        ("phone", "ring +44 20 7946 0958 or"),
        ("phone", "UK 020 7946 0958 office"),
        ("phone", "FR 01 23 45 67 89 bureau"),
        ("phone", "FR +33 1 23 45 67 89 mobile"),
        ("phone", "DE 030 12345678 Büro"),
        ("phone", "IN +91 98765 43210 cell"),
        ("phone", "JP 03-1234-5678 desk"),
    ];
    for (kind, text) in planted {
        let report = run(
            artifacts::CLEAN_TEXT,
            &spec(Limits::default()),
            &json!({ "t": text }).to_string(),
        )
        .await;
        let cleaned = ok(&report).payload["t"].as_str().unwrap().to_string();
        let placeholder = format!("[{}]", kind.to_uppercase());
        assert!(cleaned.contains(&placeholder), "{text:?} -> {cleaned:?}");
        assert!(
            !cleaned.chars().any(|c| c.is_ascii_digit()),
            "nothing of the number is left: {text:?} -> {cleaned:?}"
        );
    }
    let kept = "Order 20240117 of 2024-01-17, due 17.01.2024, version 1.2.3, 3 items";
    let report = run(
        artifacts::CLEAN_TEXT,
        &spec(Limits::default()),
        &json!({ "t": kept }).to_string(),
    )
    .await;
    assert_eq!(ok(&report).payload["t"], json!(kept));

    let only_email = with_config(&[r#"redact=["email"]"#, "normalize=false"]);
    let report = run(
        artifacts::CLEAN_TEXT,
        &only_email,
        r#"{"t":"x  a@b.io 10.0.0.1"}"#,
    )
    .await;
    assert_eq!(ok(&report).payload, json!({"t": "x  [EMAIL] 10.0.0.1"}));

    let bad = run(
        artifacts::CLEAN_TEXT,
        &with_config(&[r#"redact=["passport"]"#]),
        "{}",
    )
    .await;
    assert_eq!(
        bad.outcome,
        Err(StepFailure::Fatal {
            message:
                "config `redact`: unknown detector \"passport\"; known detectors: email, ssn, iban, card, ipv4, phone"
                    .into()
        })
    );
}

fn http_spec(server: &LoopbackServer, with_secret: bool) -> StepSpec {
    let mut hosts = vec![HostGrant::parse(&server.addr.to_string()).unwrap()];
    if with_secret {
        let secret = format!("{}=Authorization:TEST_TOKEN", server.addr);
        HostGrant::attach_secrets(&mut hosts, [secret.as_str()], |_| {
            Some("Bearer s3cret".into())
        })
        .unwrap();
    }
    StepSpec {
        grants: Grants {
            hosts: hosts.into(),
            ..Grants::default()
        },
        ..spec(Limits::default())
    }
}

#[tokio::test]
pub(crate) async fn fetch_url() {
    let server = LoopbackServer::start().await;
    let input = json!({ "url": format!("http://{}/doc", server.addr) }).to_string();

    let report = run(artifacts::FETCH_URL, &http_spec(&server, true), &input).await;
    assert_eq!(
        ok(&report).payload,
        json!({"status": 200, "body": "hello from loopback; auth=present"})
    );
    assert!(!report.stdout.contains("s3cret") && !report.stderr.contains("s3cret"));

    let report = run(artifacts::FETCH_URL, &http_spec(&server, false), &input).await;
    assert_eq!(
        ok(&report).payload,
        json!({"status": 401, "body": "auth=missing"})
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn the_http_request_budget_is_enforced() {
    let server = LoopbackServer::start().await;
    let mut spec = http_spec(&server, true);
    spec.limits.http_requests = 0;
    let input = json!({ "url": format!("http://{}/doc", server.addr) }).to_string();
    let report = run(artifacts::FETCH_URL, &spec, &input).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::Denied { capability, .. }) if capability == "http")
    );
    assert_eq!(
        report.denials[0].reason,
        "request budget of this attempt is used up"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
pub(crate) async fn fs_probe() {
    let input_dir = tempfile::tempdir().unwrap();
    std::fs::write(input_dir.path().join("a.txt"), "alpha").unwrap();
    let output_dir = tempfile::tempdir().unwrap();
    let dirs = vec![
        format!("{}:/in", input_dir.path().display())
            .parse()
            .unwrap(),
        format!("{}:/out:rw", output_dir.path().display())
            .parse()
            .unwrap(),
    ];
    let spec = StepSpec {
        grants: Grants {
            dirs,
            ..Grants::default()
        },
        ..spec(Limits::default())
    };
    let ops = json!([
        {"op": "read", "path": "/in/a.txt"},
        {"op": "list", "path": "/in"},
        {"op": "write", "path": "/in/b.txt", "content": "nope"},
        {"op": "write", "path": "/out/result.txt", "content": "written"},
        {"op": "read", "path": "/elsewhere/x"}
    ]);
    let report = run(artifacts::FS_PROBE, &spec, &ops.to_string()).await;
    let results: &Vec<Value> = ok(&report).payload.as_array().unwrap();
    assert_eq!(results[0], json!({"ok": "alpha"}));
    assert_eq!(results[1], json!({"ok": ["a.txt"]}));
    assert!(
        results[2].get("error").is_some(),
        "a read-only grant was writable: {}",
        results[2]
    );
    assert_eq!(results[3], json!({"ok": true}));
    assert!(results[4].get("error").is_some());
    assert!(!input_dir.path().join("b.txt").exists());
    assert_eq!(
        std::fs::read_to_string(output_dir.path().join("result.txt")).unwrap(),
        "written"
    );
}

#[tokio::test]
pub(crate) async fn route_ticket() {
    let cases = [
        (json!({"subject": "  ", "body": ""}), "empty"),
        (
            json!({"subject": "You have WON", "body": "Click here for a crypto giveaway"}),
            "spam",
        ),
        (
            json!({"subject": "Links", "body": "https://a.io https://b.io https://c.io https://d.io"}),
            "spam",
        ),
        (
            json!({"subject": "Refund", "body": "I was charged twice", "channel": "email"}),
            "ok",
        ),
    ];
    for (ticket, expected) in cases {
        let report = run(
            artifacts::ROUTE_TICKET,
            &spec(Limits::default()),
            &ticket.to_string(),
        )
        .await;
        let output = ok(&report);
        assert_eq!(output.route.as_deref(), Some(expected), "{ticket}");
        assert_eq!(
            output.payload["subject"], ticket["subject"],
            "the ticket passes through"
        );
    }
    let report = run(
        artifacts::ROUTE_TICKET,
        &spec(Limits::default()),
        r#"{"subject":"x","body":"y","channel":"chat"}"#,
    )
    .await;
    assert_eq!(
        ok(&report).payload,
        json!({"subject": "x", "body": "y", "channel": "chat", "signals": []})
    );
}

#[tokio::test]
pub(crate) async fn classify_ticket() {
    let cases = [
        (
            json!({"subject": "Charged twice", "body": "My card was charged twice for the invoice, please refund"}),
            "billing",
        ),
        (
            json!({"subject": "App crashes", "body": "The dashboard shows a 502 error after the update"}),
            "technical",
        ),
        (
            json!({"subject": "Parcel late", "body": "Tracking has not updated and the package is missing"}),
            "shipping",
        ),
        (
            json!({"subject": "Password reset", "body": "I am locked out of my account and the reset email never arrives"}),
            "account",
        ),
    ];
    for (ticket, expected) in cases {
        let report = run(
            artifacts::CLASSIFY_TICKET,
            &spec(Limits::default()),
            &ticket.to_string(),
        )
        .await;
        let output = ok(&report);
        assert_eq!(
            output.payload["label"],
            json!(expected),
            "{ticket}: {}",
            output.payload
        );
        assert_eq!(output.route.as_deref(), Some(expected));
        let confidence = output.confidence.unwrap();
        assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
        let total: f64 = output.payload["scores"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 0.01, "posteriors sum to one: {total}");
    }
    let vague = run(
        artifacts::CLASSIFY_TICKET,
        &spec(Limits::default()),
        r#"{"subject":"question","body":"hello there"}"#,
    )
    .await;
    assert!(
        ok(&vague).confidence.unwrap() < 0.6,
        "an uninformative ticket is not classified confidently"
    );
    let empty = run(
        artifacts::CLASSIFY_TICKET,
        &spec(Limits::default()),
        r#"{"subject":"","body":"!!"}"#,
    )
    .await;
    assert_eq!(
        empty.outcome,
        Err(StepFailure::InvalidInput {
            message: "the ticket has no words to classify".into()
        })
    );
    let plugin = crate::support::plugin(artifacts::CLASSIFY_TICKET).await;
    assert!(
        plugin.meta().description.contains("trained on 300 tickets"),
        "{}",
        plugin.meta().description
    );
}

#[tokio::test]
pub(crate) async fn format_triage() {
    let input = json!({
        "ticket": {"subject": "Dashboard down for everyone", "body": "We are blocked"},
        "classification": {"label": "technical", "confidence": 0.91}
    });
    let report = run(
        artifacts::FORMAT_TRIAGE,
        &spec(Limits::default()),
        &input.to_string(),
    )
    .await;
    assert_eq!(
        ok(&report).payload,
        json!({"queue": "technical", "priority": "high", "status": "routed", "confidence": 0.91, "summary": "Dashboard down for everyone"})
    );
    let review = run(
        artifacts::FORMAT_TRIAGE,
        &with_config(&["status=needs_review"]),
        &input.to_string(),
    )
    .await;
    assert_eq!(ok(&review).payload["status"], json!("needs_review"));
    let bad = run(
        artifacts::FORMAT_TRIAGE,
        &with_config(&["status=maybe"]),
        &input.to_string(),
    )
    .await;
    assert!(matches!(bad.outcome, Err(StepFailure::Fatal { .. })));
}
