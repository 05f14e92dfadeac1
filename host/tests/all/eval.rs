//! `weir eval` on recorded runs: a changed routing rule is counted case by case, a changed
//! prompt misses the record and fails or (with `--on-miss live`) pays from the evaluation
//! budget alone, and the gate sets the exit code.

use std::process::Command;

use serde_json::json;
use weir::eval::{Experiment, Selection};
use weir::registry;
use weir::replay::{Matching, OnMiss, Options};
use weir::runner::Runner;
use weir::store::RunStatus;
use weir_provider::{Provider, Reply};

use crate::model_layer::{config, runner};
use crate::support::host;
use crate::workflows::Fixture;

/// The routing workflow at `version`: tickets with more than `max_links` links are spam,
/// and a model is asked `question` about each.
fn routing(version: &str, max_links: u32, question: &str) -> String {
    format!(
        r#"
name = "routing"
version = "{version}"
[budgets]
workflow-daily = 5.0
[model]
cache-ttl = "0s"
[[steps]]
id = "route"
plugin = "$PLUGINS/route_ticket.wasm"
config = {{ max_links = {max_links} }}
[[steps]]
id = "ask"
plugin = "$PLUGINS/echo.wasm"
after = ["route"]
grants = {{ models = ["smart"] }}
config = {{ ask = ["{question}"], alias = "smart" }}
"#
    )
}

/// Ten tickets with 0, 1, 2, 3 and 4 links, twice over.
fn ticket(n: usize) -> serde_json::Value {
    let links = "see http://x.example/a ".repeat(n % 5);
    json!({"subject": format!("ticket {n}"), "body": format!("my order is late {links}")})
}

/// `weir` on the fixture's journal.
fn weir_on(f: &Fixture) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .arg("--data-dir")
        .arg(f.dir.path())
        .args(f.backend.cli_args());
    command
}

