//! Step profiles: every step result adds to its step's profile in the transaction that
//! records it, so the profile's counts are the journal's own (checked here against the
//! steps the journal holds), on SQLite and PostgreSQL; `weir monitor profile` and
//! `GET /v1/monitor/{workflow}/profile` read them back. The crash and shared-journal suites
//! check the counts after kill -9 and resume, and with many processes on one journal; `drift`
//! catches a shift end to end.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weir::monitor::profile::{
    self, CONFIDENCE, INPUT_BYTES, INPUT_FIELDS, INPUT_VIOLATION, ROUTE, STATUS,
};
use weir::store::{ProfileFilter, ProfileRow, RunStatus, StepStatus, Store};

use crate::crash::weir;
use crate::workflows::Fixture;

mod drift;

/// Now, as the journal's clock reads it (ms since the epoch).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const WORKFLOW: &str = r#"
name = "profiled"
version = "1.0.0"

[[steps]]
id = "classify"
plugin = "$PLUGINS/classify_ticket.wasm"

[steps.monitor.features]
body_len = { expr = "size(input.body)", type = "numeric" }
lang = { expr = "lang(input.body)", type = "categorical" }
"#;

/// Every profile row of `workflow`.
pub async fn rows(store: &dyn Store, workflow: &str) -> Vec<ProfileRow> {
    store
        .monitor()
        .profiles(&ProfileFilter {
            workflow: workflow.into(),
            ..ProfileFilter::default()
        })
        .await
        .unwrap()
}

/// `feature`'s counts per bin for `step`, over every version and window.
pub fn counts(rows: &[ProfileRow], step: &str, feature: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.step_id == step && r.feature == feature)
    {
        *counts.entry(row.bin.clone()).or_insert(0) += row.count;
    }
    counts
}

/// The results `step` has had counted: one status per result.
pub fn results(rows: &[ProfileRow], step: &str) -> i64 {
    counts(rows, step, STATUS).values().sum()
}

fn tickets() -> Vec<Value> {
    let texts = [
        (
            "Charged twice",
            "My card was charged twice for the invoice, please refund",
        ),
        (
            "App crashes",
            "The dashboard shows a 502 error after the update",
        ),
        (
            "Parcel late",
            "Tracking has not updated and the package is missing",
        ),
        (
            "Password reset",
            "I am locked out of my account and the reset email never arrives",
        ),
        (
            "Refund",
            "Please refund the duplicate charge on my last invoice",
        ),
        (
            "Login",
            "Two factor codes do not arrive and I cannot sign in to my account",
        ),
    ];
    let mut tickets: Vec<Value> = texts
        .iter()
        .map(|(subject, body)| json!({"subject": subject, "body": body}))
        .collect();
    // Some with a null field, one with a field of the wrong type.
    tickets.push(
        json!({"subject": "Invoice", "body": "Where is my invoice for March", "priority": null}),
    );
    tickets.push(json!({"subject": 7, "body": "the subject is a number"}));
    tickets
}

