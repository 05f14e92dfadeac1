//! Reviews in SQLite: opening one when a run parks, listing them, and applying a decision
//! (to the review, the step, and the run, in one transaction, with its audit record).

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::fold::Change;
use super::now_ms;
use super::rows::{append_change, append_event, json_col, parse_status};
use crate::store::{
    Decided, Decision, NewReview, ReviewRecord, ReviewStatus, RunStatus, StepStatus, closed_note,
};

const COLUMNS: &str = "id, run_id, step_id, reason, data, status, created_ms, expires_ms, default_action, decided_by, decided_ms, note, before_value, after_value";

pub(super) fn open(c: &Connection, run_id: &str, review: &NewReview) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    c.prepare_cached(
        "INSERT INTO reviews (id, run_id, step_id, reason, data, status, created_ms, expires_ms, default_action)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        run_id,
        review.step_id,
        review.reason,
        review.data.to_string(),
        now_ms(),
        review.expires_ms,
        review.default_action.map(|a| a.as_str()),
    ])?;
    append_event(
        c,
        run_id,
        "review_opened",
        Some(&review.step_id),
        json!({"review": id, "reason": review.reason, "expires_ms": review.expires_ms}),
    )?;
    Ok(id)
}

/// Closes the run's pending reviews when it ends without them (it was cancelled), each
/// with its audit event, so nobody decides a review whose run is gone.
pub(super) fn close_pending(
    c: &Connection,
    run_id: &str,
    status: RunStatus,
    failure: Option<&Value>,
) -> anyhow::Result<()> {
    let note = closed_note(status, failure);
    let closed: Vec<(String, String)> = c
        .prepare_cached(
            "UPDATE reviews SET status = 'closed', decided_by = 'weir', decided_ms = ?2, note = ?3
             WHERE run_id = ?1 AND status = 'pending' RETURNING id, step_id",
        )?
        .query_map(params![run_id, now_ms(), note], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (review, step) in closed {
        append_event(
            c,
            run_id,
            "review_closed",
            Some(&step),
            json!({"review": review, "note": note}),
        )?;
    }
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewRecord> {
    Ok(ReviewRecord {
        id: r.get(0)?,
        run_id: r.get(1)?,
        step_id: r.get(2)?,
        reason: r.get(3)?,
        data: json_col(r.get(4)?).unwrap_or(Value::Null),
        status: parse_status(r.get(5)?)?,
        created_ms: r.get(6)?,
        expires_ms: r.get(7)?,
        default_action: r.get(8)?,
        decided_by: r.get(9)?,
        decided_ms: r.get(10)?,
        note: r.get(11)?,
        before: json_col(r.get(12)?),
        after: json_col(r.get(13)?),
    })
}

pub(super) fn get(c: &Connection, id: &str) -> anyhow::Result<Option<ReviewRecord>> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1"))?
            .query_row([id], row)
            .optional()?,
    )
}

pub(super) fn list(
    c: &Connection,
    status: Option<ReviewStatus>,
    run_id: Option<&str>,
) -> anyhow::Result<Vec<ReviewRecord>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR run_id = ?2) ORDER BY id"
    ))?
    .query_map(params![status.map(|s| s.as_str()), run_id], row)?
    .collect::<Result<_, _>>()?)
}

pub(super) fn expired(c: &Connection, now: i64) -> anyhow::Result<Vec<ReviewRecord>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE status = 'pending' AND expires_ms IS NOT NULL AND expires_ms <= ?1 ORDER BY expires_ms"
    ))?
    .query_map([now], row)?
    .collect::<Result<_, _>>()?)
}

/// Applies a decision; see [`Store::decide_review`](crate::store::Store::decide_review).
pub(super) fn decide(
    c: &Connection,
    id: &str,
    decision: &Decision,
    decided: &Decided,
) -> anyhow::Result<ReviewRecord> {
    let review = get(c, id)?.with_context(|| format!("no review {id}"))?;
    if review.status != ReviewStatus::Pending {
        bail!("{}", review.not_pending());
    }
    let (steps, _) = super::fold::fold(c, &review.run_id, false)?;
    let step = steps
        .into_iter()
        .find(|s| s.step_id == review.step_id)
        .with_context(|| {
            format!(
                "review {id}: run {} has no step `{}`",
                review.run_id, review.step_id
            )
        })?;
    let (step_status, before) = (step.status, step.output);
    let (status, after, note) = match decision {
        Decision::Approve if step_status != StepStatus::Succeeded => bail!(
            "review {id}: step `{}` asked for review without an output, so there is nothing to approve; supply one with `edit`, or `reject`",
            review.step_id
        ),
        Decision::Approve => (ReviewStatus::Approved, before.clone(), decided.note.clone()),
        Decision::Edit(output) => (
            ReviewStatus::Edited,
            Some(output.clone()),
            decided.note.clone(),
        ),
        Decision::Reject(reason) => (ReviewStatus::Rejected, before.clone(), Some(reason.clone())),
    };
    let now = now_ms();
    c.prepare_cached(
        "UPDATE reviews SET status = ?2, decided_by = ?3, decided_ms = ?4, note = ?5, before_value = ?6, after_value = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.as_str(),
        decided.by,
        now,
        note,
        before.as_ref().map(Value::to_string),
        after.as_ref().map(Value::to_string),
    ])?;
    // An edit changes the step: its event carries the new output (see `fold`).
    let edit = match decision {
        Decision::Edit(output) => Some(Change {
            output: Some(output.clone()),
            ..Change::default()
        }),
        _ => None,
    };
    append_change(
        c,
        &review.run_id,
        "review_decided",
        Some(&review.step_id),
        json!({"review": id, "decision": status, "by": decided.by, "note": note, "before": before, "after": after}),
        None,
        edit.as_ref(),
    )?;
    let still_pending: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM reviews WHERE run_id = ?1 AND status = 'pending'")?
        .query_row([&review.run_id], |r| r.get(0))?;
    let run_status = decision.run_change(&review.step_id, &decided.by, still_pending);
    if let Some((run_status, failure)) = run_status {
        let changed = c
            .prepare_cached(
                // Back to running: what it waited for is no failure.
                "UPDATE runs SET status = ?2, failure = CASE WHEN ?2 = 'running' THEN NULL ELSE COALESCE(?3, failure) END, updated_ms = ?4
                 WHERE id = ?1 AND status = 'awaiting_review'",
            )?
            .execute(params![
                review.run_id,
                run_status.as_str(),
                failure.as_ref().map(Value::to_string),
                now
            ])?;
        if changed == 1 {
            append_event(
                c,
                &review.run_id,
                &format!("run_{run_status}"),
                None,
                failure.unwrap_or(Value::Null),
            )?;
        }
    }
    get(c, id)?.context("review vanished")
}
