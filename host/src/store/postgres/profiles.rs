//! Step profiles and baseline pins on PostgreSQL (see `store/profiles.rs`): a result is one
//! inserted row; a fold takes its rows with `FOR UPDATE SKIP LOCKED` (so hosts folding at once
//! never fold a row twice) and adds their counts with one statement per window, from arrays.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::PostgresStore;
use crate::store::profiles::{
    self, BaselinePin, FilterValue, MonitorJournal, Pending, ProfileFilter, ProfileRow, StepProfile,
};

#[async_trait]
impl MonitorJournal for PostgresStore {
    async fn profiles(&self, filter: &ProfileFilter) -> anyhow::Result<Vec<ProfileRow>> {
        // One snapshot for both reads: a fold committing between them would otherwise be
        // missed (or counted twice).
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows = read(&mut tx, filter).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn compact_profiles(&self, limit: usize) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "DELETE FROM profile_results WHERE id IN (
                 SELECT id FROM profile_results ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING workflow, version, step_id, window_ms, counts",
        )
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let pending = rows
            .iter()
            .map(|r| {
                Ok(Pending {
                    workflow: r.try_get(0)?,
                    version: r.try_get(1)?,
                    step_id: r.try_get(2)?,
                    window_ms: r.try_get(3)?,
                    counts: r.try_get(4)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for profile in profiles::fold(&pending) {
            add_counts(&mut tx, &profile).await?;
        }
        tx.commit().await?;
        Ok(pending.len())
    }

    async fn pin_baseline(&self, p: &BaselinePin) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO baseline_pins (workflow, version, from_ms, to_ms, source_version, pinned_by, pinned_ms, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.workflow)
        .bind(&p.version)
        .bind(p.from_ms)
        .bind(p.to_ms)
        .bind(&p.source_version)
        .bind(&p.pinned_by)
        .bind(p.pinned_ms)
        .bind(&p.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn baseline_pins(&self, workflow: &str) -> anyhow::Result<Vec<BaselinePin>> {
        let rows = sqlx::query(
            "SELECT workflow, version, from_ms, to_ms, source_version, pinned_by, pinned_ms, reason
             FROM baseline_pins WHERE workflow = $1 ORDER BY pinned_ms, id",
        )
        .bind(workflow)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BaselinePin {
                    workflow: r.try_get(0)?,
                    version: r.try_get(1)?,
                    from_ms: r.try_get(2)?,
                    to_ms: r.try_get(3)?,
                    source_version: r.try_get(4)?,
                    pinned_by: r.try_get(5)?,
                    pinned_ms: r.try_get(6)?,
                    reason: r.try_get(7)?,
                })
            })
            .collect()
    }
}

/// Journals a result's counts as a row of its own, inside the caller's transaction.
pub(super) async fn add(c: &mut PgConnection, profile: &StepProfile) -> anyhow::Result<()> {
    if profile.counts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO profile_results (workflow, version, step_id, window_ms, counts) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&profile.workflow)
    .bind(&profile.version)
    .bind(&profile.step_id)
    .bind(profile.window_ms)
    .bind(profiles::encode(profile))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Adds `profile`'s counts to the folded ones.
async fn add_counts(c: &mut PgConnection, profile: &StepProfile) -> anyhow::Result<()> {
    // Sorted, so that two transactions adding to the same rows lock them in the same order.
    let sorted = profile.sorted();
    let features: Vec<&str> = sorted.iter().map(|n| n.feature.as_str()).collect();
    let bins: Vec<&str> = sorted.iter().map(|n| n.bin.as_str()).collect();
    let counts: Vec<i64> = sorted.iter().map(|n| n.count).collect();
    let sums: Vec<f64> = sorted.iter().map(|n| n.sum).collect();
    sqlx::query(
        "INSERT INTO step_profiles (workflow, version, step_id, window_ms, feature, bin, count, sum)
         SELECT $1, $2, $3, $4, f, b, n, s
         FROM UNNEST($5::text[], $6::text[], $7::bigint[], $8::float8[]) AS u(f, b, n, s)
         ON CONFLICT (workflow, version, step_id, window_ms, feature, bin)
         DO UPDATE SET count = step_profiles.count + excluded.count,
                       sum = step_profiles.sum + excluded.sum",
    )
    .bind(&profile.workflow)
    .bind(&profile.version)
    .bind(&profile.step_id)
    .bind(profile.window_ms)
    .bind(features)
    .bind(bins)
    .bind(counts)
    .bind(sums)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The rows `filter` selects: the folded counts and the pending results, added up.
async fn read(c: &mut PgConnection, filter: &ProfileFilter) -> anyhow::Result<Vec<ProfileRow>> {
    fn bind<'q>(
        sql: &'q str,
        filter: &ProfileFilter,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let mut query = sqlx::query(sql);
        for value in profiles::filter_values(filter) {
            query = match value {
                FilterValue::Text(text) => query.bind(text.to_string()),
                FilterValue::Ms(ms) => query.bind(ms),
            };
        }
        query
    }
    let sql = profiles::filter_sql(filter, placeholder);
    let folded = bind(&sql, filter)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| {
            Ok(ProfileRow {
                version: r.try_get(0)?,
                step_id: r.try_get(1)?,
                window_ms: r.try_get(2)?,
                feature: r.try_get(3)?,
                bin: r.try_get(4)?,
                count: r.try_get(5)?,
                sum: r.try_get(6)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sql = profiles::pending_sql(filter, placeholder);
    let pending = bind(&sql, filter)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| {
            Ok(Pending {
                workflow: filter.workflow.clone(),
                version: r.try_get(0)?,
                step_id: r.try_get(1)?,
                window_ms: r.try_get(2)?,
                counts: r.try_get(3)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(profiles::merged(folded, pending))
}

fn placeholder(n: usize) -> String {
    format!("${n}")
}
