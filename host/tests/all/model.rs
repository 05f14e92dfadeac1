//! The model gateway against the provider stand-in over real HTTP: retries only on transient
//! failures, `Retry-After` honoured, no retry past the deadline, a breaker that stops a
//! retry storm and lets a probe through after its cooldown.

use std::time::Duration;

use tokio::time::Instant;
use weir::model::{
    BreakerConfig, BreakerState, ChatRequest, Gateway, Message, ModelError, ProviderConfig,
    RetryPolicy,
};
use weir_provider::{Provider, Reply};

fn gateway(provider: &Provider, retry: RetryPolicy, breaker: BreakerConfig) -> Gateway {
    named("standin", provider, retry, breaker)
}

fn named(name: &str, provider: &Provider, retry: RetryPolicy, breaker: BreakerConfig) -> Gateway {
    Gateway::new(
        ProviderConfig {
            name: name.into(),
            base_url: provider.url(),
            model: "small-1".into(),
            api_key_env: None,
            api_key_file: None,
            timeout: Duration::from_millis(300),
        },
        retry,
        breaker,
    )
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(20),
        max: Duration::from_millis(50),
    }
}

fn ask() -> ChatRequest {
    ChatRequest {
        messages: vec![Message {
            role: "user".into(),
            content: "Which queue?".into(),
        }],
        max_tokens: Some(8),
        ..ChatRequest::default()
    }
}

fn within(d: Duration) -> Instant {
    Instant::now() + d
}

