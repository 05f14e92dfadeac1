//! The PostgreSQL writes that make records: a workflow version (immutable once registered),
//! a run with its steps (or the run that already has its idempotency key), and a run's state.

use anyhow::{Context as _, bail};
use sha2::Digest as _;
use sqlx::Row;

use super::rows::{append_event, get_run};
use crate::store::idempotency;
use crate::store::*;

pub(super) async fn register(
    tx: &mut sqlx::PgConnection,
    wf: &WorkflowVersion,
) -> anyhow::Result<Registered> {
    let parsed = semver::Version::parse(&wf.version)?;
    // Two hosts registering the same version at once: the second waits for the first.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("{}@{}", wf.name, wf.version))
        .execute(&mut *tx)
        .await?;
    let existing =
        sqlx::query("SELECT digest, source FROM workflows WHERE name = $1 AND version = $2")
            .bind(&wf.name)
            .bind(&wf.version)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(row) = existing {
        let (digest, source): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if digest == wf.digest {
            return Ok(Registered::Existing);
        }
        if source != wf.source {
            bail!(
                "workflow {}@{} is already registered with a different definition; a version's definition is immutable, so bump `version` to register the change",
                wf.name,
                wf.version
            );
        }
        sqlx::query("UPDATE workflows SET digest = $3, pins = $4 WHERE name = $1 AND version = $2")
            .bind(&wf.name)
            .bind(&wf.version)
            .bind(&wf.digest)
            .bind(serde_json::to_string(&wf.pins)?)
            .execute(&mut *tx)
            .await?;
        return Ok(Registered::Repinned);
    }
    sqlx::query(
        "INSERT INTO workflows (name, version, major, minor, patch, digest, source, base_dir, pins, registered_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&wf.name)
    .bind(&wf.version)
    .bind(parsed.major as i64)
    .bind(parsed.minor as i64)
    .bind(parsed.patch as i64)
    .bind(&wf.digest)
    .bind(&wf.source)
    .bind(&wf.base_dir)
    .bind(serde_json::to_string(&wf.pins)?)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(Registered::New)
}

pub(super) async fn create_run(
    tx: &mut sqlx::PgConnection,
    run: NewRun,
) -> anyhow::Result<(RunRecord, bool)> {
    let input_text = run.input.to_string();
    let input_digest = hex::encode(sha2::Sha256::digest(input_text.as_bytes()));
    if let Some(key) = &run.idempotency_key {
        idempotency::check_key(key)?;
        // Serializes submissions with one key across hosts.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let existing = sqlx::query(
            "SELECT id, workflow, version, input_digest FROM runs WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let existing = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let id = idempotency::check_existing(key, existing, &run, &input_digest)?;
            let record = get_run(tx, &id).await?.context("run vanished")?;
            return Ok((record, false));
        }
    }
    let id = run
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO runs (id, workflow, version, status, input, input_digest, idempotency_key, created_ms, updated_ms, source_run)
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $7, $8)",
    )
    .bind(&id)
    .bind(&run.workflow)
    .bind(&run.version)
    .bind(&input_text)
    .bind(&input_digest)
    .bind(&run.idempotency_key)
    .bind(now)
    .bind(&run.source_run)
    .execute(&mut *tx)
    .await?;
    for (position, (step_id, digest)) in run.steps.iter().enumerate() {
        sqlx::query("INSERT INTO steps (run_id, step_id, position, plugin_digest, status) VALUES ($1, $2, $3, $4, 'pending')")
            .bind(&id)
            .bind(step_id)
            .bind(position as i64)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
    }
    append_event(tx, &id, "run_created", None, run.event_data()).await?;
    let record = get_run(tx, &id).await?.context("run vanished")?;
    Ok((record, true))
}

pub(super) async fn state_set(
    tx: &mut sqlx::PgConnection,
    run_id: &str,
    key: &str,
    value: Option<&str>,
    max_keys: u64,
) -> anyhow::Result<()> {
    // The run's row serializes the count and the insert against other writers of this run.
    sqlx::query("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    match value {
        None => {
            sqlx::query("DELETE FROM state WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        Some(value) => {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM state WHERE run_id = $1 AND key <> $2")
                    .bind(run_id)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
            if count as u64 >= max_keys {
                bail!("run {run_id} already has {count} state keys, the limit");
            }
            sqlx::query("INSERT INTO state (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value")
                .bind(run_id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}
