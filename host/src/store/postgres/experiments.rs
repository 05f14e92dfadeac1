//! Experiments on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use crate::store::experiments::{ExperimentJournal, ExperimentRecord};

#[async_trait]
impl ExperimentJournal for PostgresStore {
    async fn save_experiment(
        &self,
        r: &ExperimentRecord,
        experiment: &serde_json::Value,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO experiments (id, workflow, candidate, created_ms, summary, experiment)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.id)
        .bind(&r.workflow)
        .bind(&r.candidate)
        .bind(r.created_ms)
        .bind(r.summary.to_string())
        .bind(experiment.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_experiments(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ExperimentRecord>> {
        let rows = sqlx::query(
            "SELECT id, workflow, candidate, created_ms, summary FROM experiments
             WHERE ($1::TEXT IS NULL OR workflow = $1) ORDER BY created_ms DESC, id DESC LIMIT $2",
        )
        .bind(workflow)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let summary: String = r.try_get("summary")?;
                Ok(ExperimentRecord {
                    summary: serde_json::from_str(&summary)
                        .map_err(|e| anyhow::anyhow!("experiment {id}: {e}"))?,
                    id,
                    workflow: r.try_get("workflow")?,
                    candidate: r.try_get("candidate")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    async fn get_experiment(&self, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT experiment FROM experiments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| anyhow::anyhow!("experiment {id}: {e}")))
            .transpose()
    }
}