#[tokio::test]
async fn transient_failures_are_retried_and_the_rest_are_not() {
    let provider = Provider::start().await;
    let gw = gateway(&provider, quick_retry(), BreakerConfig::default());
    provider.script([
        Reply::status(503),
        Reply::Malformed,
        Reply::complete("billing"),
    ]);
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    let response = report.outcome.unwrap();
    assert_eq!(response.content, "billing");
    assert_eq!(
        (
            response.usage.prompt_tokens,
            response.usage.completion_tokens
        ),
        (2, 1)
    );
    assert_eq!(report.attempts, 3);
    assert_eq!(provider.requests()[0]["max_tokens"], 8);

    // A timeout is transient too: the second attempt answers.
    provider.script([
        Reply::complete("late").after(Duration::from_secs(2)),
        Reply::complete("ok"),
    ]);
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert_eq!(report.outcome.unwrap().content, "ok");
    assert_eq!(report.attempts, 2);

    // A 4xx other than 429 is never retried.
    provider.script([Reply::status(400), Reply::complete("never")]);
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert!(
        matches!(
            report.outcome,
            Err(ModelError::Rejected { status: 400, .. })
        ),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.attempts, 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_no_retry_starts_past_the_deadline() {
    let provider = Provider::start().await;
    let gw = gateway(&provider, quick_retry(), BreakerConfig::default());
    provider.script([
        Reply::status(429).retry_after(1),
        Reply::complete("after the wait"),
    ]);
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert_eq!(report.outcome.unwrap().content, "after the wait");
    assert!(
        report.elapsed >= Duration::from_secs(1),
        "waited {:?}",
        report.elapsed
    );

    // Retry-After 2 s against a 500 ms budget: the retry is not started.
    let calls = provider.calls();
    provider.script([
        Reply::status(503).retry_after(2),
        Reply::complete("too late"),
    ]);
    let report = gw
        .complete(&ask(), within(Duration::from_millis(500)))
        .await;
    assert!(matches!(
        report.outcome,
        Err(ModelError::Server { status: 503, .. })
    ));
    assert_eq!(report.attempts, 1);
    assert!(
        report.elapsed < Duration::from_millis(500),
        "gave up at once: {:?}",
        report.elapsed
    );
    assert_eq!(provider.calls(), calls + 1);

    // A budget already spent makes no call at all.
    let report = gw.complete(&ask(), Instant::now()).await;
    assert_eq!(report.outcome, Err(ModelError::DeadlineExceeded(None)));
    assert_eq!(report.attempts, 0);
}

#[tokio::test]
async fn an_outage_opens_the_breaker_and_bounds_upstream_calls() {
    let provider = Provider::start().await;
    let breaker = BreakerConfig {
        failure_threshold: 3,
        cooldown: Duration::from_millis(300),
    };
    let metrics = weir::metrics::install_prometheus().unwrap();
    let gw = named("outage", &provider, quick_retry(), breaker);
    provider.otherwise(Reply::status(503));

    // 20 calls during the outage: the first one's 3 attempts open the breaker, the other 19
    // fail fast as `unavailable` without reaching the provider.
    let mut unavailable = 0;
    for _ in 0..20 {
        let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
        if matches!(report.outcome, Err(ModelError::Unavailable { .. })) {
            unavailable += 1;
            assert_eq!(report.attempts, 0);
        }
    }
    assert_eq!(
        provider.calls(),
        3,
        "no retry storm: calls stay at the breaker's threshold"
    );
    assert_eq!(unavailable, 19);
    assert_eq!(gw.breaker().state(), BreakerState::Open);
    let text = metrics.render();
    assert!(
        text.contains("weir_model_breaker_state{provider=\"outage\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("weir_model_retries_total{provider=\"outage\",kind=\"server\"} 2"),
        "{text}"
    );

    // After the cooldown one probe goes through; the provider is back, so it closes.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(gw.breaker().state(), BreakerState::HalfOpen);
    provider.otherwise(Reply::complete("back"));
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert_eq!(report.outcome.unwrap().content, "back");
    assert_eq!(gw.breaker().state(), BreakerState::Closed);

    // A failed probe reopens it at once.
    provider.otherwise(Reply::status(500));
    for _ in 0..3 {
        gw.complete(&ask(), within(Duration::from_secs(5))).await;
    }
    assert_eq!(gw.breaker().state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = provider.calls();
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert!(report.outcome.is_err());
    assert_eq!(provider.calls(), before + 1, "one probe, then fail fast");
    assert_eq!(gw.breaker().state(), BreakerState::Open);
}

/// A 503 that opens the breaker: the retry is never sent, the failure says both what the
/// provider answered and that the breaker refused the retry, and no retry is counted.
#[tokio::test]
async fn a_retry_the_breaker_refuses_is_neither_sent_nor_counted() {
    let provider = Provider::start().await;
    let breaker = BreakerConfig {
        failure_threshold: 1,
        cooldown: Duration::from_secs(30),
    };
    let metrics = weir::metrics::install_prometheus().unwrap();
    let gw = named("refused-retry", &provider, quick_retry(), breaker);
    provider.otherwise(Reply::status(503));
    let report = gw.complete(&ask(), within(Duration::from_secs(5))).await;
    assert_eq!(report.attempts, 1);
    assert_eq!(provider.calls(), 1);
    let error = report.outcome.unwrap_err();
    assert!(matches!(error, ModelError::Unavailable { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "provider refused-retry is unavailable: its circuit breaker is open after repeated failures \
         (this call's last attempt: the provider failed with HTTP 503; its retry was not sent)"
    );
    let text = metrics.render();
    assert!(
        !text.contains("weir_model_retries_total{provider=\"refused-retry\""),
        "{text}"
    );
}

/// A call cut by the deadline while waiting for its answer says so, with a rounded duration.
#[tokio::test]
async fn a_call_cut_by_the_deadline_says_how_long_it_waited() {
    let provider = Provider::start().await;
    let gw = gateway(&provider, quick_retry(), BreakerConfig::default());
    provider.otherwise(Reply::complete("late").after(Duration::from_secs(2)));
    let report = gw
        .complete(&ask(), within(Duration::from_millis(150)))
        .await;
    let error = report.outcome.unwrap_err().to_string();
    assert!(
        error.starts_with("the run's deadline cut the call off after 1")
            && error.ends_with("ms of waiting for the provider's answer"),
        "{error}"
    );
}
