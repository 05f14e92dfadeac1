//! The review pages: the queue, and one review with what the step saw and said, its audit
//! trail and, while it is pending, the three decisions as plain forms. A decision goes
//! through the same path as `POST /v1/reviews/{id}`; one the runner refuses (an edit that is
//! not JSON or breaks the step's output schema, a rejection without a reason) is shown on
//! the page with what was typed, and nothing is recorded.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::Value;

use super::login::form_field;
use super::pages::{duration, timestamp, unreadable};
use super::render::{error, page, viewer};
use super::session::Viewer;
use crate::runner::ReviewError;
use crate::serve::App;
use crate::store::{Decided, Decision, ReviewRecord, ReviewStatus, now_ms};

/// Who a decision from the dashboard is recorded as when the form names no one.
pub const DASHBOARD_REVIEWER: &str = "dashboard";

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A review as a row of the queue.
fn row(review: &ReviewRecord) -> minijinja::Value {
    let left = review
        .expires_ms
        .filter(|_| review.status == ReviewStatus::Pending)
        .map(|at| match at - now_ms() {
            left if left > 0 => format!("{} left", duration(left)),
            _ => "due now".to_string(),
        });
    context! {
        id => review.id,
        run_id => review.run_id,
        step_id => review.step_id,
        reason => review.reason,
        status => review.status.to_string(),
        opened => timestamp(review.created_ms),
        left => left,
        default_action => review.default_action,
        decided_by => review.decided_by,
        decided => review.decided_ms.map(timestamp),
        note => review.note,
    }
}

/// `/ui/reviews`: pending reviews by default, soonest due first; `?status=` for others.
pub(super) async fn list(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wanted = query.get("status").filter(|s| !s.is_empty());
    let status = match wanted.map(|s| s.as_str()) {
        None => Some(ReviewStatus::Pending),
        Some("all") => None,
        Some(s) => match s.parse::<ReviewStatus>() {
            Ok(status) => Some(status),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Unknown review status: choose one from the list.",
                );
            }
        },
    };
    let mut reviews = match app.store().reviews(status, None).await {
        Ok(reviews) => reviews,
        Err(e) => return unreadable(&e, "reviews"),
    };
    // What is due first comes first; reviews that never time out after, oldest first.
    reviews.sort_by_key(|r| (r.expires_ms.unwrap_or(i64::MAX), r.created_ms));
    page(
        StatusCode::OK,
        "reviews.html",
        context! {
            rows => reviews.iter().map(row).collect::<Vec<_>>(),
            status => status.map_or("all".to_string(), |s| s.to_string()),
            statuses => ReviewStatus::NAMES,
            viewer => viewer(&who),
        },
    )
}

/// What a review page shows beyond the review: what was typed into a refused form.
#[derive(Default)]
struct Attempted {
    problem: Option<String>,
    violations: Vec<String>,
    output: Option<String>,
    reason: Option<String>,
}

async fn review_page(
    app: &App,
    who: &Viewer,
    id: &str,
    status: StatusCode,
    attempted: Attempted,
) -> Response {
    let review = match app.store().get_review(id).await {
        Ok(Some(review)) => review,
        Ok(None) => return error(StatusCode::NOT_FOUND, &format!("There is no review {id}.")),
        Err(e) => return unreadable(&e, "a review"),
    };
    let proposed = review
        .data
        .get("output")
        .or(review.before.as_ref())
        .map(pretty)
        .unwrap_or_else(|| "{}".to_string());
    page(
        status,
        "review.html",
        context! {
            review => row(&review),
            pending => review.status == ReviewStatus::Pending,
            data => pretty(&review.data),
            before => review.before.as_ref().map(pretty),
            after => review.after.as_ref().map(pretty),
            output => attempted.output.unwrap_or(proposed),
            reason => attempted.reason.unwrap_or_default(),
            problem => attempted.problem,
            violations => attempted.violations,
            viewer => viewer(who),
        },
    )
}

/// `/ui/reviews/{id}`.
pub(super) async fn show(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    review_page(&app, &who, &id, StatusCode::OK, Attempted::default()).await
}

/// `POST /ui/reviews/{id}`: `decision` = `approve`, `edit` (with `output`) or `reject`
/// (with `reason`), and optional `by` and `note`. On success, on to the run.
pub(super) async fn decide(
    State(app): State<App>,
    Extension(who): Extension<Viewer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let field = |name: &str| form_field(&body, name).filter(|v| !v.trim().is_empty());
    let by = field("by").unwrap_or_else(|| DASHBOARD_REVIEWER.to_string());
    let decided = Decided {
        by: by.trim().to_string(),
        note: field("note"),
    };
    let refused = |problem: String, attempted: Attempted| {
        let attempted = Attempted {
            problem: Some(problem),
            ..attempted
        };
        review_page(&app, &who, &id, StatusCode::UNPROCESSABLE_ENTITY, attempted)
    };
    let decision = match field("decision").as_deref() {
        Some("approve") => Decision::Approve,
        Some("edit") => {
            let text = field("output").unwrap_or_default();
            match serde_json::from_str::<Value>(&text) {
                Ok(output) => Decision::Edit(output),
                Err(e) => {
                    let attempted = Attempted {
                        output: Some(text),
                        ..Attempted::default()
                    };
                    return refused(format!("The edited output is not JSON: {e}."), attempted)
                        .await;
                }
            }
        }
        Some("reject") => match field("reason") {
            Some(reason) => Decision::Reject(reason),
            None => {
                return refused("A rejection needs a reason.".into(), Attempted::default()).await;
            }
        },
        _ => {
            return error(StatusCode::BAD_REQUEST, "Choose approve, edit or reject.");
        }
    };
    let edited = match &decision {
        Decision::Edit(output) => Some(pretty(output)),
        _ => None,
    };
    match app.decide_review(&id, decision, decided).await {
        Ok(review) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(to) = HeaderValue::from_str(&format!("/ui/runs/{}", review.run_id)) {
                response.headers_mut().insert(header::LOCATION, to);
            }
            response
        }
        Err(ReviewError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, &format!("There is no review {id}."))
        }
        Err(ReviewError::Conflict(message)) => error(StatusCode::CONFLICT, &message),
        Err(ReviewError::InvalidOutput { step, violations }) => {
            let attempted = Attempted {
                violations,
                output: edited,
                ..Attempted::default()
            };
            let problem =
                format!("The edited output does not match the output schema of step `{step}`:");
            refused(problem, attempted).await
        }
        Err(ReviewError::Store(e)) => unreadable(&e, "a review"),
    }
}
