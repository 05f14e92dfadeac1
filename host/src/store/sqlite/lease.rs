//! Leases in SQLite: the same claims as on PostgreSQL, serialized by the single writer. One
//! SQLite database serves one host, so this mostly keeps the two backends' semantics alike
//! (and lets one `weir serve` take over runs a killed one left).

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{Lease, now_ms};

pub(super) fn claim_run(
    c: &Connection,
    run_id: &str,
    owner: &str,
    lease_ms: i64,
) -> anyhow::Result<Option<Lease>> {
    let now = now_ms();
    let epoch: Option<i64> = c
        .prepare_cached(
            "UPDATE runs SET lease_owner = ?2, lease_epoch = lease_epoch + 1, lease_expires_ms = ?3 + ?4
             WHERE id = ?1 AND status IN ('pending', 'running') AND (lease_expires_ms IS NULL OR lease_expires_ms < ?3)
             RETURNING lease_epoch",
        )?
        .query_row(params![run_id, owner, now, lease_ms], |r| r.get(0))
        .optional()?;
    Ok(epoch.map(|epoch| Lease {
        run_id: run_id.to_string(),
        owner: owner.to_string(),
        epoch,
    }))
}

pub(super) fn claim_orphans(
    c: &Connection,
    owner: &str,
    lease_ms: i64,
    limit: usize,
    min_age_ms: i64,
) -> anyhow::Result<Vec<Lease>> {
    let now = now_ms();
    let mut stmt = c.prepare_cached(
        "UPDATE runs SET lease_owner = ?1, lease_epoch = lease_epoch + 1, lease_expires_ms = ?2 + ?3
         WHERE id IN (
             SELECT id FROM runs
             WHERE status IN ('pending', 'running') AND (lease_expires_ms IS NULL OR lease_expires_ms < ?2)
               AND created_ms <= ?2 - ?5
             ORDER BY created_ms LIMIT ?4)
         RETURNING id, lease_epoch",
    )?;
    claimed(
        &mut stmt,
        params![owner, now, lease_ms, limit as i64, min_age_ms],
        owner,
    )
}

pub(super) fn claim_abandoned(
    c: &Connection,
    owner: &str,
    lease_ms: i64,
    limit: usize,
) -> anyhow::Result<Vec<Lease>> {
    let now = now_ms();
    let mut stmt = c.prepare_cached(
        "UPDATE runs SET lease_owner = ?1, lease_epoch = lease_epoch + 1, lease_expires_ms = ?2 + ?3
         WHERE id IN (
             SELECT id FROM runs
             WHERE status IN ('pending', 'running') AND lease_owner IS NOT NULL
               AND (lease_expires_ms IS NULL OR lease_expires_ms < ?2)
             ORDER BY created_ms LIMIT ?4)
         RETURNING id, lease_epoch",
    )?;
    claimed(
        &mut stmt,
        params![owner, now, lease_ms, limit as i64],
        owner,
    )
}

/// The leases a claiming `UPDATE … RETURNING id, lease_epoch` gave `owner`.
fn claimed(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    owner: &str,
) -> anyhow::Result<Vec<Lease>> {
    let rows = stmt.query_map(params, |r| {
        Ok(Lease {
            run_id: r.get(0)?,
            owner: owner.to_string(),
            epoch: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn renew(c: &Connection, lease: &Lease, lease_ms: i64) -> anyhow::Result<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE runs SET lease_expires_ms = ?4 + ?5
             WHERE id = ?1 AND lease_owner = ?2 AND lease_epoch = ?3 AND status IN ('pending', 'running')",
        )?
        .execute(params![lease.run_id, lease.owner, lease.epoch, now_ms(), lease_ms])?;
    Ok(changed == 1)
}

pub(super) fn release(c: &Connection, lease: &Lease) -> anyhow::Result<()> {
    c.prepare_cached(
        "UPDATE runs SET lease_expires_ms = NULL WHERE id = ?1 AND lease_owner = ?2 AND lease_epoch = ?3",
    )?
    .execute(params![lease.run_id, lease.owner, lease.epoch])?;
    Ok(())
}
