//! Reviews on PostgreSQL: opening one when a run parks, listing them, and applying a
//! decision (to the review, the step and the run, in one transaction, with its audit record).

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::rows::{append_event, json_col, parse};
use crate::store::{
    Decided, Decision, NewReview, ReviewRecord, ReviewStatus, RunStatus, closed_note, now_ms,
};

const COLUMNS: &str = "id, run_id, step_id, reason, data, status, created_ms, expires_ms, default_action, decided_by, decided_ms, note, before_value, after_value";

pub(super) async fn open(
    c: &mut PgConnection,
    run_id: &str,
    review: &NewReview,
) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO reviews (id, run_id, step_id, reason, data, status, created_ms, expires_ms, default_action)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8)",
    )
    .bind(&id)
    .bind(run_id)
    .bind(&review.step_id)
    .bind(&review.reason)
    .bind(review.data.to_string())
    .bind(now_ms())
    .bind(review.expires_ms)
    .bind(review.default_action.map(|a| a.as_str()))
    .execute(&mut *c)
    .await?;
    append_event(
        c,
        run_id,
        "review_opened",
        Some(&review.step_id),
        json!({"review": id, "reason": review.reason, "expires_ms": review.expires_ms}),
    )
    .await?;
    Ok(id)
}

/// Closes the run's pending reviews when it ends without them (it was cancelled), each
/// with its audit event, so nobody decides a review whose run is gone.
pub(super) async fn close_pending(
    c: &mut PgConnection,
    run_id: &str,
    status: RunStatus,
    failure: Option<&Value>,
) -> anyhow::Result<()> {
    let note = closed_note(status, failure);
    let closed: Vec<(String, String)> = sqlx::query_as(
        "UPDATE reviews SET status = 'closed', decided_by = 'weir', decided_ms = $2, note = $3
         WHERE run_id = $1 AND status = 'pending' RETURNING id, step_id",
    )
    .bind(run_id)
    .bind(now_ms())
    .bind(&note)
    .fetch_all(&mut *c)
    .await?;
    for (review, step) in closed {
        append_event(
            c,
            run_id,
            "review_closed",
            Some(&step),
            json!({"review": review, "note": note}),
        )
        .await?;
    }
    Ok(())
}

fn row(r: &PgRow) -> anyhow::Result<ReviewRecord> {
    Ok(ReviewRecord {
        id: r.try_get(0)?,
        run_id: r.try_get(1)?,
        step_id: r.try_get(2)?,
        reason: r.try_get(3)?,
        data: json_col(r.try_get(4)?).unwrap_or(Value::Null),
        status: parse(r.try_get(5)?)?,
        created_ms: r.try_get(6)?,
        expires_ms: r.try_get(7)?,
        default_action: r.try_get(8)?,
        decided_by: r.try_get(9)?,
        decided_ms: r.try_get(10)?,
        note: r.try_get(11)?,
        before: json_col(r.try_get(12)?),
        after: json_col(r.try_get(13)?),
    })
}

pub(super) async fn get(c: &mut PgConnection, id: &str) -> anyhow::Result<Option<ReviewRecord>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM reviews WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

pub(super) async fn list(
    c: &mut PgConnection,
    status: Option<ReviewStatus>,
    run_id: Option<&str>,
) -> anyhow::Result<Vec<ReviewRecord>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR run_id = $2) ORDER BY id"
    ))
    .bind(status.map(|s| s.as_str()))
    .bind(run_id)
    .fetch_all(c)
    .await?
    .iter()
    .map(row)
    .collect()
}

pub(super) async fn expired(c: &mut PgConnection, now: i64) -> anyhow::Result<Vec<ReviewRecord>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE status = 'pending' AND expires_ms IS NOT NULL AND expires_ms <= $1 ORDER BY expires_ms"
    ))
    .bind(now)
    .fetch_all(c)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// Applies a decision; see [`Store::decide_review`](crate::store::Store::decide_review).
pub(super) async fn decide(
    c: &mut PgConnection,
    id: &str,
    decision: &Decision,
    decided: &Decided,
) -> anyhow::Result<ReviewRecord> {
    let locked = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    let review = locked
        .as_ref()
        .map(row)
        .transpose()?
        .with_context(|| format!("no review {id}"))?;
    if review.status != ReviewStatus::Pending {
        bail!("{}", review.not_pending());
    }
    let step = sqlx::query("SELECT status, output FROM steps WHERE run_id = $1 AND step_id = $2")
        .bind(&review.run_id)
        .bind(&review.step_id)
        .fetch_one(&mut *c)
        .await?;
    let step_status: String = step.try_get(0)?;
    let before = json_col(step.try_get(1)?);
    let (status, after, note) = match decision {
        Decision::Approve if step_status != "succeeded" => bail!(
            "review {id}: step `{}` asked for review without an output, so there is nothing to approve; supply one with `edit`, or `reject`",
            review.step_id
        ),
        Decision::Approve => (ReviewStatus::Approved, before.clone(), decided.note.clone()),
        Decision::Edit(output) => {
            sqlx::query("UPDATE steps SET status = 'succeeded', output = $3, failure = NULL WHERE run_id = $1 AND step_id = $2")
                .bind(&review.run_id)
                .bind(&review.step_id)
                .bind(output.to_string())
                .execute(&mut *c)
                .await?;
            (
                ReviewStatus::Edited,
                Some(output.clone()),
                decided.note.clone(),
            )
        }
        Decision::Reject(reason) => (ReviewStatus::Rejected, before.clone(), Some(reason.clone())),
    };
    let now = now_ms();
    sqlx::query(
        "UPDATE reviews SET status = $2, decided_by = $3, decided_ms = $4, note = $5, before_value = $6, after_value = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(&decided.by)
    .bind(now)
    .bind(&note)
    .bind(before.as_ref().map(Value::to_string))
    .bind(after.as_ref().map(Value::to_string))
    .execute(&mut *c)
    .await?;
    append_event(
        c,
        &review.run_id,
        "review_decided",
        Some(&review.step_id),
        json!({"review": id, "decision": status, "by": decided.by, "note": note, "before": before, "after": after}),
    )
    .await?;
    let still_pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE run_id = $1 AND status = 'pending'")
            .bind(&review.run_id)
            .fetch_one(&mut *c)
            .await?;
    let run_status = decision.run_change(&review.step_id, &decided.by, still_pending);
    if let Some((run_status, failure)) = run_status {
        let changed = sqlx::query(
            // Back to running: what it waited for is no failure.
            "UPDATE runs SET status = $2, failure = CASE WHEN $2 = 'running' THEN NULL ELSE COALESCE($3, failure) END, updated_ms = $4
             WHERE id = $1 AND status = 'awaiting_review'",
        )
        .bind(&review.run_id)
        .bind(run_status.as_str())
        .bind(failure.as_ref().map(Value::to_string))
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if changed == 1 {
            append_event(
                c,
                &review.run_id,
                &format!("run_{run_status}"),
                None,
                failure.unwrap_or(Value::Null),
            )
            .await?;
        }
    }
    get(c, id).await?.context("review vanished")
}
