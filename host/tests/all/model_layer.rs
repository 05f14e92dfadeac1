//! The model layer inside workflows, against the provider stand-in: the `model` capability
//! with prompt templates, journaled calls with cost, the response cache, fallback aliases,
//! fallback steps, budgets under concurrency, the run deadline and rate limits.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::model::{ModelConfig, Models};
use weir::registry;
use weir::runner::Runner;
use weir::store::{RunRecord, RunStatus, StepStatus, Store};
use weir_provider::{Provider, Reply};

use crate::support::host;
use crate::workflows::Fixture;

pub(crate) const ANSWER: &str = r#"{"label": "billing", "confidence": 0.92}"#;

/// A host configuration with one provider per `(name, url)` and the aliases `smart` (on the
/// first) and `fast` (on the last), priced at $2/M prompt and $8/M generated tokens.
pub(crate) fn config(providers: &[(&str, &str)], extra: &str) -> Models {
    let mut text = String::new();
    for (name, url) in providers {
        text += &format!("[providers.{name}]\nbase-url = \"{url}\"\ntimeout = \"5s\"\n");
    }
    let (first, last) = (providers[0].0, providers[providers.len() - 1].0);
    text += &format!(
        "[models.smart]\nprovider = \"{first}\"\nmodel = \"big\"\ninput-price = 2.0\noutput-price = 8.0\n\
         [models.fast]\nprovider = \"{last}\"\nmodel = \"small\"\ninput-price = 2.0\noutput-price = 8.0\n"
    );
    text += extra;
    Models::new(ModelConfig::parse(&text).unwrap_or_else(|e| panic!("{e:#}\n{text}")))
}

pub(crate) fn runner(f: &Fixture, models: Models) -> Runner {
    Runner::new(host().clone(), f.store.clone(), f.dir.path().join("locks")).with_models(models)
}

/// A triage-like workflow: the model step, with the in-sandbox classifier standing in for it
/// on the given failure kinds. `extra` goes at the top (deadline, tables).
pub(crate) fn triage(name: &str, on: &str, head: &str, tail: &str) -> String {
    format!(
        r#"
name = "{name}"
version = "1.0.0"
output = "classify_llm"
{head}
[prompts]
classify = "classify.j2"
[[steps]]
id = "classify_llm"
plugin = "$PLUGINS/classify_llm.wasm"
grants = {{ models = ["smart"] }}
fallback = {{ step = "classify", on = [{on}] }}
{tail}
[[steps]]
id = "classify"
plugin = "$PLUGINS/classify_ticket.wasm"
"#
    )
}

pub(crate) async fn fixture_with_prompt() -> Fixture {
    let f = Fixture::new().await;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/prompts/classify.j2"),
        f.dir.path().join("classify.j2"),
    )
    .unwrap();
    f
}