async fn recorded(f: &Fixture, runner: &Runner) {
    let path = f.workflow("v1.toml", &routing("1.0.0", 3, "summarize"));
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    for n in 0..10 {
        let (run, _) = runner.submit(&loaded, ticket(n), None).await.unwrap();
        let run = runner.execute(&run.id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    }
}

async fn evaluate(f: &Fixture, runner: &Runner, file: &str, on_miss: OnMiss) -> Experiment {
    let candidate = registry::check_file(host(), f.store.as_ref(), &f.dir.path().join(file))
        .await
        .unwrap();
    let options = Options {
        matching: Matching::Request(on_miss),
        workflow: Some(candidate.into()),
        budget_usd: Some(1.0),
        ..Options::default()
    };
    let selection = Selection {
        workflow: "routing".into(),
        limit: 100,
        ..Selection::default()
    };
    weir::eval::evaluate(
        host(),
        &f.store,
        runner.models(),
        &selection,
        &options,
        &[],
        file.into(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_changed_routing_rule_is_counted_case_by_case_with_the_model_answers_from_the_record() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    recorded(&f, &runner).await;
    assert_eq!(provider.calls(), 10);

    // Spam from two links on, not four: the tickets with 2 and 3 links change route.
    f.workflow("v2.toml", &routing("2.0.0", 1, "summarize"));
    let experiment = evaluate(&f, &runner, "v2.toml", OnMiss::Fail).await;
    let s = &experiment.summary;
    assert_eq!((s.cases, s.evaluated, s.errors), (10, 10, 0));
    assert_eq!(
        provider.calls(),
        10,
        "every model answer came from the record"
    );
    assert_eq!((s.route_agreement.hits, s.route_agreement.n), (6, 10));
    assert_eq!(s.output_agreement.hits, 6);
    // By hand: 0 and 1 links stay ok (4 cases), 2 and 3 go ok → spam (4), 4 stay spam (2).
    let routes = &s.confusion["route"];
    assert_eq!(routes["ok"]["ok"], 4);
    assert_eq!(routes["ok"]["spam"], 4);
    assert_eq!(routes["spam"]["spam"], 2);
    assert!(!routes["spam"].contains_key("ok"));
    assert!(s.route_agreement.lo < 0.6 && s.route_agreement.hi > 0.6);
    // The changed cases are exactly those with 2 or 3 links.
    let changed: Vec<&str> = experiment
        .cases
        .iter()
        .filter(|c| !c.output_same)
        .map(|c| c.steps[0].diff[0]["path"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(changed.len(), 4, "{changed:?}");
    // The recorded runs, and nothing else, are in the real journal.
    let runs = f.store.list_runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 10);

    // The same version as the candidate: everything agrees.
    f.workflow("same.toml", &routing("1.0.1", 3, "summarize"));
    let same = evaluate(&f, &runner, "same.toml", OnMiss::Fail).await;
    assert_eq!(same.summary.output_agreement.hits, 10);
    assert_eq!(same.summary.regressions, 0);
}

#[tokio::test]
async fn a_new_prompt_misses_the_record_fails_under_fail_and_pays_the_evaluation_budget_under_live()
{
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    recorded(&f, &runner).await;
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let daily = format!("workflow:routing:{today}");
    let spent_before = f.store.spend(&daily).await.unwrap();

    f.workflow("v3.toml", &routing("3.0.0", 3, "summarize in one line"));
    let failed = evaluate(&f, &runner, "v3.toml", OnMiss::Fail).await;
    assert_eq!(failed.summary.new_failures, 10);
    assert_eq!(failed.summary.errors, 10);
    assert_eq!(failed.summary.calls["missed"], 10);
    assert_eq!(provider.calls(), 10, "a miss under fail sends nothing");
    assert!(
        failed.cases[0].regressions[0].contains("failed"),
        "{:?}",
        failed.cases[0].regressions
    );

    let live = evaluate(&f, &runner, "v3.toml", OnMiss::Live).await;
    assert_eq!(live.summary.new_failures, 0);
    assert_eq!(live.summary.calls["live"], 10);
    assert_eq!(provider.calls(), 20, "each miss was asked for real");
    assert!(live.summary.cost_per_run.candidate_mean > 0.0);
    // The workflow's own daily budget did not pay for the evaluation.
    assert_eq!(f.store.spend(&daily).await.unwrap(), spent_before);
    // A skip leaves every case out.
    let skipped = evaluate(&f, &runner, "v3.toml", OnMiss::Skip).await;
    assert_eq!(
        (skipped.summary.evaluated, skipped.summary.skipped),
        (0, 10)
    );
}

#[tokio::test]
async fn the_gate_sets_the_exit_code_and_the_reports_are_written() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    recorded(&f, &runner).await;
    f.workflow("v2.toml", &routing("2.0.0", 1, "summarize"));
    let weir = |gate: &str| {
        let mut command = weir_on(&f);
        command
            .args(["eval", "--workflow", "routing", "--candidate"])
            .arg(f.dir.path().join("v2.toml"))
            .arg("--gate")
            .arg(gate)
            .arg("--html")
            .arg(f.dir.path().join("report.html"))
            .arg("--out")
            .arg(f.dir.path().join("report.json"))
            .output()
            .unwrap()
    };
    let out = weir("route_agreement.lo >= 0.95 && errors == 0");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("route agreement    60.0% (6/10"), "{text}");
    let html = std::fs::read_to_string(f.dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("<h2>Routes of route") && !html.contains("<script"),
        "{html}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["summary"]["route_agreement"]["hits"], 6);

    assert_eq!(weir("errors == 0").status.code(), Some(0));
    let bad = weir("route_agreement.nope >= 1");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the summary's fields"));

    // Every evaluation was journaled, newest first, and reads back whole.
    let journaled = f
        .store
        .experiments()
        .list_experiments(Some("routing"), 10)
        .await
        .unwrap();
    assert_eq!(journaled.len(), 3, "{journaled:#?}");
    assert_eq!(journaled[2].summary["route_agreement"]["hits"], 6);
    let mut command = weir_on(&f);
    let shown = command
        .args(["experiments", "show", &journaled[2].id])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["summary"]["route_agreement"]["hits"], 6);
    assert_eq!(shown["cases"].as_array().unwrap().len(), 10);

    // `weir replay --candidate` on each recorded run: exactly the four runs whose route
    // changes come out different (exit 1), with the model answered from the record.
    let mut differing = 0;
    for run in f.store.list_runs(&Default::default()).await.unwrap() {
        let mut command = weir_on(&f);
        let out = command
            .args(["replay", &run.id, "--json", "--candidate"])
            .arg(f.dir.path().join("v2.toml"))
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(report["mode"], "candidate");
        assert_eq!(report["calls"]["live"], 0);
        match out.status.code() {
            Some(1) => differing += 1,
            code => assert_eq!(code, Some(0), "{report}"),
        }
    }
    assert_eq!(differing, 4);
}

#[tokio::test]
async fn the_a_a_noise_floor_asks_the_model_again_and_pays_from_the_evaluation_budget() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    recorded(&f, &runner).await;
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let daily = format!("workflow:routing:{today}");
    let spent_before = f.store.spend(&daily).await.unwrap();
    let selection = Selection {
        workflow: "routing".into(),
        limit: 100,
        ..Selection::default()
    };
    let floor = |n| {
        let selection = selection.clone();
        let (store, models) = (f.store.clone(), runner.models().clone());
        async move {
            weir::eval::noise_floor(host(), &store, &models, &selection, n, 1.0, &[])
                .await
                .unwrap()
        }
    };

    // A model that answers the same again: no noise.
    let steady = floor(4).await;
    assert_eq!((steady.runs, steady.live_calls), (4, 4));
    assert_eq!(steady.output_agreement.hits, 4);
    assert_eq!(
        provider.calls(),
        10 + 4,
        "every A/A model call was made again"
    );
    assert!(steady.cost_usd > 0.0);

    // A model that answers otherwise now: every output differs, routes (no model) do not.
    provider.otherwise(Reply::complete("another summary"));
    let noisy = floor(3).await;
    assert_eq!((noisy.runs, noisy.output_agreement.hits), (3, 0));
    assert_eq!(noisy.route_agreement.hits, noisy.route_agreement.n);
    assert_eq!(provider.calls(), 10 + 4 + 3);
    // The workflow's own daily budget paid for none of it.
    assert_eq!(f.store.spend(&daily).await.unwrap(), spent_before);
}