#[tokio::test]
async fn a_profile_counts_what_each_result_saw_and_said_as_the_journal_recorded_it() {
    let fixture = Fixture::new().await;
    let path = fixture.workflow("profiled.toml", WORKFLOW);
    let mut runs = Vec::new();
    for ticket in tickets() {
        runs.push(fixture.run(&path, ticket).await);
    }
    let rows = rows(fixture.store.as_ref(), "profiled").await;

    // What the journal holds, step by step, is what the profile counted.
    let mut statuses: BTreeMap<String, i64> = BTreeMap::new();
    let mut routes: BTreeMap<String, i64> = BTreeMap::new();
    let mut confidence_sum = 0.0;
    for run in &runs {
        let step = &fixture.store.steps(&run.id).await.unwrap()[0];
        let status = match step.status {
            StepStatus::Succeeded => "succeeded".to_string(),
            _ => step.failure.as_ref().unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        *statuses.entry(status).or_insert(0) += 1;
        if step.status == StepStatus::Succeeded {
            *routes.entry(step.route.clone().unwrap()).or_insert(0) += 1;
            confidence_sum += step.confidence.unwrap();
        }
    }
    assert_eq!(counts(&rows, "classify", STATUS), statuses);
    assert_eq!(statuses.get("invalid_input"), Some(&1), "{statuses:?}");
    assert_eq!(counts(&rows, "classify", ROUTE), routes);
    assert!(
        routes.len() >= 3,
        "the tickets take several routes: {routes:?}"
    );
    let confidence: f64 = rows
        .iter()
        .filter(|r| r.feature == CONFIDENCE)
        .map(|r| r.sum)
        .sum();
    assert!((confidence - confidence_sum).abs() < 1e-9);

    // The input side: sizes, fields present and null, and where the schema was broken.
    let bytes: f64 = rows
        .iter()
        .filter(|r| r.feature == INPUT_BYTES)
        .map(|r| r.sum)
        .sum();
    let expected: usize = tickets().iter().map(|t| t.to_string().len()).sum();
    assert_eq!(bytes, expected as f64);
    let fields = counts(&rows, "classify", INPUT_FIELDS);
    assert_eq!(fields.get("subject"), Some(&(tickets().len() as i64)));
    assert_eq!(
        counts(&rows, "classify", profile::INPUT_NULLS).get("priority"),
        Some(&1)
    );
    assert_eq!(
        counts(&rows, "classify", INPUT_VIOLATION),
        BTreeMap::from([("/subject".to_string(), 1)])
    );

    // The declared features: a number per result, and a language per result.
    let body_len: f64 = rows
        .iter()
        .filter(|r| r.feature == "num.body_len")
        .map(|r| r.sum)
        .sum();
    let chars: usize = tickets()
        .iter()
        .map(|t| t["body"].as_str().unwrap().chars().count())
        .sum();
    assert_eq!(body_len, chars as f64);
    let langs: i64 = counts(&rows, "classify", "cat.lang").values().sum();
    assert_eq!(langs, tickets().len() as i64);

    // `weir monitor profile` reads the same counts back.
    let data = fixture.dir.path();
    let out = weir(data)
        .args(fixture.backend.cli_args())
        .args([
            "monitor", "profile", "profiled", "--step", "classify", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let features: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let feature = |name: &str| {
        features
            .iter()
            .find(|f| f["feature"] == name)
            .unwrap_or_else(|| panic!("no {name} in {features:?}"))
    };
    assert_eq!(feature(STATUS)["n"], json!(tickets().len()));
    let mean = feature(INPUT_BYTES)["mean"].as_f64().unwrap();
    assert!((mean - expected as f64 / tickets().len() as f64).abs() < 1e-9);
    assert_eq!(feature(ROUTE)["kind"], "categorical");
    let table = weir(data)
        .args(fixture.backend.cli_args())
        .args(["monitor", "profile", "profiled"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("output.route") && table.contains("/subject 100%"),
        "{table}"
    );
}

#[tokio::test]
async fn a_replay_adds_nothing_to_the_profile() {
    let fixture = Fixture::new().await;
    let path = fixture.workflow("profiled.toml", WORKFLOW);
    let run = fixture.run(&path, tickets()[0].clone()).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let before = rows(fixture.store.as_ref(), "profiled").await;
    assert_eq!(results(&before, "classify"), 1);

    let data = fixture.dir.path();
    let out = weir(data)
        .args(fixture.backend.cli_args())
        .args(["replay", &run.id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(fixture.store.as_ref(), "profiled").await, before);
}

/// Folding the results journaled one by one into the counts changes no count, and two
/// folding at once (two processes, or two hosts of a fleet) fold each result once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folding_keeps_every_count_even_with_two_folding_at_once() {
    let fixture = Fixture::new().await;
    let path = fixture.workflow("profiled.toml", WORKFLOW);
    for ticket in tickets() {
        fixture.run(&path, ticket).await;
    }
    let before = rows(fixture.store.as_ref(), "profiled").await;
    let other = fixture.reopen().await;
    let fold_one_by_one = |store: std::sync::Arc<dyn Store>| async move {
        let mut folded = 0;
        loop {
            match store.monitor().compact_profiles(1).await.unwrap() {
                0 => return folded,
                n => folded += n,
            }
        }
    };
    let (a, b) = tokio::join!(
        fold_one_by_one(fixture.store.clone()),
        fold_one_by_one(other)
    );
    assert_eq!(
        a + b,
        tickets().len(),
        "each result folded once ({a} + {b})"
    );
    let after = rows(fixture.store.as_ref(), "profiled").await;
    assert_eq!(after.len(), before.len());
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(
            (
                &x.version,
                &x.step_id,
                x.window_ms,
                &x.feature,
                &x.bin,
                x.count
            ),
            (
                &y.version,
                &y.step_id,
                y.window_ms,
                &y.feature,
                &y.bin,
                y.count
            )
        );
        assert!(
            (x.sum - y.sum).abs() <= 1e-9 * x.sum.abs().max(1.0),
            "{x:?} {y:?}"
        );
    }
    assert_eq!(
        fixture.store.monitor().compact_profiles(10).await.unwrap(),
        0
    );
}
