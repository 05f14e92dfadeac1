//! Data protection: what a workflow's `[redact]` takes out never reaches the journal or the
//! model, and a purge leaves no payload in the database (both checked by searching the raw
//! journal for every planted value), while the run keeps its metadata and costs.

use std::time::Duration;

use serde_json::{Value, json};
use weir::store::{Decided, Decision, RunStatus, StepStatus};
use weir_provider::{Provider, Reply};

use super::Fixture;
use super::triage::shipped_triage;

/// Personal data of every kind the example's detectors know, and a phone the `fields` path
/// drops whatever it looks like.
const PLANTED: &[&str] = &[
    "ana.lopez@example.com",
    "536-22-8123",
    "DE89 3704 0044 0532 0130 00",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "call-me-on-7-7-7",
];

fn planted_ticket() -> Value {
    json!({
        "subject": "Charged twice, write to ana.lopez@example.com",
        "body": "I was charged twice for my subscription (account quokka-ledger). My SSN is 536-22-8123, refund to \
                 DE89 3704 0044 0532 0130 00 or card 4111 1111 1111 1111, or call +44 20 7946 0958.",
        "customer": {"phone": "call-me-on-7-7-7", "plan": "pro"}
    })
}

fn found(haystack: &str) -> Vec<&'static str> {
    PLANTED
        .iter()
        .copied()
        .filter(|p| haystack.contains(p))
        .collect()
}

/// The planted ticket, run through the triage workflow `text` against a provider stand-in
/// that answers with `label`.
struct Planted {
    provider: Provider,
    f: Fixture,
    runner: weir::runner::Runner,
    run: weir::store::RunRecord,
}

impl Planted {
    async fn run(label: &str, text: &str) -> Self {
        let provider = Provider::start().await;
        provider.otherwise(Reply::complete(format!(
            r#"{{"label": "{label}", "confidence": 0.95}}"#
        )));
        let f = Fixture::new().await;
        let runner = crate::model_layer::runner(
            &f,
            crate::model_layer::config(&[("p", &provider.url())], ""),
        );
        super::triage::copy_prompts(&f.dir.path().join("prompts"));
        let path = f.workflow("triage.toml", text);
        let run =
            crate::model_layer::run_with(&runner, f.store.as_ref(), &path, planted_ticket()).await;
        Self {
            provider,
            f,
            runner,
            run,
        }
    }
}

#[tokio::test]
async fn planted_personal_data_reaches_neither_the_journal_nor_the_model() {
    let Planted {
        provider, f, run, ..
    } = Planted::run("billing", &shipped_triage("$PLUGINS")).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(provider.calls(), 1, "the model was asked");

    let sent = serde_json::to_string(&provider.requests()).unwrap();
    assert_eq!(found(&sent), Vec::<&str>::new(), "the model saw: {sent}");
    assert!(sent.contains("[SSN]") && sent.contains("[IBAN]"), "{sent}");
    let raw = f.backend.raw_contents(f.dir.path()).await;
    assert_eq!(
        found(&raw),
        Vec::<&str>::new(),
        "the journal holds personal data"
    );
    assert!(
        raw.contains("quokka-ledger"),
        "the search reads the journal"
    );

    let events = f.store.events(&run.id).await.unwrap();
    let listed: Vec<(String, String)> = weir::redaction::listed(&events)
        .into_iter()
        .map(|r| (r.at, r.rule))
        .collect();
    for expected in [
        ("input.customer.phone", "field"),
        ("input.subject", "email"),
        ("input.body", "ssn"),
        ("input.body", "iban"),
        ("input.body", "card"),
        ("input.body", "phone"),
    ] {
        assert!(
            listed.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {listed:?}"
        );
    }
    let input = f.store.get_run(&run.id).await.unwrap().unwrap().input;
    assert_eq!(
        input["customer"],
        json!({"phone": "[REDACTED]", "plan": "pro"})
    );

    // `weir runs show` says what was taken out, and where.
    let out = weir(&f, &["runs", "show", &run.id]);
    assert!(
        out.contains("redacted input.customer.phone (field), input.body (ssn), input.body (iban)"),
        "{out}"
    );
}