pub(crate) async fn run_with(
    runner: &Runner,
    store: &dyn Store,
    path: &Path,
    input: Value,
) -> RunRecord {
    let (loaded, _) = registry::register_file(host(), store, path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (run, _) = runner.submit(&loaded, input, None).await.unwrap();
    runner.execute(&run.id).await.unwrap()
}

pub(crate) fn ticket(n: usize) -> Value {
    json!({"subject": format!("Refund request {n}"), "body": "I was charged twice for my subscription this month"})
}

/// The example's model step: the prompt is rendered by the host, the call is journaled with
/// its tokens and cost, and the same question again is answered from the cache for free.
#[tokio::test]
pub async fn classify_llm() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER));
    let f = fixture_with_prompt().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    let path = f.workflow("wf.toml", &triage("llm-triage", "\"model\"", "", ""));

    let run = run_with(&runner, f.store.as_ref(), &path, ticket(1)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    let output = run.output.unwrap();
    assert_eq!(
        (output["label"].as_str(), output["model"].as_str()),
        (Some("billing"), Some("big"))
    );
    assert_eq!(provider.calls(), 1);
    let sent = &provider.requests()[0];
    let prompt = sent["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("Subject: Refund request 1"), "{prompt}");
    assert!(
        prompt.contains("billing, technical, account, shipping, feedback"),
        "{prompt}"
    );
    assert_eq!(sent["response_format"]["type"], "json_object");

    let calls = f.store.model_calls(&run.id).await.unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (call.outcome.as_str(), call.alias.as_str()),
        ("ok", "smart")
    );
    assert_eq!(call.prompt_id.as_deref(), Some("classify"));
    assert_eq!(call.prompt_hash.as_ref().map(String::len), Some(64));
    let (p, c) = (call.prompt_tokens, call.completion_tokens);
    assert!(p > 20 && c > 0, "usage {p}/{c}");
    // $2/M prompt + $8/M generated, in millionths of a dollar.
    assert_eq!(call.cost_micros, (p * 2 + c * 8) as i64);
    assert_eq!(call.upstream_attempts, 1);
    assert_eq!(
        call.request["policy"]["max_attempts"], 3,
        "the policy is journaled"
    );
    assert_eq!(call.request["policy"]["cache_ttl_s"], 3600);

    // The same ticket again: no upstream request, a cache hit that costs nothing.
    let again = run_with(&runner, f.store.as_ref(), &path, ticket(1)).await;
    assert_eq!(again.status, RunStatus::Succeeded);
    assert_eq!(provider.calls(), 1, "the cache answered");
    let hit = &f.store.model_calls(&again.id).await.unwrap()[0];
    assert_eq!(
        (hit.outcome.as_str(), hit.cost_micros, hit.upstream_attempts),
        ("cached", 0, 0)
    );
    assert_eq!(again.output.unwrap()["cached"], json!(true));
}

/// No provider configured: the model step fails as `model.not_configured` and the fallback
/// step runs in its place; a rule that does not cover the kind lets the run fail.
#[tokio::test]
async fn a_fallback_step_runs_only_on_the_failure_kinds_it_covers() {
    let f = fixture_with_prompt().await;
    let runner = runner(&f, Models::default());
    let path = f.workflow(
        "covered.toml",
        &triage("covered", "\"model.not_configured\"", "", ""),
    );
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(2)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    // The run's output is the stand-in's: the naive Bayes classifier has `scores`.
    assert!(
        run.output.as_ref().unwrap()["scores"].is_object(),
        "{:?}",
        run.output
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    let llm = steps.iter().find(|s| s.step_id == "classify_llm").unwrap();
    assert_eq!(llm.status, StepStatus::Failed);
    let failure = llm.failure.as_ref().unwrap();
    assert_eq!(
        (failure["kind"].as_str(), failure["error"].as_str()),
        (Some("model"), Some("not_configured"))
    );
    let fallback = steps.iter().find(|s| s.step_id == "classify").unwrap();
    assert_eq!(fallback.status, StepStatus::Succeeded);

    let path = f.workflow(
        "uncovered.toml",
        &triage("uncovered", "\"model.budget_exceeded\"", "", ""),
    );
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(2)).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.failure.unwrap()["step"], "classify_llm");

    // When the model step succeeds, its fallback is skipped.
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER));
    let runner = crate::model_layer::runner(&f, config(&[("p", &provider.url())], ""));
    let path = f.workflow("ok.toml", &triage("succeeds", "\"model\"", "", ""));
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(3)).await;
    let steps = f.store.steps(&run.id).await.unwrap();
    let fallback = steps.iter().find(|s| s.step_id == "classify").unwrap();
    assert_eq!(fallback.status, StepStatus::Skipped);
    assert_eq!(
        fallback.skip_reason.as_deref(),
        Some("fallback not needed: `classify_llm` succeeded")
    );
}

