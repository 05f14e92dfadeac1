//! Workflows: golden errors for bad files, execution through the journal, pinning,
//! idempotency, skips and routes, schemas, state, and the example triage workflow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use weir::registry::{self, RegistryError};
use weir::runner::{Runner, SubmitError};
use weir::store::{Durability, RunStatus, SqliteStore, StepStatus, Store};
use weir_artifacts as artifacts;

use crate::backend::TestStore;
use crate::support::host;

mod idempotency;
mod leases;
mod one_commit;
mod protection;
pub mod triage;

pub use triage::{copy_prompts, shipped_triage, triage_workflow};

/// The directory holding the built plugin components.
pub fn plugin_dir() -> PathBuf {
    Path::new(artifacts::ECHO).parent().unwrap().to_path_buf()
}

/// The files in the lock directory under `dir`.
pub fn lock_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A fresh data directory with a store and a runner.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub runner: Runner,
    /// The journal's backend (SQLite here, or a PostgreSQL schema of this test's own).
    pub backend: TestStore,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = TestStore::new();
        let store = backend.open(dir.path()).await;
        let runner = Runner::new(host().clone(), store.clone(), dir.path().join("locks"));
        Self {
            store,
            runner,
            backend,
            dir,
        }
    }

    /// The same journal opened afresh: what a restarted process sees.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        self.backend.open(self.dir.path()).await
    }

    /// Writes a workflow file (with `$PLUGINS` replaced by the plugin directory) and returns its path.
    pub fn workflow(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            text.replace("$PLUGINS", &plugin_dir().display().to_string()),
        )
        .unwrap();
        path
    }

    /// Registers `path`, submits `input` and drives the run to its end.
    pub async fn run(&self, path: &Path, input: Value) -> weir::store::RunRecord {
        let (loaded, _) = registry::register_file(host(), self.store.as_ref(), path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (run, created) = self.runner.submit(&loaded, input, None).await.unwrap();
        assert!(created);
        self.runner.execute(&run.id).await.unwrap()
    }

    /// The first pending review of run `run_id` (the run must have parked).
    pub async fn pending_review(&self, run_id: &str) -> weir::store::ReviewRecord {
        self.store
            .reviews(Some(weir::store::ReviewStatus::Pending), Some(run_id))
            .await
            .unwrap()
            .remove(0)
    }
}

fn render_golden(case: &Path, store: &dyn Store) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = case.join("workflow.toml");
    let rendered = match runtime.block_on(registry::check_file(host(), store, &path)) {
        Ok(_) => "valid\n".to_string(),
        Err(RegistryError::Invalid(d)) => format!("{d}\n"),
        Err(RegistryError::Store(e)) => format!("store error: {e:#}\n"),
    };
    rendered
        .replace(&case.canonicalize().unwrap().display().to_string(), "$DIR")
        .replace(&case.display().to_string(), "$DIR")
}

/// Every folder of `tests/workflows` holds a bad `workflow.toml` and the exact `expected.txt`
/// report; `WEIR_BLESS=1` rewrites the expectations.
#[test]
fn bad_workflow_files_get_exact_errors() {
    let fixture_dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&fixture_dir.path().join("weir.db"), Durability::Normal).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10);
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let actual = render_golden(&case, &store);
        let expected_path = case.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {}\nexpected:\n{expected}\nactual:\n{actual}",
                case.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with WEIR_BLESS=1 to accept the new output)",
        failures.join("\n")
    );
}

const TWO_STEPS: &str = r#"
name = "pair"
version = "1.0.0"

[[steps]]
id = "first"
plugin = "$PLUGINS/echo.wasm"

[[steps]]
id = "second"
plugin = "$PLUGINS/echo.wasm"
after = ["first"]
input = '{"wrapped": steps.first.output, "n": input.n}'
"#;

#[tokio::test]
async fn a_run_executes_its_steps_in_order_and_journals_everything() {
    let f = Fixture::new().await;
    let run = f
        .run(&f.workflow("pair.toml", TWO_STEPS), json!({"n": 7}))
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!({"wrapped": {"n": 7}, "n": 7})));
    assert_eq!(
        lock_files(f.dir.path()),
        ["runs.lock"],
        "runs share one lock file"
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.step_id.as_str(), s.status, s.attempts))
            .collect::<Vec<_>>(),
        vec![
            ("first", StepStatus::Succeeded, 1),
            ("second", StepStatus::Succeeded, 1)
        ]
    );
    let attempts = f.store.attempts(&run.id).await.unwrap();
    assert!(attempts.iter().all(|a| a.latency_us.is_some()
        && a.memory_peak.unwrap() > 0
        && a.input_digest.len() == 64));
    let kinds: Vec<String> = f
        .store
        .events(&run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "run_created",
            "run_running",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "run_succeeded"
        ]
    );
}