/// A reviewer's edit is a step output like any other: what `[redact]` takes out never
/// reaches the journal through it either.
#[tokio::test]
async fn a_reviewers_edit_is_redacted_before_it_is_journaled() {
    // The model and the in-sandbox classifier disagree: the ticket parks for review.
    let Planted { f, runner, run, .. } =
        Planted::run("feedback", &shipped_triage("$PLUGINS")).await;
    assert_eq!(run.status, RunStatus::AwaitingReview, "{run:?}");
    let review = f.pending_review(&run.id).await;
    let steps = f.store.steps(&run.id).await.unwrap();
    let decide = steps.iter().find(|s| s.step_id == review.step_id).unwrap();
    let mut edited = decide.output.clone().expect("the gated step's output");
    edited["queue"] = json!("billing");
    edited["summary"] = json!("Refund; customer is ana.lopez@example.com");
    runner
        .decide(
            &review.id,
            Decision::Edit(edited),
            Decided {
                by: "ana".into(),
                note: None,
            },
        )
        .await
        .unwrap();
    let done = runner.execute(&run.id).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    let output = done.output.unwrap();
    assert_eq!(
        output["summary"],
        json!("Refund; customer is [EMAIL]"),
        "{output}"
    );
    let raw = f.backend.raw_contents(f.dir.path()).await;
    assert_eq!(found(&raw), Vec::<&str>::new());
}

/// Runs the `weir` CLI on the fixture's journal; its stdout.
fn weir(f: &Fixture, args: &[&str]) -> String {
    let out = crate::crash::weir(f.dir.path())
        .args(f.backend.cli_args())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_purge_removes_every_payload_and_keeps_metadata_and_costs() {
    // The example without its redaction, so that the payloads are there to purge.
    let shipped = shipped_triage("$PLUGINS");
    let start = shipped.find("[redact]").unwrap();
    let end = shipped.find("[retention]").unwrap();
    let text = format!("{}{}", &shipped[..start], &shipped[end..]);
    let Planted { f, run, .. } = Planted::run("billing", &text).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let raw = f.backend.raw_contents(f.dir.path()).await;
    assert_eq!(
        found(&raw),
        PLANTED,
        "without [redact] the journal holds the ticket"
    );
    let calls_before = f.store.model_calls(&run.id).await.unwrap();
    let attempts_before = f.store.attempts(&run.id).await.unwrap().len();

    // Within its 30 days of retention nothing goes; past them (or past --older-than) it does.
    let purged = weir::retention::apply(f.store.as_ref()).await.unwrap();
    assert!(purged.is_empty(), "{purged:?}");
    let out = weir(&f, &["runs", "purge"]);
    assert!(out.contains("purged 0 run(s)"), "{out}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let out = weir(
        &f,
        &[
            "runs",
            "purge",
            "--older-than",
            "10ms",
            "--workflow",
            "ticket-triage",
        ],
    );
    assert!(
        out.contains("ticket-triage: purged the payloads of 1 run(s)"),
        "{out}"
    );

    let raw = f.backend.raw_contents(f.dir.path()).await;
    assert_eq!(
        found(&raw),
        Vec::<&str>::new(),
        "a purged payload stays in the database"
    );
    assert!(!raw.contains("quokka-ledger"), "the ticket's text went too");

    let after = f.store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(after.status, RunStatus::Succeeded);
    assert_eq!(after.input, Value::Null);
    assert_eq!(after.output, None);
    let steps = f.store.steps(&run.id).await.unwrap();
    assert!(steps.iter().all(|s| s.output.is_none()), "{steps:?}");
    assert!(
        steps.iter().any(|s| s.status == StepStatus::Succeeded),
        "step statuses stay: {steps:?}"
    );
    assert_eq!(
        f.store.attempts(&run.id).await.unwrap().len(),
        attempts_before
    );
    let calls = f.store.model_calls(&run.id).await.unwrap();
    assert_eq!(calls.len(), calls_before.len());
    for (after, before) in calls.iter().zip(&calls_before) {
        assert_eq!(after.cost_micros, before.cost_micros, "costs stay");
        assert_eq!(after.prompt_tokens, before.prompt_tokens);
        assert_eq!(after.request, Value::Null);
        assert_eq!(after.response, None);
    }
    // Purged once: a second purge finds nothing to do.
    let again = weir::retention::purge_older_than(f.store.as_ref(), None, Duration::from_millis(1))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}
