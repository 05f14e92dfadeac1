//! Experiments on SQLite.

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::experiments::{ExperimentJournal, ExperimentRecord};

#[async_trait]
impl ExperimentJournal for SqliteStore {
    async fn save_experiment(
        &self,
        r: &ExperimentRecord,
        experiment: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let (r, experiment) = (r.clone(), experiment.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO experiments (id, workflow, candidate, created_ms, summary, experiment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                r.id,
                r.workflow,
                r.candidate,
                r.created_ms,
                r.summary.to_string(),
                experiment
            ])?;
            Ok(())
        })
        .await
    }

    async fn list_experiments(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ExperimentRecord>> {
        let workflow = workflow.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, workflow, candidate, created_ms, summary FROM experiments
                 WHERE (?1 IS NULL OR workflow = ?1) ORDER BY created_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![workflow, limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, workflow, candidate, created_ms, summary)| {
                    Ok(ExperimentRecord {
                        summary: serde_json::from_str(&summary)
                            .with_context(|| format!("experiment {id}"))?,
                        id,
                        workflow,
                        candidate,
                        created_ms,
                    })
                })
                .collect()
        })
        .await
    }

    async fn get_experiment(&self, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT experiment FROM experiments WHERE id = ?1")?
                .query_row([&id], |r| r.get::<_, String>(0))
                .optional()?
                .map(|text| serde_json::from_str(&text).with_context(|| format!("experiment {id}")))
                .transpose()
        })
        .await
    }
}
