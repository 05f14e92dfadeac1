//! Shadow steps on live runs, on the journal of either backend. A shadow on the same plugin
//! is identical and asks the provider nothing, since its model call is answered from the
//! live attempt's record. A candidate that routes otherwise is `route_changed`. A
//! panicking candidate is an `error`, and the run, its output and its cost stay as they
//! were. The sample takes exactly the runs its hash chooses. A spent budget skips.

use std::time::Duration;

use serde_json::json;
use weir::registry;
use weir::runner::Runner;
use weir::store::{RunRecord, RunStatus, ShadowResult};
use weir_provider::{Provider, Reply};

use crate::model_layer::{config, runner};
use crate::support::host;
use crate::workflows::Fixture;

/// A ticket router, then a step that asks the model; `shadow` goes on the asking step, or on
/// the router when `on_route`.
fn shadowed(name: &str, shadow: &str, on_route: bool) -> String {
    let (route, ask) = if on_route { (shadow, "") } else { ("", shadow) };
    format!(
        r#"
name = "{name}"
version = "1.0.0"
[model]
cache-ttl = "0s"
[[steps]]
id = "route"
plugin = "$PLUGINS/route_ticket.wasm"
{route}
[[steps]]
id = "ask"
plugin = "$PLUGINS/echo.wasm"
after = ["route"]
grants = {{ models = ["smart"] }}
config = {{ ask = ["summarize"], alias = "smart" }}
{ask}
"#
    )
}

async fn runs(f: &Fixture, runner: &Runner, file: &str, text: &str, n: usize) -> Vec<RunRecord> {
    let path = f.workflow(file, text);
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ended = Vec::new();
    for i in 0..n {
        let ticket = json!({"subject": format!("ticket {i}"), "body": "my order is late"});
        let (run, _) = runner.submit(&loaded, ticket, None).await.unwrap();
        let run = runner.execute(&run.id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        ended.push(run);
    }
    ended
}

/// The shadow results of `workflow`, once there are `n` of them.
async fn results(f: &Fixture, workflow: &str, n: usize) -> Vec<ShadowResult> {
    for _ in 0..600 {
        let found = f
            .store
            .shadows()
            .shadow_results(Some(workflow), None, 1000)
            .await
            .unwrap();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} shadow results of {workflow} after 30 s");
}

#[tokio::test]
async fn a_shadow_is_compared_and_leaves_the_live_run_its_output_and_its_cost_alone() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));

    // The same plugin as its shadow: identical, its model call answered from the record.
    let same = r#"shadow = { candidate = "$PLUGINS/echo.wasm", sample = 1.0 }"#;
    let live = runs(&f, &runner, "same.toml", &shadowed("same", same, false), 3).await;
    let found = results(&f, "same", 3).await;
    assert!(found.iter().all(|r| r.outcome == "identical"), "{found:#?}");
    assert_eq!(
        provider.calls(),
        3,
        "the shadows asked the provider nothing"
    );
    for run in &live {
        let calls = f.store.model_calls(&run.id).await.unwrap();
        assert_eq!(calls.len(), 1, "the live run keeps its one call");
        assert_eq!(
            found.iter().filter(|r| r.run_id == run.id).count(),
            1,
            "one result per run"
        );
    }
    assert!(found.iter().all(|r| r.cost_micros == 0));

    // A router that answers otherwise: route_changed, with both routes in the detail.
    let other = r#"shadow = { candidate = "$PLUGINS/echo.wasm", sample = 1.0 }"#;
    runs(
        &f,
        &runner,
        "route.toml",
        &shadowed("route", other, true),
        2,
    )
    .await;
    let found = results(&f, "route", 2).await;
    assert!(
        found.iter().all(|r| r.outcome == "route_changed"),
        "{found:#?}"
    );
    assert_eq!(found[0].detail["live"]["route"], "ok");

    // A panicking candidate: an error, and the run is as it would have been without it.
    let panics = r#"shadow = { candidate = "$PLUGINS/hostile_panic.wasm", sample = 1.0 }"#;
    let live = runs(
        &f,
        &runner,
        "panic.toml",
        &shadowed("panic", panics, false),
        2,
    )
    .await;
    let found = results(&f, "panic", 2).await;
    assert!(found.iter().all(|r| r.outcome == "error"), "{found:#?}");
    for run in &live {
        let again = f.store.get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(again.status, RunStatus::Succeeded);
        assert_eq!(again.output, run.output);
        assert_eq!(again.output.as_ref().unwrap()["answers"][0], "a summary");
        let cost: i64 = f
            .store
            .model_calls(&run.id)
            .await
            .unwrap()
            .iter()
            .map(|c| c.cost_micros)
            .sum();
        assert!(cost > 0);
    }
    assert_eq!(provider.calls(), 3 + 2 + 2, "only the live runs called");
}

#[tokio::test]
async fn the_sample_takes_the_runs_its_hash_chooses_and_a_spent_budget_skips() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("a summary"));
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));

    let half = r#"shadow = { candidate = "$PLUGINS/echo.wasm", sample = 0.5 }"#;
    let live = runs(&f, &runner, "half.toml", &shadowed("half", half, false), 12).await;
    let chosen: Vec<&str> = live
        .iter()
        .filter(|r| weir::rollout::assign::position(&r.id, "ask") < 0.5)
        .map(|r| r.id.as_str())
        .collect();
    let found = results(&f, "half", chosen.len()).await;
    // Give a stray shadow time to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found_now = f
        .store
        .shadows()
        .shadow_results(Some("half"), None, 1000)
        .await
        .unwrap();
    assert_eq!(found_now.len(), found.len());
    let mut shadowed_runs: Vec<&str> = found.iter().map(|r| r.run_id.as_str()).collect();
    shadowed_runs.sort_unstable();
    let mut expected = chosen.clone();
    expected.sort_unstable();
    assert_eq!(shadowed_runs, expected);

    // A shadow whose candidate asks something new would pay live; with no budget it skips.
    let broke =
        r#"shadow = { candidate = "$PLUGINS/echo.wasm", sample = 1.0, budget-usd-day = 0.0 }"#;
    runs(
        &f,
        &runner,
        "broke.toml",
        &shadowed("broke", broke, false),
        1,
    )
    .await;
    let found = results(&f, "broke", 1).await;
    assert_eq!(found[0].outcome, "skipped", "{found:#?}");
    assert!(found[0].detail["why"].as_str().unwrap().contains("budget"));

    // Purging the live run's payloads purges what its shadows saw and said.
    let purged = f
        .store
        .purge_payloads(Some("half"), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(purged.len(), 12);
    let after = f
        .store
        .shadows()
        .shadow_results(Some("half"), None, 1000)
        .await
        .unwrap();
    assert!(
        after.iter().all(|r| r.detail == json!({"purged": true})),
        "{after:#?}"
    );
}

#[tokio::test]
async fn a_bad_shadow_is_named_where_it_is_written() {
    let f = Fixture::new().await;
    let text = shadowed(
        "bad",
        r#"shadow = { candidate = "$PLUGINS/missing.wasm", sample = 1.5, on-miss = "maybe" }"#,
        false,
    );
    let path = f.workflow("bad.toml", &text);
    let Err(registry::RegistryError::Invalid(report)) =
        registry::register_file(host(), f.store.as_ref(), &path).await
    else {
        panic!("a bad shadow registered");
    };
    let report = report.to_string();
    for expected in ["`shadow.sample` is 1.5", "`shadow.on-miss` is \"maybe\""] {
        assert!(report.contains(expected), "{expected} in {report}");
    }
}
