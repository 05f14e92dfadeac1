//! Rollouts on SQLite: the row, its revision check and its event log, in one write.

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::rollout::{NewEvent, Rollout, RolloutEvent};
use crate::store::rollouts::{RolloutJournal, from_doc, to_doc};

#[async_trait]
impl RolloutJournal for SqliteStore {
    async fn create_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<Result<(), String>> {
        let rollout = rollout.clone();
        self.write(move |c| {
            let active: Option<String> = c
                .prepare_cached("SELECT id FROM rollouts WHERE workflow = ?1 AND active = 1")?
                .query_row([&rollout.workflow], |r| r.get(0))
                .optional()?;
            if let Some(id) = active {
                return Ok(Err(id));
            }
            c.prepare_cached(
                "INSERT INTO rollouts (id, workflow, active, revision, doc, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                rollout.id,
                rollout.workflow,
                !rollout.state.is_final(),
                rollout.revision,
                to_doc(&rollout)?,
                rollout.created_ms,
                rollout.updated_ms
            ])?;
            append(c, &rollout, &events)?;
            Ok(Ok(()))
        })
        .await
    }

    async fn update_rollout(
        &self,
        rollout: &Rollout,
        events: Vec<NewEvent>,
    ) -> anyhow::Result<bool> {
        let rollout = rollout.clone();
        self.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE rollouts SET active = ?2, revision = ?3, doc = ?4, updated_ms = ?5
                     WHERE id = ?1 AND revision = ?3 - 1",
                )?
                .execute(params![
                    rollout.id,
                    !rollout.state.is_final(),
                    rollout.revision,
                    to_doc(&rollout)?,
                    rollout.updated_ms
                ])?;
            if changed == 0 {
                return Ok(false);
            }
            append(c, &rollout, &events)?;
            Ok(true)
        })
        .await
    }

    async fn get_rollout(&self, id: &str) -> anyhow::Result<Option<Rollout>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT doc FROM rollouts WHERE id = ?1")?
                .query_row([&id], |r| r.get::<_, String>(0))
                .optional()?
                .map(|doc| from_doc(&doc))
                .transpose()
        })
        .await
    }

    async fn list_rollouts(
        &self,
        workflow: Option<&str>,
        active: bool,
    ) -> anyhow::Result<Vec<Rollout>> {
        let workflow = workflow.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM rollouts WHERE (?1 IS NULL OR workflow = ?1) AND (?2 = 0 OR active = 1)
                 ORDER BY created_ms DESC, id DESC",
            )?;
            let docs = stmt
                .query_map(params![workflow, active], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            docs.iter().map(|d| from_doc(d)).collect()
        })
        .await
    }

    async fn latest_rollout(&self, workflow: &str) -> anyhow::Result<Option<Rollout>> {
        let workflow = workflow.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT doc FROM rollouts WHERE workflow = ?1 ORDER BY created_ms DESC, id DESC LIMIT 1",
            )?
            .query_row([&workflow], |r| r.get::<_, String>(0))
            .optional()?
            .map(|doc| from_doc(&doc))
            .transpose()
        })
        .await
    }

    async fn rollout_events(&self, id: &str) -> anyhow::Result<Vec<RolloutEvent>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at_ms, kind, data FROM rollout_events WHERE rollout_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
                })?
                .collect::<Result<Vec<(i64, i64, String, String)>, _>>()?;
            rows.into_iter()
                .map(|(seq, at_ms, kind, data)| {
                    Ok(RolloutEvent {
                        seq,
                        at_ms,
                        kind,
                        data: serde_json::from_str(&data)
                            .with_context(|| format!("rollout {id} event {seq}"))?,
                    })
                })
                .collect()
        })
        .await
    }
}

fn append(c: &Connection, rollout: &Rollout, events: &[NewEvent]) -> anyhow::Result<()> {
    let next: i64 = c
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM rollout_events WHERE rollout_id = ?1",
        )?
        .query_row([&rollout.id], |r| r.get(0))?;
    let mut insert = c.prepare_cached(
        "INSERT INTO rollout_events (rollout_id, seq, at_ms, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, event) in events.iter().enumerate() {
        insert.execute(params![
            rollout.id,
            next + i as i64,
            rollout.updated_ms,
            event.kind,
            event.data.to_string()
        ])?;
    }
    Ok(())
}
