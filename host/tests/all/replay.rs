//! Strict replay of recorded runs: every model call, HTTP exchange, clock read and random
//! byte is answered from the record, nothing reaches the provider or the network, and a
//! record that no longer matches is reported at the position where it first differs.

use serde_json::{Value, json};
use weir::replay::{AttemptTape, ReplayReport};
use weir::runner::Runner;
use weir::store::RunStatus;
use weir_provider::{Provider, Reply};

use crate::model_layer::{config, runner};
use crate::steps::LoopbackServer;
use crate::support::host;
use crate::workflows::Fixture;

/// A run that reads the network, the clock, random bytes and a model twice.
fn recorded_workflow(server: &LoopbackServer) -> String {
    format!(
        r#"
name = "recorded"
version = "1.0.0"
output = "ask"
[[steps]]
id = "fetch"
plugin = "$PLUGINS/fetch_url.wasm"
grants = {{ hosts = ["{addr}"] }}
[[steps]]
id = "clock"
plugin = "$PLUGINS/echo.wasm"
config = {{ clock = true }}
[[steps]]
id = "ask"
plugin = "$PLUGINS/echo.wasm"
after = ["fetch", "clock"]
input = '{{"fetched": steps.fetch.output.body, "now": steps.clock.output.now_ns}}'
grants = {{ models = ["smart"] }}
config = {{ ask = ["first question", "second question"], alias = "smart" }}
"#,
        addr = server.addr
    )
}

async fn recorded_run(
    f: &Fixture,
    runner: &Runner,
    server: &LoopbackServer,
) -> weir::store::RunRecord {
    let path = f.workflow("recorded.toml", &recorded_workflow(server));
    let input = json!({"url": format!("http://{}/doc", server.addr)});
    crate::model_layer::run_with(runner, f.store.as_ref(), &path, input).await
}

/// A recorded run of [`recorded_workflow`], with the stand-ins it talked to.
struct Recording {
    provider: Provider,
    server: LoopbackServer,
    f: Fixture,
    runner: Runner,
    run: weir::store::RunRecord,
}

async fn record() -> Recording {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete("an answer"));
    let server = LoopbackServer::start().await;
    let f = Fixture::new().await;
    let runner = runner(&f, config(&[("stand_in", &provider.url())], ""));
    let run = recorded_run(&f, &runner, &server).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    assert_eq!((provider.calls(), server.hits()), (2, 1));
    Recording {
        provider,
        server,
        f,
        runner,
        run,
    }
}

async fn replay(f: &Fixture, runner: &Runner, run_id: &str) -> ReplayReport {
    weir::replay::strict(host(), &f.store, runner.models(), run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn replayed_output<'r>(report: &'r ReplayReport, step: &str) -> &'r Value {
    &report
        .steps
        .iter()
        .find(|s| s.step == step)
        .unwrap()
        .replayed["output"]
}

