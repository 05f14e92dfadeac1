//! The review pages: the queue, one review with its forms, and a decision taken from the
//! dashboard. A refused decision (an edit that is not JSON or breaks the step's output
//! schema, a rejection without a reason) is shown on the page and records nothing; a second
//! decision answers 409, naming who decided first.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use weir_artifacts as artifacts;

use crate::serve::{Sidecar, workflow_text};
use crate::ui::{csrf_of, no_redirects};

/// A server (open dashboard, loopback) whose `gated` workflow parks every run for review.
async fn gated() -> Sidecar {
    Sidecar::start(|config, root| {
        config.tokens.clear();
        std::fs::write(
            root.join("workflows/gated.toml"),
            workflow_text(
                "gated",
                &[("ask", artifacts::ECHO, r#"review = { when = "true" }"#)],
                "",
            ),
        )
        .unwrap();
    })
    .await
}

async fn html(s: &Sidecar, path: &str) -> (StatusCode, String) {
    let r = no_redirects()
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn review_state(s: &Sidecar, id: &str) -> Value {
    s.get(&format!("/v1/reviews/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_review_is_decided_from_its_page_and_refusals_record_nothing() {
    let s = gated().await;
    let (status, body) = s
        .submit(
            "?wait=20s",
            json!({"workflow": "gated", "input": {"ticket": "<b>vague</b>"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run_id = body["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["run"]["status"], "awaiting_review");
    let reviews: Value = s
        .get("/v1/reviews")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reviews["reviews"][0]["id"].as_str().unwrap().to_string();

    // The queue lists it, linking the review and its run.
    let (status, queue) = html(&s, "/ui/reviews").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue.contains(&format!(r#"href="/ui/reviews/{id}""#)),
        "{queue}"
    );
    assert!(
        queue.contains(&format!(r#"href="/ui/runs/{run_id}""#)),
        "{queue}"
    );
    assert!(queue.contains("review gate: true"), "{queue}");
    assert_eq!(
        html(&s, "/ui/reviews?status=bogus").await.0,
        StatusCode::BAD_REQUEST
    );

    // Its page: what the step saw and said (escaped), and the three forms.
    let (status, review) = html(&s, &format!("/ui/reviews/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(review.contains("&lt;b&gt;vague&lt;&#x2f;b&gt;"), "{review}");
    assert!(!review.contains("<b>vague"), "guest text is escaped");
    for decision in ["approve", "edit", "reject"] {
        assert!(
            review.contains(&format!(r#"name="decision" value="{decision}""#)),
            "{review}"
        );
    }
    let csrf = csrf_of(&review);
    let post = |form: Vec<(&'static str, &'static str)>| {
        let mut fields = vec![("csrf", csrf.clone())];
        fields.extend(form.into_iter().map(|(k, v)| (k, v.to_string())));
        no_redirects()
            .post(format!("{}/ui/reviews/{id}", s.url))
            .form(&fields)
            .send()
    };

    // Refused decisions show why, keep what was typed, and record nothing.
    for (form, says, kept) in [
        (
            vec![("decision", "edit"), ("output", r#"{"queue": "#)],
            "The edited output is not JSON",
            r#"{&quot;queue&quot;: "#,
        ),
        (
            vec![
                ("decision", "edit"),
                ("output", r#""violate-output-schema""#),
            ],
            "does not match the output schema of step `ask`",
            "violate-output-schema",
        ),
        (
            vec![("decision", "reject"), ("reason", "  ")],
            "A rejection needs a reason.",
            "",
        ),
    ] {
        let r = post(form).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
        assert!(page.contains(kept), "{kept}: {page}");
        assert!(page.contains("Nothing was recorded."), "{page}");
        assert_eq!(review_state(&s, &id).await["status"], "pending");
    }
    let r = post(vec![("decision", "maybe")]).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Approved from the page: on to the run, which goes on and succeeds.
    let r = post(vec![
        ("decision", "approve"),
        ("by", "ana"),
        ("note", "looks right"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("/ui/runs/{run_id}").as_str()
    );
    let decided = review_state(&s, &id).await;
    assert_eq!(
        (&decided["status"], &decided["decided_by"], &decided["note"]),
        (&json!("approved"), &json!("ana"), &json!("looks right"))
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run: Value = s
            .get(&format!("/v1/runs/{run_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["run"]["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not go on: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second decision is refused, naming the first.
    let r = post(vec![("decision", "reject"), ("reason", "too late")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let page = r.text().await.unwrap();
    assert!(page.contains("already decided: approved by ana"), "{page}");
    // The decided review has its audit trail and no forms.
    let (_, review) = html(&s, &format!("/ui/reviews/{id}")).await;
    assert!(review.contains("by ana at"), "{review}");
    assert!(!review.contains(r#"name="decision""#), "{review}");
    let (_, approved) = html(&s, "/ui/reviews?status=approved").await;
    assert!(approved.contains(&id), "{approved}");
    let (_, pending) = html(&s, "/ui/reviews").await;
    assert!(!pending.contains(&id), "{pending}");
}
