//! Shadow results on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use crate::store::shadows::{COLUMNS, ShadowJournal, ShadowResult};

#[async_trait]
impl ShadowJournal for PostgresStore {
    async fn record_shadow(&self, r: &ShadowResult) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO shadow_results ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&r.id)
        .bind(&r.run_id)
        .bind(&r.workflow)
        .bind(&r.version)
        .bind(&r.step_id)
        .bind(&r.candidate)
        .bind(&r.outcome)
        .bind(r.detail.to_string())
        .bind(r.cost_micros)
        .bind(r.at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn shadow_results(
        &self,
        workflow: Option<&str>,
        run_id: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ShadowResult>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM shadow_results WHERE ($1::TEXT IS NULL OR workflow = $1) AND ($2::TEXT IS NULL OR run_id = $2)
             ORDER BY at_ms DESC, id DESC LIMIT $3"
        ))
        .bind(workflow)
        .bind(run_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let detail: String = r.try_get("detail")?;
                Ok(ShadowResult {
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| anyhow::anyhow!("shadow result {id}: {e}"))?,
                    id,
                    run_id: r.try_get("run_id")?,
                    workflow: r.try_get("workflow")?,
                    version: r.try_get("version")?,
                    step_id: r.try_get("step_id")?,
                    candidate: r.try_get("candidate")?,
                    outcome: r.try_get("outcome")?,
                    cost_micros: r.try_get("cost_micros")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect()
    }

    async fn shadow_spend(
        &self,
        workflow: &str,
        step_id: &str,
        since_ms: i64,
    ) -> anyhow::Result<i64> {
        let spent: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_micros), 0)::BIGINT FROM shadow_results WHERE workflow = $1 AND step_id = $2 AND at_ms >= $3",
        )
        .bind(workflow)
        .bind(step_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(spent)
    }
}
