//! Shadow results on SQLite.

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::params;

use super::SqliteStore;
use crate::store::shadows::{COLUMNS, ShadowJournal, ShadowResult};

#[async_trait]
impl ShadowJournal for SqliteStore {
    async fn record_shadow(&self, r: &ShadowResult) -> anyhow::Result<()> {
        let r = r.clone();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO shadow_results ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                r.id,
                r.run_id,
                r.workflow,
                r.version,
                r.step_id,
                r.candidate,
                r.outcome,
                r.detail.to_string(),
                r.cost_micros,
                r.at_ms
            ])?;
            Ok(())
        })
        .await
    }

    async fn shadow_results(
        &self,
        workflow: Option<&str>,
        run_id: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<ShadowResult>> {
        let (workflow, run_id) = (workflow.map(str::to_string), run_id.map(str::to_string));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM shadow_results WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR run_id = ?2)
                 ORDER BY at_ms DESC, id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![workflow, run_id, limit], |r| {
                    Ok((
                        ShadowResult {
                            id: r.get(0)?,
                            run_id: r.get(1)?,
                            workflow: r.get(2)?,
                            version: r.get(3)?,
                            step_id: r.get(4)?,
                            candidate: r.get(5)?,
                            outcome: r.get(6)?,
                            detail: serde_json::Value::Null,
                            cost_micros: r.get(8)?,
                            at_ms: r.get(9)?,
                        },
                        r.get::<_, String>(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(mut result, detail)| {
                    result.detail = serde_json::from_str(&detail)
                        .with_context(|| format!("shadow result {}", result.id))?;
                    Ok(result)
                })
                .collect()
        })
        .await
    }

    async fn shadow_spend(
        &self,
        workflow: &str,
        step_id: &str,
        since_ms: i64,
    ) -> anyhow::Result<i64> {
        let (workflow, step_id) = (workflow.to_string(), step_id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT COALESCE(SUM(cost_micros), 0) FROM shadow_results WHERE workflow = ?1 AND step_id = ?2 AND at_ms >= ?3",
            )?
            .query_row(params![workflow, step_id, since_ms], |r| r.get(0))?)
        })
        .await
    }
}
