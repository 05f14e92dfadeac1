//! The example triage workflow as shipped: its sample tickets, each classified, closed,
//! parked for review or refused as the README says.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use weir::registry;
use weir::store::RunStatus;

use super::Fixture;
use crate::support::host;

/// The example triage workflow, exactly as shipped, pointed at the test build of the plugins
/// (the Rust ones from `weir-artifacts`, the C one built like `weir build` does).
pub fn shipped_triage(plugins: &str) -> String {
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/workflow.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let fingerprint = "../../plugins/fingerprint-c/build/fingerprint-c.wasm";
    assert!(text.contains(fingerprint), "the example runs a C step");
    text.replace(fingerprint, &crate::polyglot::component("fingerprint-c"))
        .replace("../../plugins/target/wasm32-wasip2/release", plugins)
}

/// [`shipped_triage`] written into the fixture, with the prompt templates beside it.
pub fn triage_workflow(f: &Fixture) -> PathBuf {
    copy_prompts(&f.dir.path().join("prompts"));
    f.workflow("triage.toml", &shipped_triage("$PLUGINS"))
}

/// Puts the example's prompt templates in `dir`, where a copy of its workflow looks for them.
pub fn copy_prompts(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/prompts");
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(shipped).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
}

fn ticket(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ticket-triage/tickets")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_triage_example_classifies_the_sample_tickets() {
    let f = Fixture::new().await;
    let path = triage_workflow(&f);
    let cases = [
        (
            "refund.json",
            json!({"queue": "billing", "status": "routed"}),
        ),
        (
            "outage.json",
            json!({"queue": "technical", "status": "routed", "priority": "high"}),
        ),
        (
            "parcel.json",
            json!({"queue": "shipping", "status": "routed"}),
        ),
        ("vague.json", json!({"status": "needs_review"})),
        ("spam.json", json!({"status": "closed", "reason": "spam"})),
        ("empty.json", json!({"status": "closed", "reason": "empty"})),
    ];
    for (name, expected) in cases {
        let run = f.run(&path, ticket(name)).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{name}: {run:?}");
        let output = run.output.unwrap();
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&output[key], value, "{name}: {output}");
        }
        // Tickets that were not closed early carry the C step's dedupe key.
        if output["status"] != "closed" {
            let key = output["fingerprint"].as_str().unwrap_or_default();
            assert!(
                key.len() == 16 && key.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: {output}"
            );
        }
    }
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let err = f
        .runner
        .submit(&loaded, ticket("wrong-shape.json"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at /subject: 42 is not of type \"string\""),
        "{err}"
    );
    assert!(err.contains("\"body\" is a required property"), "{err}");
}