/// `smart` is down: after its retries the call falls back to `fast` on another provider.
#[tokio::test]
async fn a_failing_alias_falls_back_to_the_next_in_its_chain() {
    let down = Provider::start().await;
    down.otherwise(Reply::status(503));
    let up = Provider::start().await;
    up.otherwise(Reply::complete(ANSWER));
    let f = fixture_with_prompt().await;
    let models = config(
        &[("down", &down.url()), ("up", &up.url())],
        "[policy]\nmax-attempts = 2\nbackoff = \"10ms\"\nfallback = [\"fast\"]\n",
    );
    let runner = runner(&f, models);
    let path = f.workflow("wf.toml", &triage("alias-fallback", "\"timeout\"", "", ""));
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(4)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    assert_eq!(run.output.unwrap()["model"], "small");
    assert_eq!(down.calls(), 2, "max-attempts bounds the retries");
    assert_eq!(up.calls(), 1);
    let calls = f.store.model_calls(&run.id).await.unwrap();
    let seen: Vec<(&str, &str, u32)> = calls
        .iter()
        .map(|c| (c.alias.as_str(), c.outcome.as_str(), c.upstream_attempts))
        .collect();
    assert_eq!(seen, [("smart", "unavailable", 2), ("fast", "ok", 1)]);
}

/// 100 runs at once against a $0.01 daily workflow budget: reservations are made before the
/// calls, atomically, so the total spend never passes the budget; the runs the budget cannot
/// cover fall back to the in-sandbox classifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_never_spend_past_the_budget() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER));
    let f = fixture_with_prompt().await;
    let models = config(&[("p", &provider.url())], "[policy]\ncache-ttl = \"0s\"\n");
    let runner = runner(&f, models);
    let path = f.workflow(
        "wf.toml",
        &triage(
            "llm-triage",
            "\"model.budget_exceeded\"",
            "[budgets]\nworkflow-daily = 0.01\n",
            "",
        ),
    );
    let (loaded, _) = registry::register_file(host(), f.store.as_ref(), &path)
        .await
        .unwrap();
    let mut runs = tokio::task::JoinSet::new();
    for n in 0..100 {
        let runner = runner.clone();
        let loaded = loaded.clone();
        runs.spawn(async move {
            let (run, _) = runner.submit(&loaded, ticket(n), None).await.unwrap();
            runner.execute(&run.id).await.unwrap()
        });
    }
    let mut spent = 0;
    let mut paid_calls = 0;
    let mut refused = 0;
    while let Some(run) = runs.join_next().await {
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
        for call in f.store.model_calls(&run.id).await.unwrap() {
            spent += call.cost_micros;
            match call.outcome.as_str() {
                "ok" => paid_calls += 1,
                "budget_exceeded" => refused += 1,
                other => panic!("unexpected outcome {other}"),
            }
        }
    }
    let today = &humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10];
    let spend = f
        .store
        .spend(&format!("workflow:llm-triage:{today}"))
        .await
        .unwrap();
    assert!(spent <= 10_000, "spent {spent} µ$ of a 10000 µ$ budget");
    assert_eq!(spend.spent_micros, spent, "the books match the journal");
    assert_eq!(spend.reserved_micros, 0, "every reservation was settled");
    assert_eq!(
        provider.calls(),
        paid_calls,
        "only paid calls reached the provider"
    );
    assert!(
        paid_calls >= 10 && refused >= 50,
        "paid {paid_calls}, refused {refused}"
    );
    assert_eq!(paid_calls + refused, 100);
}

/// The run's deadline flows into the step's context and into the model call: a slow
/// provider is cut at the deadline and no retry starts after it.
#[tokio::test]
async fn the_run_deadline_bounds_steps_and_model_calls() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER).after(Duration::from_secs(3)));
    let f = fixture_with_prompt().await;
    let models = config(&[("p", &provider.url())], "[policy]\nmax-attempts = 5\n");
    let runner = runner(&f, models);
    let text = r#"