/// JSON numbers pass through the journal, the steps and back exactly: an integer beyond 64 bits
/// and a decimal with more digits than a double holds come out as they went in.
#[tokio::test]
async fn numbers_stay_exact_end_to_end() {
    let f = Fixture::new().await;
    let text =
        r#"{"n": 123456789012345678901234567890, "x": 0.1000000000000000055511151231257827}"#;
    let input: Value = serde_json::from_str(text).unwrap();
    let run = f.run(&f.workflow("pair.toml", TWO_STEPS), input).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let expected = r#"{"n":123456789012345678901234567890,"wrapped":{"n":123456789012345678901234567890,"x":0.1000000000000000055511151231257827}}"#;
    assert_eq!(serde_json::to_string(&run.output).unwrap(), expected);
    let reread = f.reopen().await.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(serde_json::to_string(&reread.output).unwrap(), expected);
    assert_eq!(
        serde_json::to_string(&reread.input).unwrap(),
        text.replace(' ', "")
    );
}

#[tokio::test]
async fn independent_steps_run_concurrently() {
    let f = Fixture::new().await;
    let text = r#"
name = "fan"
version = "1.0.0"
output = '{"a": steps.a.output, "b": steps.b.output}'
[[steps]]
id = "a"
plugin = "$PLUGINS/echo.wasm"
config = { sleep_ms = 400 }
[[steps]]
id = "b"
plugin = "$PLUGINS/echo.wasm"
config = { sleep_ms = 400 }
"#;
    let run = f.run(&f.workflow("fan.toml", text), json!(1)).await;
    assert_eq!(run.output, Some(json!({"a": 1, "b": 1})));
    let events = f.store.events(&run.id).await.unwrap();
    let position = |kind: &str, step: &str| {
        events
            .iter()
            .position(|e| e.kind == kind && e.step_id.as_deref() == Some(step))
            .unwrap()
    };
    assert!(
        position("step_started", "b") < position("step_succeeded", "a"),
        "b waited for a: {events:?}"
    );
    assert!(
        position("step_started", "a") < position("step_succeeded", "b"),
        "a waited for b: {events:?}"
    );
}

#[tokio::test]
async fn conditions_and_routes_skip_steps_with_a_reason() {
    let f = Fixture::new().await;
    let text = r#"
name = "branches"
version = "1.0.0"
output = '{"fast": steps.fast.status, "slow": steps.slow.status, "after_slow": steps.after_slow.status}'
[[steps]]
id = "pick"
plugin = "$PLUGINS/echo.wasm"
config = { route = "fast", confidence = 0.4 }
[[steps]]
id = "fast"
plugin = "$PLUGINS/echo.wasm"
on-route = { pick = ["fast"] }
[[steps]]
id = "slow"
plugin = "$PLUGINS/echo.wasm"
on-route = { pick = ["slow", "careful"] }
[[steps]]
id = "after_slow"
plugin = "$PLUGINS/echo.wasm"
after = ["slow"]
[[steps]]
id = "gated"
plugin = "$PLUGINS/echo.wasm"
after = ["pick"]
when = "steps.pick.confidence > 0.5"
"#;
    let run = f.run(&f.workflow("branches.toml", text), json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        run.output,
        Some(json!({"fast": "succeeded", "slow": "skipped", "after_slow": "skipped"}))
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    let reason = |id: &str| {
        steps
            .iter()
            .find(|s| s.step_id == id)
            .unwrap()
            .skip_reason
            .clone()
    };
    assert_eq!(
        reason("slow").as_deref(),
        Some("route not taken: `pick` chose route \"fast\", this step runs on slow or careful")
    );
    assert_eq!(
        reason("after_slow").as_deref(),
        Some("dependency `slow` was skipped")
    );
    assert_eq!(
        reason("gated").as_deref(),
        Some("condition is false: steps.pick.confidence > 0.5")
    );
    assert_eq!(
        f.store.attempts(&run.id).await.unwrap().len(),
        2,
        "skipped steps cost nothing"
    );
}

#[tokio::test]
async fn schemas_are_enforced_at_every_edge() {
    let f = Fixture::new().await;
    let text = r#"
name = "schemas"
version = "1.0.0"
[input-schema]
type = "object"
required = ["text"]
properties = { text = { type = "string" }, n = { type = "integer", minimum = 0 } }
[[steps]]
id = "only"
plugin = "$PLUGINS/echo.wasm"
input = "input.text"
"#;
    let path = f.workflow("schemas.toml", text);
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let err = f
        .runner
        .submit(&loaded, json!({"n": -1}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::InvalidInput { .. }));
    assert_eq!(
        err.to_string(),
        "the input does not match the input schema of schemas@1.0.0:\n  - at /: \"text\" is a required property\n  - at /n: -1 is less than the minimum of 0"
    );
    assert!(
        f.store
            .list_runs(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "a refused input creates no run"
    );

    // The echo plugin declares an output schema that rejects one sentinel value.
    let run = f.run(&path, json!({"text": "violate-output-schema"})).await;
    assert_eq!(run.status, RunStatus::Failed);
    let failure = &run.failure.unwrap()["failure"];
    assert_eq!(failure["kind"], json!("invalid_output"));
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid output: output does not match the step's output schema: at /: "),
        "{failure}"
    );

    // The classifier declares an input schema.
    let text = r#"
name = "step-schema"
version = "1.0.0"
[[steps]]
id = "classify"
plugin = "$PLUGINS/classify_ticket.wasm"
"#;
    let run = f
        .run(&f.workflow("step-schema.toml", text), json!({"title": "x"}))
        .await;
    let failure = &run.failure.unwrap()["failure"];
    assert_eq!(failure["kind"], json!("invalid_input"));
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("input does not match the step's input schema: at /:"),
        "{failure}"
    );
}