#[tokio::test]
async fn a_strict_replay_answers_every_call_from_the_record_and_sends_nothing() {
    let Recording {
        provider,
        server,
        f,
        runner,
        run,
    } = record().await;

    // The tapes hold what each attempt read.
    let attempts = f.store.attempts(&run.id).await.unwrap();
    let tape = |step: &str| -> AttemptTape {
        let a = attempts.iter().find(|a| a.step_id == step).unwrap();
        serde_json::from_value(a.tape.clone().expect("a tape")).unwrap()
    };
    let fetched = tape("fetch");
    assert_eq!(fetched.http.len(), 1);
    assert_eq!(fetched.http[0].request.method, "GET");
    assert_eq!(fetched.http[0].response.as_ref().unwrap().status, 401);
    assert!(fetched.http[0].response.as_ref().unwrap().complete);
    let clock = tape("clock");
    assert!(!clock.wall_ns.is_empty() && clock.monotonic_ns.len() >= 2);
    assert_eq!(clock.random_bytes().len(), 8);
    assert!(clock.seed.is_some());

    // Time passes, and the world changes: the replay must not notice.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    provider.otherwise(Reply::complete("another answer"));
    let report = replay(&f, &runner, &run.id).await;
    assert!(
        report.identical,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert!(report.nondeterminism.is_empty());
    assert_eq!(report.replayed_status, RunStatus::Succeeded);
    assert_eq!(
        (provider.calls(), server.hits()),
        (2, 1),
        "nothing reached the provider or the network"
    );
    // Byte-equal outputs, the clock step's wall clock, monotonic reads, random number and seeded hash included.
    assert_eq!(
        report.output.as_ref().unwrap().to_string(),
        run.output.as_ref().unwrap().to_string()
    );
    let steps = f.store.steps(&run.id).await.unwrap();
    let recorded_clock = steps.iter().find(|s| s.step_id == "clock").unwrap();
    let replayed_clock = replayed_output(&report, "clock");
    for key in ["now_ns", "between_ns", "random", "hash"] {
        assert_eq!(
            replayed_clock[key],
            recorded_clock.output.as_ref().unwrap()[key],
            "{key}"
        );
    }
    let now: u128 = replayed_clock["now_ns"].as_str().unwrap().parse().unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert!(
        wall - now >= 20_000_000,
        "the replay read the recorded time, not the clock"
    );
    assert_eq!(
        replayed_output(&report, "ask")["answers"],
        json!(["an answer", "an answer"])
    );
    // The replay left nothing in the real journal: no run, no model call.
    let runs = f.store.list_runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(f.store.model_calls(&run.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn reordered_model_calls_are_nondeterminism_at_the_first_position_that_differs() {
    let Recording {
        provider,
        f,
        runner,
        run,
        ..
    } = record().await;

    // The record now says the second question was asked first.
    let id = &run.id;
    f.backend.tamper(
        f.dir.path(),
        &format!(
            "UPDATE model_calls SET seq = seq + 10 WHERE run_id = '{id}' AND step_id = 'ask';
             UPDATE model_calls SET seq = 13 - seq WHERE run_id = '{id}' AND step_id = 'ask';"
        ),
    );
    let report = replay(&f, &runner, id).await;
    assert!(!report.identical);
    assert_eq!(provider.calls(), 2, "a differing call is refused, not sent");
    let first = &report.nondeterminism[0];
    assert_eq!(
        (first.step.as_str(), first.attempt, first.position.as_str()),
        ("ask", 1, "model call 1")
    );
    assert_eq!(first.expected["messages"][0]["content"], "second question");
    assert_eq!(first.got["messages"][0]["content"], "first question");
    assert_eq!(
        first.diff,
        json!([{"op": "replace", "path": "/messages/0/content", "value": "first question"}])
    );
    // The step that went another way is listed with its result, the others are the same.
    let ask = report.steps.iter().find(|s| s.step == "ask").unwrap();
    assert!(!ask.same);
    assert!(
        report
            .steps
            .iter()
            .filter(|s| s.step != "ask")
            .all(|s| s.same)
    );
    assert_eq!(report.replayed_status, RunStatus::Failed);
}

#[tokio::test]
async fn a_changed_http_answer_on_record_is_nondeterminism_and_a_running_run_is_refused() {
    let server = LoopbackServer::start().await;
    let f = Fixture::new().await;
    let path = f.workflow(
        "fetch.toml",
        &format!(
            "name = \"fetch-only\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"fetch\"\nplugin = \"$PLUGINS/fetch_url.wasm\"\ngrants = {{ hosts = [\"{}\"] }}\n",
            server.addr
        ),
    );
    let input = json!({"url": format!("http://{}/doc", server.addr)});
    let run = f.run(&path, input).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);

    // The record of the request now names another URL: the replay's request differs at
    // its first (and only) position, and nothing is sent.
    let attempts = f.store.attempts(&run.id).await.unwrap();
    let mut tape: AttemptTape = serde_json::from_value(attempts[0].tape.clone().unwrap()).unwrap();
    tape.http[0].request.url = "http://elsewhere.example/doc".into();
    let tape = serde_json::to_string(&tape).unwrap().replace('\'', "''");
    let id = &run.id;
    let sql = match f.backend.url {
        Some(_) => format!("UPDATE attempts SET tape = '{tape}' WHERE run_id = '{id}'"),
        // SQLite keeps an attempt's result in its event's record.
        None => format!(
            "UPDATE events SET record = json_set(record, '$.tape', json('{tape}')) WHERE kind = 'step_succeeded' AND step_id = 'fetch'"
        ),
    };
    f.backend.tamper(f.dir.path(), &sql);
    let report = weir::replay::strict(host(), &f.store, f.runner.models(), id)
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);
    let first = &report.nondeterminism[0];
    assert_eq!(first.position, "http request 1");
    assert_eq!(first.expected["url"], "http://elsewhere.example/doc");
    assert_eq!(first.got["url"], format!("http://{}/doc", server.addr));

    let error = weir::replay::strict(host(), &f.store, f.runner.models(), "no-such-run")
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "no run no-such-run");
}

#[tokio::test]
async fn a_rerun_from_a_step_keeps_the_results_before_it_and_calls_nothing_for_them() {
    // The provider stays up: the rerun's model step asks it again.
    let Recording {
        provider: _provider,
        server,
        f,
        runner,
        run,
    } = record().await;
    let recorded = f.store.steps(&run.id).await.unwrap();

    let rerun = weir::replay::rerun_from_step(host(), &runner, &run.id, "ask", None)
        .await
        .unwrap();
    assert_eq!(rerun.status, RunStatus::Succeeded, "{:?}", rerun.failure);
    assert_ne!(rerun.id, run.id);
    // The new run names its source, as the journal reads it back; the source names none.
    let read = f.store.get_run(&rerun.id).await.unwrap().unwrap();
    assert_eq!(read.source_run.as_deref(), Some(run.id.as_str()));
    let source = f.store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(source.source_run, None);
    // The fetch and the clock were not run again; only the model step was.
    assert_eq!(server.hits(), 1);
    let calls = f.store.model_calls(&rerun.id).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.step_id == "ask"));
    let steps = f.store.steps(&rerun.id).await.unwrap();
    for id in ["fetch", "clock"] {
        let before = recorded.iter().find(|s| s.step_id == id).unwrap();
        let after = steps.iter().find(|s| s.step_id == id).unwrap();
        assert_eq!(after.output, before.output, "{id} kept its recorded result");
    }
    let attempts = f.store.attempts(&rerun.id).await.unwrap();
    let fetch = attempts.iter().find(|a| a.step_id == "fetch").unwrap();
    assert_eq!(fetch.logs.as_ref().unwrap()["restored_from"], json!(run.id));

    // Another input for the step: the step gets it.
    let input = json!({"fetched": "corrected", "now": "0"});
    let rerun = weir::replay::rerun_from_step(host(), &runner, &run.id, "ask", Some(input.clone()))
        .await
        .unwrap();
    assert_eq!(rerun.output.unwrap()["input"], input);
    let error = weir::replay::rerun_from_step(host(), &runner, &run.id, "nope", None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("has no such step (its steps: fetch, clock, ask)"),
        "{error}"
    );
}