name = "deadline"
version = "1.0.0"
output = "ask"
deadline = "1s"
[prompts]
classify = "classify.j2"
[limits]
timeout = "20s"
[[steps]]
id = "probe"
plugin = "$PLUGINS/echo.wasm"
config = { annotate = true }
[[steps]]
id = "ask"
plugin = "$PLUGINS/classify_llm.wasm"
after = ["probe"]
input = 'input'
grants = { models = ["smart"] }
"#;
    let path = f.workflow("wf.toml", text);
    let started = Instant::now();
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(5)).await;
    let elapsed = started.elapsed();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert_eq!(provider.calls(), 1, "no retry started past the deadline");
    let steps = f.store.steps(&run.id).await.unwrap();
    let seen = steps[0].output.as_ref().unwrap()["context"]["deadline_ms"]
        .as_u64()
        .unwrap();
    assert!(
        seen <= 1000,
        "the step saw {seen} ms left, not its 20 s timeout"
    );
    // The call is cut a moment before the step, so the step can report the model's
    // deadline; on a starved machine the step's own cut at the deadline can land first.
    // Either way the failure is the run's deadline, and the call is journaled.
    let failure = steps[1].failure.as_ref().unwrap();
    let by_model = failure["kind"] == "model" && failure["error"] == "deadline_exceeded";
    let by_step = failure["kind"] == "timeout" && failure["run_deadline"] == true;
    assert!(by_model || by_step, "{failure}");
    let mut calls = f.store.model_calls(&run.id).await.unwrap();
    for _ in 0..40 {
        if !calls.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        calls = f.store.model_calls(&run.id).await.unwrap();
    }
    let call = &calls[0];
    assert_eq!(call.outcome, "deadline_exceeded", "{call:?}");
    assert!(
        call.latency_us < 1_200_000,
        "the call was cut at the deadline: {} µs",
        call.latency_us
    );
}

/// The provider's rate limit is shared by every run: a call that would have to wait past its
/// deadline is refused as `rate_limited` without reaching the provider; a step without the
/// grant is denied.
#[tokio::test]
async fn rate_limits_and_grants_are_enforced_by_the_host() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER));
    let f = fixture_with_prompt().await;
    let text = format!(
        "[providers.p]\nbase-url = \"{}\"\nrequests-per-minute = 2\n[models.smart]\nprovider = \"p\"\nmodel = \"m\"\n[policy]\ncache-ttl = \"0s\"\n",
        provider.url()
    );
    let runner = runner(&f, Models::new(ModelConfig::parse(&text).unwrap()));
    let path = f.workflow(
        "wf.toml",
        &triage(
            "limited",
            "\"model.budget_exceeded\"",
            "deadline = \"2s\"",
            "",
        ),
    );
    let mut outcomes = Vec::new();
    for n in 0..3 {
        let run = run_with(&runner, f.store.as_ref(), &path, ticket(n)).await;
        outcomes.push(run.status);
    }
    assert_eq!(
        outcomes,
        [
            RunStatus::Succeeded,
            RunStatus::Succeeded,
            RunStatus::Failed
        ]
    );
    assert_eq!(provider.calls(), 2);

    let ungranted = triage("ungranted", "\"model.not_configured\"", "", "")
        .replace("grants = { models = [\"smart\"] }\n", "");
    let path = f.workflow("ungranted.toml", &ungranted);
    let run = run_with(&runner, f.store.as_ref(), &path, ticket(9)).await;
    assert_eq!(run.status, RunStatus::Failed);
    let failure = &run.failure.unwrap()["failure"];
    assert_eq!(failure["kind"], "denied", "{failure}");
    assert_eq!(failure["capability"], "model", "{failure}");
    assert_eq!(provider.calls(), 2);
}

