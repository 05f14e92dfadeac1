//! Drift caught end to end: real runs of the ticket classifier fill one-second windows, a
//! baseline batch becomes the version's baseline, a batch of another kind of ticket opens
//! the route alert, and `weir monitor status`, `check`, `baseline set` and the HTTP API all
//! say so.

use std::time::Duration;

use serde_json::{Value, json};

use crate::crash::weir;
use crate::sidecar::{ready, serve_with};
use crate::workflows::Fixture;

const TOKEN: &str = "monitor-token";

const WORKFLOW: &str = r#"
name = "watched"
version = "1.0.0"

[monitor]
window = "1s"
baseline = 40
min-samples = 20

[[steps]]
id = "classify"
plugin = "$PLUGINS/classify_ticket.wasm"
"#;

fn mixed(n: usize) -> Value {
    let tickets = [
        (
            "Charged twice",
            "My card was charged twice for the invoice, please refund",
        ),
        (
            "App crashes",
            "The dashboard shows a 502 error after the update",
        ),
        (
            "Password reset",
            "I am locked out of my account and the reset email never arrives",
        ),
    ];
    let (subject, body) = tickets[n % tickets.len()];
    json!({"subject": subject, "body": body, "n": n})
}

fn shipping(n: usize) -> Value {
    json!({
        "subject": "Parcel late",
        "body": "Tracking has not updated for a week, the courier lost the package and the delivery never arrived",
        "n": n,
    })
}

/// Waits until the current one-second window has closed.
async fn next_window() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_kind_of_ticket_opens_the_route_alert_and_every_surface_says_so() {
    let fixture = Fixture::new().await;
    let path = fixture.workflow("watched.toml", WORKFLOW);
    let data = fixture.dir.path().to_path_buf();
    let cli = |args: &[&str]| {
        weir(&data)
            .args(fixture.backend.cli_args())
            .args(args)
            .output()
            .unwrap()
    };
    let status = || -> Value {
        let out = cli(&["monitor", "status", "watched", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .remove(0)
    };

    for n in 0..40 {
        fixture.run(&path, mixed(n)).await;
    }
    next_window().await;
    let calm = status();
    assert_eq!(calm["baseline"]["how"], "first", "{calm}");
    assert!(
        calm["baseline"]["span"]["n"].as_i64().unwrap() >= 40,
        "{calm}"
    );
    assert_eq!(
        calm["status"], "insufficient",
        "nothing since the baseline: {calm}"
    );
    assert_eq!(cli(&["monitor", "check", "watched"]).status.code(), Some(0));

    // Two batches of shipping tickets, each in windows of its own: two chunks of 25.
    for batch in 0..2 {
        for n in 0..25 {
            fixture.run(&path, shipping(batch * 25 + n)).await;
        }
        next_window().await;
    }
    let shifted = status();
    assert_eq!(shifted["status"], "alert", "{shifted}");
    let route = shifted["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "output.route")
        .unwrap()
        .clone();
    assert_eq!(
        (&route["alert"], &route["stat"]),
        (&json!(true), &json!("js")),
        "{route}"
    );
    assert!(route["alert_since_ms"].as_i64().is_some());
    let check = cli(&["monitor", "check", "watched"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("classify (1.0.0): alert"));
    let table = cli(&["monitor", "status", "watched"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("output.route") && table.contains("open since"),
        "{table}"
    );

    // The API says the same, and pins a baseline.
    let workflows = fixture.dir.path().join("served");
    std::fs::create_dir_all(&workflows).unwrap();
    let mut cmd = weir(&data);
    cmd.args(fixture.backend.cli_args());
    let (mut server, url) = serve_with(cmd, &workflows, TOKEN);
    let client = reqwest::Client::new();
    ready(&client, &url).await;
    let served: Value = client
        .get(format!("{url}/v1/monitor/watched/drift"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["steps"][0]["status"], "alert", "{served}");
    let refused = client
        .post(format!("{url}/v1/monitor/watched/baselines"))
        .bearer_auth(TOKEN)
        // Whole numbers written as doubles are whole numbers: the range is what is refused.
        .json(&json!({"version": "1.0.0", "from_ms": 10.0, "to_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);

    // Shipping tickets are the new normal: pinned as the baseline, nothing drifts.
    let since = shifted["baseline"]["span"]["to_ms"].as_i64().unwrap();
    let pinned = client
        .post(format!("{url}/v1/monitor/watched/baselines"))
        .bearer_auth(TOKEN)
        .json(&json!({"version": "1.0.0", "from_ms": since, "to_ms": super::now_ms(), "reason": "shipping is ours now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pinned.status(), reqwest::StatusCode::CREATED);
    server.kill().unwrap();
    server.wait().unwrap();
    let after = status();
    assert_eq!(after["baseline"]["how"], "pinned", "{after}");
    assert_eq!(after["baseline"]["span"]["n"], 50, "{after}");
    assert_ne!(after["status"], "alert", "{after}");
    let shown = cli(&["monitor", "baseline", "show", "watched"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("shipping is ours now"));
}