#[tokio::test]
async fn runs_are_pinned_to_the_exact_plugin_bytes() {
    let f = Fixture::new().await;
    let plugin = f.dir.path().join("step.wasm");
    std::fs::copy(artifacts::ECHO, &plugin).unwrap();
    let text =
        "name = \"pinned\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"s\"\nplugin = \"step.wasm\"\n";
    let path = f.workflow("pinned.toml", text);
    let run = f.run(&path, json!({"subject": "  a@b.io  "})).await;
    assert_eq!(
        run.output,
        Some(json!({"subject": "  a@b.io  "})),
        "echo ran"
    );

    // A run submitted now is pinned to echo, even if it only starts after a repin.
    let (echo_loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let (waiting, _) = f
        .runner
        .submit(&echo_loaded, json!({"subject": "  c@d.io  "}), None)
        .await
        .unwrap();

    // Same definition, other bytes: the version is repinned for new runs.
    std::fs::copy(artifacts::CLEAN_TEXT, &plugin).unwrap();
    let (_, registered) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    assert_eq!(registered, weir::store::Registered::Repinned);
    let run = f.run(&path, json!({"subject": "  a@b.io  "})).await;
    assert_eq!(
        run.output,
        Some(json!({"subject": "[EMAIL]"})),
        "clean-text ran"
    );

    // Another definition under the same version: refused, definitions are immutable.
    std::fs::write(&path, text.replace("id = \"s\"", "id = \"t\"")).unwrap();
    let err = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("pinned@1.0.0 is already registered with a different definition"),
        "{err}"
    );

    // The file gone, the run submitted before the repin still runs echo, from the store.
    std::fs::remove_file(&plugin).unwrap();
    let run = f.runner.execute(&waiting.id).await.unwrap();
    assert_eq!(
        run.output,
        Some(json!({"subject": "  c@d.io  "})),
        "the earlier run kept echo"
    );
    let steps = f.store.steps(&waiting.id).await.unwrap();
    assert_eq!(steps[0].plugin_digest, echo_loaded.pins["s"]);

    // A new version lives beside the old one; the latest is picked by default.
    std::fs::copy(artifacts::ECHO, &plugin).unwrap();
    std::fs::write(&path, text.replace("1.0.0", "1.1.0")).unwrap();
    f.run(&path, json!({"subject": "x"})).await;
    let old = registry::load_registered(host(), f.store.as_ref(), "pinned", Some("1.0.0"))
        .await
        .unwrap();
    assert_ne!(old.pins["s"], echo_loaded.pins["s"], "1.0.0 stays repinned");
    let latest = registry::load_registered(host(), f.store.as_ref(), "pinned", None)
        .await
        .unwrap();
    assert_eq!(latest.workflow.version.to_string(), "1.1.0");
}

#[tokio::test]
async fn state_set_by_one_step_is_read_by_the_next() {
    let f = Fixture::new().await;
    let text = r#"
name = "stateful"
version = "1.0.0"
[[steps]]
id = "write"
plugin = "$PLUGINS/echo.wasm"
config = { remember = "ticket" }
[[steps]]
id = "read"
plugin = "$PLUGINS/echo.wasm"
after = ["write"]
input = '"later"'
config = { recall = "ticket" }
"#;
    let run = f
        .run(&f.workflow("stateful.toml", text), json!({"id": 42}))
        .await;
    assert_eq!(
        run.output,
        Some(json!({"input": "later", "recalled": {"id": 42}}))
    );
    assert_eq!(
        f.store
            .state_get(&run.id, "ticket")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"id\":42}")
    );
}

#[tokio::test]
async fn a_failing_step_fails_the_run_and_needs_review_parks_it() {
    let f = Fixture::new().await;
    let text = |kind: &str| {
        format!(
            "name = \"fails\"\nversion = \"1.0.{}\"\n[[steps]]\nid = \"s\"\nplugin = \"$PLUGINS/echo.wasm\"\nconfig = {{ fail = \"{kind}\" }}\n[[steps]]\nid = \"t\"\nplugin = \"$PLUGINS/echo.wasm\"\nafter = [\"s\"]\n",
            kind.len()
        )
    };
    let run = f
        .run(&f.workflow("fatal.toml", &text("fatal")), json!(1))
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.failure.as_ref().unwrap()["step"], json!("s"));
    assert_eq!(
        run.failure.as_ref().unwrap()["failure"]["kind"],
        json!("fatal")
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    assert_eq!(
        steps[1].status,
        StepStatus::Pending,
        "nothing runs after a failure"
    );
    let run = f
        .run(&f.workflow("review.toml", &text("needs-review")), json!(1))
        .await;
    assert_eq!(run.status, RunStatus::AwaitingReview);
}
