//! The model provider stand-in (`weir-provider`) behaves as scripted over real HTTP: the
//! model layer's resilience tests rely on each of these failures looking exactly like this.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_provider::{Provider, Reply, tokens};

fn request() -> Value {
    json!({
        "model": "small-1",
        "messages": [
            {"role": "system", "content": "You sort tickets."},
            {"role": "user", "content": "My card was charged twice"}
        ],
        "max_tokens": 16
    })
}

async fn post(provider: &Provider) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", provider.url()))
        .json(&request())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_provider_stand_in_answers_as_scripted() {
    let provider = Provider::start().await;
    provider.script([
        Reply::complete("billing"),
        Reply::status(429).retry_after(2),
        Reply::status(503),
        Reply::Malformed,
        Reply::Truncated,
        Reply::complete("slow").after(Duration::from_millis(150)),
        Reply::Drip("drip drip drip".into(), Duration::from_millis(5)),
    ]);

    // A completion with usage computed from the request (words as tokens).
    let r = post(&provider).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], json!("billing"));
    assert_eq!(body["model"], json!("small-1"));
    let prompt = tokens("You sort tickets.") + tokens("My card was charged twice");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1})
    );

    let r = post(&provider).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(post(&provider).await.status(), 503);

    let r = post(&provider).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.json::<Value>().await.is_err(),
        "malformed JSON does not parse"
    );

    let r = post(&provider).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "a truncated body fails to read");

    let started = Instant::now();
    let r = post(&provider).await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the delay is real"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        json!("slow")
    );

    let started = Instant::now();
    let r = post(&provider).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["usage"]["completion_tokens"], json!(3));
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "the body dripped in"
    );

    // Out of script: an echo; `otherwise` sets a lasting answer (an outage).
    let body: Value = post(&provider).await.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        json!("My card was charged twice")
    );
    provider.otherwise(Reply::status(500));
    assert_eq!(post(&provider).await.status(), 500);
    assert_eq!(post(&provider).await.status(), 500);

    assert_eq!(provider.calls(), 10);
    assert_eq!(provider.requests()[0]["max_tokens"], json!(16));
}