/// The shipped example through the `weir` binary with a host configuration: the model path
/// answers, the summary shows the calls, tokens and cost against the run budget, and the
/// same ticket again is a cache hit. Without a configuration the fallback classifier answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_uses_the_configured_model_and_degrades_without_one() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(
        r#"{"label": "billing", "confidence": 0.95}"#,
    ));
    let f = Fixture::new().await;
    let path = crate::workflows::triage_workflow(&f);
    let config = f.dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.local]\nbase-url = \"{}\"\n[models.smart]\nprovider = \"local\"\nmodel = \"tiny\"\ninput-price = 1.0\noutput-price = 3.0\n",
            provider.url()
        ),
    )
    .unwrap();
    let ticket =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/tickets/refund.json");
    let data = f.dir.path().join("data");
    let run = |with_config: bool| {
        let args = (
            data.clone(),
            with_config.then(|| config.clone()),
            path.clone(),
            ticket.clone(),
        );
        tokio::task::spawn_blocking(move || weir_run(&args.0, args.1.as_deref(), &args.2, &args.3))
    };
    let (code, stdout, stderr) = run(true).await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let output: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(output["queue"], "billing", "{stdout}");
    assert!(
        stderr.contains("model calls") && stderr.contains("tokens in/out"),
        "{stderr}"
    );
    assert!(stderr.contains("of a $0.010000 run budget"), "{stderr}");
    assert_eq!(provider.calls(), 1);

    let (code, _, stderr) = run(true).await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("1 (1 cached)"), "{stderr}");
    assert_eq!(
        provider.calls(),
        1,
        "the second run was answered from the cache"
    );

    let (code, _, stderr) = run(false).await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("not_configured"), "{stderr}");
    assert_eq!(provider.calls(), 1);
}

/// `weir run` in a data directory, with a host configuration or none: exit code, stdout, stderr.
fn weir_run(
    data: &Path,
    config: Option<&Path>,
    workflow: &Path,
    input: &Path,
) -> (Option<i32>, String, String) {
    let mut cmd = crate::crash::weir(data);
    if let Some(config) = config {
        cmd.arg("--host-config").arg(config);
    }
    let out = cmd
        .arg("run")
        .arg(workflow)
        .arg("--input")
        .arg(input)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An outage: the breaker opens after three failures and every later call fails fast, so
/// twenty runs send three requests upstream, not sixty; each run still finishes through its
/// fallback step.
#[tokio::test]
async fn an_outage_opens_the_breaker_and_runs_fall_back_without_a_retry_storm() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::status(500));
    let f = fixture_with_prompt().await;
    let text = format!(
        "[providers.p]\nbase-url = \"{}\"\nbreaker = {{ failures = 3, cooldown = \"60s\" }}\n[models.smart]\nprovider = \"p\"\nmodel = \"m\"\n[policy]\nmax-attempts = 3\nbackoff = \"5ms\"\n",
        provider.url()
    );
    let runner = runner(&f, Models::new(ModelConfig::parse(&text).unwrap()));
    let path = f.workflow(
        "wf.toml",
        &triage("outage", "\"model.unavailable\"", "", ""),
    );
    for n in 0..20 {
        let run = run_with(&runner, f.store.as_ref(), &path, ticket(n)).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    }
    assert_eq!(provider.calls(), 3, "the breaker bounds upstream calls");
}

/// `weir step run` grants model aliases and prompts from the command line: a plugin author
/// can try a model step alone; without the grant the call is denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_step_can_call_a_granted_model() {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(ANSWER));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.p]\nbase-url = \"{}\"\n[models.smart]\nprovider = \"p\"\nmodel = \"m\"\n",
            provider.url()
        ),
    )
    .unwrap();
    let prompt =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage/prompts/classify.j2");
    let plugin = crate::workflows::plugin_dir().join("classify_llm.wasm");
    let step = move |grant: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.arg("--host-config")
            .arg(&config)
            .args(["step", "run"])
            .arg(&plugin);
        cmd.args([
            "--input",
            r#"{"subject": "Refund", "body": "charged twice"}"#,
            "--json",
        ]);
        if grant {
            cmd.args(["--allow-model", "smart", "--prompt"])
                .arg(format!("classify={}", prompt.display()));
        }
        let out = cmd.output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report)
    };
    let granted = step.clone();
    let (code, report) = tokio::task::spawn_blocking(move || granted(true))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        report["outcome"]["ok"]["payload"]["label"], "billing",
        "{report}"
    );
    assert_eq!(provider.calls(), 1);

    let (code, report) = tokio::task::spawn_blocking(move || step(false))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert_eq!(report["outcome"]["failed"]["kind"], "denied", "{report}");
    assert_eq!(report["denials"][0]["capability"], "model", "{report}");
    assert_eq!(provider.calls(), 1);
}
