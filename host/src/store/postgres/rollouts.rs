//! Rollouts on PostgreSQL: the row, its revision check and its event log, in one
//! transaction. The partial unique index on active rollouts settles two hosts starting one
//! for the same workflow at once.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::{PostgresStore, finish};
use crate::rollout::{NewEvent, Rollout, RolloutEvent};
use crate::store::rollouts::{RolloutJournal, from_doc, to_doc};

#[async_trait]
impl RolloutJournal for PostgresStore {
    async fn create_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<Result<(), String>> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let active: Option<String> =
                sqlx::query_scalar("SELECT id FROM rollouts WHERE workflow = $1 AND active")
                    .bind(&rollout.workflow)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = active {
                return Ok(Err(id));
            }
            let inserted = sqlx::query(
                "INSERT INTO rollouts (id, workflow, active, revision, doc, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&rollout.id)
            .bind(&rollout.workflow)
            .bind(!rollout.state.is_final())
            .bind(rollout.revision)
            .bind(to_doc(rollout)?)
            .bind(rollout.created_ms)
            .bind(rollout.updated_ms)
            .execute(&mut *tx)
            .await;
            if let Err(e) = inserted {
                // Another host started one between the check and the insert: the partial
                // unique index refused this one. Name the winner.
                if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
                    return Ok(Err(format!(
                        "started a moment ago for {}",
                        rollout.workflow
                    )));
                }
                return Err(e.into());
            }
            append(&mut tx, rollout, &events).await?;
            Ok(Ok(()))
        }
        .await;
        finish(tx, result).await
    }

    async fn update_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let changed = sqlx::query(
                "UPDATE rollouts SET active = $2, revision = $3, doc = $4, updated_ms = $5
                 WHERE id = $1 AND revision = $3 - 1",
            )
            .bind(&rollout.id)
            .bind(!rollout.state.is_final())
            .bind(rollout.revision)
            .bind(to_doc(rollout)?)
            .bind(rollout.updated_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Ok(false);
            }
            append(&mut tx, rollout, &events).await?;
            Ok(true)
        }
        .await;
        finish(tx, result).await
    }

    async fn get_rollout(&self, id: &str) -> anyhow::Result<Option<Rollout>> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM rollouts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    async fn list_rollouts(
        &self,
        workflow: Option<&str>,
        active: bool,
    ) -> anyhow::Result<Vec<Rollout>> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM rollouts WHERE ($1::TEXT IS NULL OR workflow = $1) AND (NOT $2 OR active)
             ORDER BY created_ms DESC, id DESC",
        )
        .bind(workflow)
        .bind(active)
        .fetch_all(&self.pool)
        .await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn latest_rollout(&self, workflow: &str) -> anyhow::Result<Option<Rollout>> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT doc FROM rollouts WHERE workflow = $1 ORDER BY created_ms DESC, id DESC LIMIT 1",
        )
        .bind(workflow)
        .fetch_optional(&self.pool)
        .await?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    async fn rollout_events(&self, id: &str) -> anyhow::Result<Vec<RolloutEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, kind, data FROM rollout_events WHERE rollout_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                Ok(RolloutEvent {
                    seq,
                    at_ms: r.try_get("at_ms")?,
                    kind: r.try_get("kind")?,
                    data: serde_json::from_str(&r.try_get::<String, _>("data")?)
                        .map_err(|e| anyhow::anyhow!("rollout {id} event {seq}: {e}"))?,
                })
            })
            .collect()
    }
}

async fn append(
    c: &mut PgConnection,
    rollout: &Rollout,
    events: &[NewEvent],
) -> anyhow::Result<()> {
    let next: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM rollout_events WHERE rollout_id = $1",
    )
    .bind(&rollout.id)
    .fetch_one(&mut *c)
    .await?;
    for (i, event) in events.iter().enumerate() {
        sqlx::query(
            "INSERT INTO rollout_events (rollout_id, seq, at_ms, kind, data) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&rollout.id)
        .bind(next + i as i64)
        .bind(rollout.updated_ms)
        .bind(event.kind)
        .bind(event.data.to_string())
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
