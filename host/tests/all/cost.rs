//! What model calls cost when the provider misbehaves, by the provider's own count: every
//! upstream attempt reserves budget before it is sent, and one whose answer was cut or does
//! not parse is booked at the provider's usage when the answer carried it, else at its whole
//! reservation; so what the provider served never passes a budget. And identical requests in
//! flight at once on one host make one upstream call.

use std::time::Duration;

use serde_json::json;
use weir::registry;
use weir::store::RunStatus;
use weir_provider::{Provider, Reply};

use crate::model_layer::{ANSWER, config, fixture_with_prompt, runner, ticket, triage};
use crate::support::host;

/// Runs made at once in each failure mode.
const RUNS: usize = 20;
/// The workflow's daily budget in millionths of a dollar ($0.004).
const BUDGET_MICROS: i64 = 4_000;

/// The books after `RUNS` runs at once against a provider that answers `reply` every time:
/// (what the provider served at the test's prices, what the journal booked, the budget's
/// spend and reservations left, refused calls).
async fn books(reply: Reply, policy: &str) -> (i64, i64, i64, i64, usize) {
    let provider = Provider::start().await;
    provider.otherwise(reply);
    let f = fixture_with_prompt().await;
    let models = config(
        &[("p", &provider.url())],
        &format!("[policy]\ncache-ttl = \"0s\"\nbackoff = \"5ms\"\n{policy}"),
    );
    let runner = runner(&f, models);
    let path = f.workflow(
        "wf.toml",
        &triage(
            "costly",
            "\"model\"",
            &format!(
                "[budgets]\nworkflow-daily = {}\n",
                BUDGET_MICROS as f64 / 1e6
            ),
            "",
        ),
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let mut runs = tokio::task::JoinSet::new();
    for n in 0..RUNS {
        let (runner, loaded) = (runner.clone(), loaded.clone());
        runs.spawn(async move {
            let (run, _) = runner.submit(&loaded, ticket(n), None).await.unwrap();
            runner.execute(&run.id).await.unwrap()
        });
    }
    let (mut booked, mut refused) = (0, 0);
    while let Some(run) = runs.join_next().await {
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        for call in f.store.model_calls(&run.id).await.unwrap() {
            booked += call.cost_micros;
            refused += usize::from(call.outcome == "budget_exceeded");
        }
    }
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let spend = f
        .store
        .spend(&format!("workflow:costly:{today}"))
        .await
        .unwrap();
    // The test's prices: $2/M prompt and $8/M generated tokens.
    let (prompt, completion) = provider.usage_served();
    let served = (prompt * 2 + completion * 8) as i64;
    (
        served,
        booked,
        spend.spent_micros,
        spend.reserved_micros,
        refused,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_by_the_providers_count_never_passes_a_budget_in_any_failure_mode() {
    for (mode, reply, policy) in [
        ("truncated", Reply::Truncated, ""),
        ("garbage", Reply::Malformed, ""),
        ("usage without a completion", Reply::NoChoices, ""),
        (
            "too slow",
            Reply::complete(ANSWER).after(Duration::from_secs(2)),
            "timeout = \"200ms\"\n",
        ),
        ("ok", Reply::complete(ANSWER), ""),
    ] {
        let (served, booked, spent, reserved, refused) = books(reply, policy).await;
        assert!(served > 0, "{mode}: the provider served something");
        assert!(
            served <= BUDGET_MICROS,
            "{mode}: the provider served {served} µ$ against a {BUDGET_MICROS} µ$ budget"
        );
        assert_eq!(spent, booked, "{mode}: the books match the journal");
        assert_eq!(reserved, 0, "{mode}: every reservation was settled");
        assert!(
            booked >= served,
            "{mode}: booked {booked} µ$ for what the provider served for {served} µ$"
        );
        assert!(booked <= BUDGET_MICROS, "{mode}: booked {booked} µ$");
        if mode == "usage without a completion" || mode == "ok" {
            assert_eq!(booked, served, "{mode}: the provider's count, exactly");
        }
        if mode != "ok" {
            assert!(refused > 0, "{mode}: the budget ran out and refused calls");
        }
    }

    // Refused answers (an outage) serve nothing and cost nothing.
    let (served, booked, spent, reserved, _) = books(Reply::status(503), "").await;
    assert_eq!((served, booked, spent, reserved), (0, 0, 0, 0));
}

/// Ten identical tickets at once: one upstream call; the other nine wait for it and are
/// answered from the cache it filled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_calls_in_flight_at_once_make_one_upstream_call() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER).after(Duration::from_millis(300)));
    let f = fixture_with_prompt().await;
    let runner = runner(&f, config(&[("p", &provider.url())], ""));
    let path = f.workflow("wf.toml", &triage("flight", "\"model\"", "", ""));
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (runner, loaded) = (runner.clone(), loaded.clone());
        runs.spawn(async move {
            let (run, _) = runner.submit(&loaded, ticket(7), None).await.unwrap();
            runner.execute(&run.id).await.unwrap()
        });
    }
    let mut outcomes = Vec::new();
    while let Some(run) = runs.join_next().await {
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        assert_eq!(run.output.as_ref().unwrap()["label"], json!("billing"));
        for call in f.store.model_calls(&run.id).await.unwrap() {
            outcomes.push(call.outcome);
        }
    }
    assert_eq!(
        provider.calls(),
        1,
        "one upstream call for ten identical ones"
    );
    outcomes.sort();
    let cached = outcomes.iter().filter(|o| *o == "cached").count();
    assert_eq!((outcomes.len(), cached), (10, 9), "{outcomes:?}");

    // Different questions still go upstream each.
    let before = provider.calls();
    let mut runs = tokio::task::JoinSet::new();
    for n in 0..3 {
        let (runner, loaded) = (runner.clone(), loaded.clone());
        runs.spawn(async move {
            let (run, _) = runner.submit(&loaded, ticket(100 + n), None).await.unwrap();
            runner.execute(&run.id).await.unwrap()
        });
    }
    while runs.join_next().await.is_some() {}
    assert_eq!(provider.calls(), before + 3);
}

/// The daily usage rollup is written with each call, so it always equals the calls it sums:
/// an answered call, two cache hits and a failed one (503, then the fallback) land in their
/// step's and model's row with their tokens, cost, latency sum and latency buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_rollup_equals_the_journaled_calls() {
    use weir::store::usage::{LATENCY_BUCKETS, latency_bucket};

    let provider = Provider::start().await;
    let f = fixture_with_prompt().await;
    let runner = runner(
        &f,
        config(
            &[("p", &provider.url())],
            "[policy]\nmax-attempts = 1\nbackoff = \"5ms\"\n",
        ),
    );
    let path = f.workflow("wf.toml", &triage("rolled", "\"model\"", "", ""));
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    provider.script([
        Reply::complete(ANSWER).after(Duration::from_millis(5)),
        Reply::status(503),
    ]);
    let mut calls = Vec::new();
    for input in [ticket(1), ticket(1), ticket(1), ticket(2)] {
        let (run, _) = runner.submit(&loaded, input, None).await.unwrap();
        let run = runner.execute(&run.id).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        calls.extend(f.store.model_calls(&run.id).await.unwrap());
    }
    let outcomes: Vec<&str> = calls.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ok", "cached", "cached", "unavailable"]);

    let today = weir::store::usage::utc_day(calls[0].at_ms);
    let rows = f.store.usage(&today).await.unwrap();
    assert_eq!(rows.len(), 1, "one step, one model: {rows:?}");
    let row = &rows[0];
    assert_eq!(
        (
            row.day.as_str(),
            row.workflow.as_str(),
            row.version.as_str()
        ),
        (today.as_str(), "rolled", "1.0.0")
    );
    assert_eq!(
        (row.step_id.as_str(), row.model.as_str()),
        ("classify_llm", "big")
    );
    assert_eq!((row.calls, row.cached, row.failed), (4, 2, 1));
    let sum = |f: fn(&weir::store::ModelCallRecord) -> i64| calls.iter().map(f).sum::<i64>();
    assert_eq!(row.prompt_tokens, sum(|c| c.prompt_tokens as i64));
    assert_eq!(row.completion_tokens, sum(|c| c.completion_tokens as i64));
    assert_eq!(row.cost_micros, sum(|c| c.cost_micros));
    assert!(row.cost_micros > 0);
    assert_eq!(row.latency_us, sum(|c| c.latency_us as i64));
    let mut buckets = vec![0i64; LATENCY_BUCKETS];
    for call in &calls {
        buckets[latency_bucket(call.latency_us)] += 1;
    }
    assert_eq!(row.latency_buckets, buckets);
    // Nothing before the first day asked for.
    let tomorrow = weir::store::usage::utc_day(calls[0].at_ms + 86_400_000);
    assert!(f.store.usage(&tomorrow).await.unwrap().is_empty());
}
