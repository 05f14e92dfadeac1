//! Leases on PostgreSQL: how hosts share runs. A claim is one conditional `UPDATE` (the
//! row lock decides between hosts racing for the same run), orphans are found with
//! `FOR UPDATE SKIP LOCKED` so hosts scanning together take different runs, and each claim
//! bumps the run's lease epoch, which every advance checks (fencing).
//!
//! Every expiry is set and compared on the database's clock, never a host's: hosts' clocks
//! drift apart, and a host whose clock ran ahead would see live leases as expired and take
//! runs from hosts still driving them (their steps then run twice), while one running
//! behind would write leases that others see as expired at once.

use sqlx::{PgConnection, PgPool, Row};

use crate::store::Lease;

/// Now on the database's clock, in ms since the Unix epoch (`clock_timestamp()`, not
/// `now()`: the moment of the statement, not of the transaction's start).
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

pub(super) async fn claim_run(
    c: &mut PgConnection,
    run_id: &str,
    owner: &str,
    lease_ms: i64,
) -> anyhow::Result<Option<Lease>> {
    let epoch: Option<i64> = sqlx::query_scalar(&format!(
        "UPDATE runs SET lease_owner = $2, lease_epoch = lease_epoch + 1, lease_expires_ms = {DB_NOW_MS} + $3
         WHERE id = $1 AND status IN ('pending', 'running') AND (lease_expires_ms IS NULL OR lease_expires_ms < {DB_NOW_MS})
         RETURNING lease_epoch",
    ))
    .bind(run_id)
    .bind(owner)
    .bind(lease_ms)
    .fetch_optional(&mut *c)
    .await?;
    Ok(epoch.map(|epoch| Lease {
        run_id: run_id.to_string(),
        owner: owner.to_string(),
        epoch,
    }))
}

pub(super) async fn claim_orphans(
    c: &mut PgConnection,
    owner: &str,
    lease_ms: i64,
    limit: usize,
    min_age_ms: i64,
) -> anyhow::Result<Vec<Lease>> {
    // A run's age is on the clock of the host that created it (`created_ms`); only its
    // lease is on the database's.
    let rows = sqlx::query(&format!(
        "UPDATE runs SET lease_owner = $1, lease_epoch = lease_epoch + 1, lease_expires_ms = {DB_NOW_MS} + $3
         WHERE id IN (
             SELECT id FROM runs
             WHERE status IN ('pending', 'running') AND (lease_expires_ms IS NULL OR lease_expires_ms < {DB_NOW_MS})
               AND created_ms <= $2 - $5
             ORDER BY created_ms LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING id, lease_epoch",
    ))
    .bind(owner)
    .bind(crate::store::now_ms())
    .bind(lease_ms)
    .bind(limit as i64)
    .bind(min_age_ms)
    .fetch_all(&mut *c)
    .await?;
    leases(&rows, owner)
}

pub(super) async fn claim_abandoned(
    c: &mut PgConnection,
    owner: &str,
    lease_ms: i64,
    limit: usize,
) -> anyhow::Result<Vec<Lease>> {
    let rows = sqlx::query(&format!(
        "UPDATE runs SET lease_owner = $1, lease_epoch = lease_epoch + 1, lease_expires_ms = {DB_NOW_MS} + $2
         WHERE id IN (
             SELECT id FROM runs
             WHERE status IN ('pending', 'running') AND lease_owner IS NOT NULL
               AND (lease_expires_ms IS NULL OR lease_expires_ms < {DB_NOW_MS})
             ORDER BY created_ms LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, lease_epoch",
    ))
    .bind(owner)
    .bind(lease_ms)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    leases(&rows, owner)
}

/// The leases an `UPDATE … RETURNING id, lease_epoch` took for `owner`.
fn leases(rows: &[sqlx::postgres::PgRow], owner: &str) -> anyhow::Result<Vec<Lease>> {
    rows.iter()
        .map(|r| {
            Ok(Lease {
                run_id: r.try_get(0)?,
                owner: owner.to_string(),
                epoch: r.try_get(1)?,
            })
        })
        .collect()
}

pub(super) async fn renew(pool: &PgPool, lease: &Lease, lease_ms: i64) -> anyhow::Result<bool> {
    let changed = sqlx::query(&format!(
        "UPDATE runs SET lease_expires_ms = {DB_NOW_MS} + $4
         WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status IN ('pending', 'running')",
    ))
    .bind(&lease.run_id)
    .bind(&lease.owner)
    .bind(lease.epoch)
    .bind(lease_ms)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

pub(super) async fn release(pool: &PgPool, lease: &Lease) -> anyhow::Result<()> {
    sqlx::query("UPDATE runs SET lease_expires_ms = NULL WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3")
        .bind(&lease.run_id)
        .bind(&lease.owner)
        .bind(lease.epoch)
        .execute(pool)
        .await?;
    Ok(())
}
