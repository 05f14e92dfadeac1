//! The costs page reads the daily usage rollup: per workflow version, step and model, and
//! per day, with each number's unit; `days` and `workflow` filter it.

use reqwest::StatusCode;
use serde_json::json;
use weir::store::{Durability, ModelCallRecord, SqliteStore, Store};

use crate::serve::Sidecar;

/// A journaled model call of `workflow`'s `step` (model `big`, 100 tokens in, 10 out).
pub(crate) fn call(
    workflow: &str,
    step: &str,
    outcome: &str,
    latency_us: u64,
    at_ms: i64,
    seq: u32,
) -> ModelCallRecord {
    ModelCallRecord {
        run_id: format!("run-{seq}"),
        step_id: step.into(),
        attempt: 1,
        seq,
        workflow: workflow.into(),
        version: "1.0.0".into(),
        alias: "smart".into(),
        provider: Some("p".into()),
        model: Some("big".into()),
        prompt_id: None,
        prompt_hash: None,
        request: json!({}),
        response: None,
        outcome: outcome.into(),
        error: None,
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_micros: if outcome == "ok" { 280 } else { 0 },
        latency_us,
        upstream_attempts: u32::from(outcome != "cached"),
        at_ms,
    }
}

#[tokio::test]
async fn the_costs_page_sums_the_rollup_by_use_and_by_day() {
    let s = Sidecar::start(|config, _| config.tokens.clear()).await;
    let store = SqliteStore::open(&s.path("weir.db"), Durability::Normal).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let calls = [
        call("triage", "classify", "ok", 3_000, now, 1),
        call("triage", "classify", "cached", 100, now, 2),
        call("triage", "classify", "ok", 5_000, now, 3),
        call("triage", "classify", "unavailable", 40_000, now, 4),
        call("triage", "classify", "ok", 3_000, now - 3 * 86_400_000, 5),
        call("other", "sum", "ok", 1_000, now, 6),
    ];
    for call in calls {
        store.record_model_call(call, None).await.unwrap();
    }
    let page = |path: &'static str| {
        let s = &s;
        async move {
            let r = s
                .client
                .get(format!("{}{path}", s.url))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };

    // Today only: triage's classify step made 4 calls, 1 cached, 1 failed, $0.000560.
    let (status, html) = page("/ui/costs?days=1&workflow=triage").await;
    assert_eq!(status, StatusCode::OK);
    let row = html
        .lines()
        .find(|l| l.contains(r#"<tr class="use">"#))
        .unwrap_or_else(|| panic!("{html}"));
    for cell in [
        "<td>triage@1.0.0</td><td>classify</td><td>big</td><td>4</td><td>25 %</td><td>1</td>",
        "<td>400</td><td>40</td><td>$0.000560</td>",
        // Latencies 0.1, 3, 5 and 40 ms: the median is under 4 ms, the 95th under 64 ms.
        "<td>12.0 ms</td><td>&lt; 4 ms</td><td>&lt; 64 ms</td>",
    ] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }
    assert!(!html.contains("other@1.0.0"), "filtered by workflow");
    assert_eq!(html.matches(r#"<tr class="day">"#).count(), 1);

    // A week: the older call joins, in its own day and in the step's sum.
    let (_, html) = page("/ui/costs").await;
    assert!(html.contains("other@1.0.0"));
    assert_eq!(html.matches(r#"<tr class="day">"#).count(), 2, "{html}");
    assert!(html.contains("<td>5</td><td>20 %</td>"), "{html}");

    let (status, _) = page("/ui/costs?days=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = page("/ui/costs?days=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
