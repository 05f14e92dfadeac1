//! Purging runs' payloads on PostgreSQL (see `store/purge.rs` for what stays). Candidate
//! runs are locked with `SKIP LOCKED`, so hosts of a fleet purging at the same moment split
//! the work instead of waiting on each other.

use sqlx::{PgConnection, PgPool};

use crate::store::{now_ms, purge};

pub(super) async fn purge_runs(
    pool: &PgPool,
    workflow: Option<&str>,
    ended_before_ms: i64,
    limit: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    let runs: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, failure FROM runs
         WHERE status IN ('succeeded', 'failed', 'cancelled') AND purged_ms IS NULL
           AND updated_ms < $1 AND ($2::TEXT IS NULL OR workflow = $2)
         ORDER BY updated_ms LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(ended_before_ms)
    .bind(workflow)
    .bind(limit as i64)
    .fetch_all(&mut *tx)
    .await?;
    let now = now_ms();
    for (id, failure) in &runs {
        purge_run(&mut tx, id, failure.clone(), now).await?;
    }
    sqlx::query("DELETE FROM model_cache WHERE expires_ms <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(runs.into_iter().map(|(id, _)| id).collect())
}

async fn purge_run(
    c: &mut PgConnection,
    id: &str,
    failure: Option<String>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE runs SET input = 'null', output = NULL, failure = $2, purged_ms = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(purge::failure_text(failure))
    .bind(now)
    .execute(&mut *c)
    .await?;
    for statement in [
        "UPDATE steps SET output = NULL WHERE run_id = $1",
        "UPDATE attempts SET logs = NULL, tape = NULL WHERE run_id = $1",
        "DELETE FROM state WHERE run_id = $1",
        "UPDATE shadow_results SET detail = '{\"purged\": true}' WHERE run_id = $1",
        "UPDATE reviews SET reason = '(purged)', data = 'null', note = NULL, before_value = NULL, after_value = NULL WHERE run_id = $1",
        "UPDATE model_calls SET request = 'null', response = NULL, error = NULL WHERE run_id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *c).await?;
    }
    // Failures keep their kind; event data keeps its metadata (rewritten row by row).
    for (table, key) in [
        ("steps", "step_id"),
        ("attempts", "step_id || '/' || attempt"),
    ] {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT {key}, failure FROM {table} WHERE run_id = $1 AND failure IS NOT NULL"
        ))
        .bind(id)
        .fetch_all(&mut *c)
        .await?;
        for (row, failure) in rows {
            sqlx::query(&format!(
                "UPDATE {table} SET failure = $3 WHERE run_id = $1 AND {key} = $2"
            ))
            .bind(id)
            .bind(row)
            .bind(purge::failure_text(Some(failure)))
            .execute(&mut *c)
            .await?;
        }
    }
    let events: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, data FROM events WHERE run_id = $1")
            .bind(id)
            .fetch_all(&mut *c)
            .await?;
    for (seq, data) in events {
        let data = purge::event_data(&serde_json::from_str(&data).unwrap_or_default());
        sqlx::query("UPDATE events SET data = $3 WHERE run_id = $1 AND seq = $2")
            .bind(id)
            .bind(seq)
            .bind(data.to_string())
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}
