//! The PostgreSQL backend of the [`Store`]: the same journal, for several Weir hosts sharing
//! one database. Every write is one transaction that locks the run's row first, so a run's
//! writes serialize whichever host makes them, and the journal's promises (a result is
//! recorded at most once, every change appends an event in the same transaction, versions
//! are immutable, runs keep their pins) hold across hosts.

mod experiments;
mod journal;
mod lease;
mod model;
mod profiles;
mod purge;
mod reviews;
mod rollouts;
mod rows;
mod schema;
mod shadows;
mod writes;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use serde_json::Value;
use sha2::Digest as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::*;
use rows::{RUN_COLUMNS, WORKFLOW_COLUMNS, get_run, json_col, parse, run_row, workflow_row};
use writes::{create_run, register, state_set};

const DEFAULT_LIST_LIMIT: u32 = 50;
/// Connections one host keeps: enough for its concurrent runs' journal writes, few enough
/// that a fleet stays inside PostgreSQL's `max_connections` (100 by default).
const DEFAULT_POOL_SIZE: u32 = 16;

/// A journal in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    durability: Durability,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, with `?options=-csearch_path%3Dx`
    /// to use a schema) and applies pending migrations.
    pub async fn connect(url: &str, durability: Durability) -> anyhow::Result<Self> {
        Self::connect_with(url, DEFAULT_POOL_SIZE, durability).await
    }

    /// Like [`PostgresStore::connect`], holding at most `pool_size` connections.
    pub async fn connect_with(
        url: &str,
        pool_size: u32,
        durability: Durability,
    ) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .with_context(|| format!("{url:?} is not a PostgreSQL URL"))?;
        // Set once per connection, at its start, so that no transaction pays a round trip
        // for it. At `normal` a commit does not wait for the WAL flush: the server has the
        // change, so a crash of Weir loses nothing (see `Durability`).
        let synchronous_commit = match durability {
            Durability::Normal => "off",
            Durability::Full => "on",
        };
        let options = options.options([("synchronous_commit", synchronous_commit)]);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(std::time::Duration::from_secs(30))
            // A connection is already pinged when it comes back to the pool, and a broken
            // one fails its next statement as a transient error that the caller retries:
            // a second ping on every acquire would add a round trip to every transaction.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
        schema::migrate(&pool).await?;
        Ok(Self { pool, durability })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction for a write whose effect leaves the database (a budget reservation
    /// before a paid call, a lease before a step runs): it waits for the WAL flush even at
    /// `normal`, so a crash of the server cannot forget what was already acted on.
    async fn begin_flushed(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        if self.durability == Durability::Normal {
            sqlx::query("SET LOCAL synchronous_commit = on")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// Commits on success; on failure rolls back at once, so no lock outlives the call.
async fn finish<T>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Whether `cause` is PostgreSQL (or the way to it) failing in a way that a later try may
/// not: the connection broke or none was free in time, the server is shutting down or out
/// of connections, or it aborted the transaction for a serialization failure or deadlock.
pub(super) fn is_transient(cause: &(dyn std::error::Error + 'static)) -> bool {
    match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) => true,
        Some(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P: operator intervention (shutdown, failover);
            // 53300: too many connections; 40001, 40P01: serialization failure, deadlock.
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(&*code, "53300" | "40001" | "40P01")
        }),
        _ => false,
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn put_plugin(
        &self,
        digest: &str,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let actual = hex::encode(sha2::Sha256::digest(bytes));
        if actual != digest {
            bail!("plugin bytes have sha256 {actual}, not the claimed {digest}");
        }
        sqlx::query("INSERT INTO plugins (digest, name, version, bytes, added_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(name)
            .bind(version)
            .bind(bytes)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_plugin(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM plugins WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn find_plugin(&self, name: &str, version: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT digest FROM plugins WHERE name = $1 AND version = $2 ORDER BY added_ms DESC LIMIT 1")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn register_workflow(&self, wf: &WorkflowVersion) -> anyhow::Result<Registered> {
        let mut tx = self.pool.begin().await?;
        let result = register(&mut tx, wf).await;
        finish(tx, result).await
    }

    async fn get_workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> anyhow::Result<Option<WorkflowVersion>> {
        match version {
            Some(v) => sqlx::query(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = $1 AND version = $2"
            ))
            .bind(name)
            .bind(v)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(workflow_row)
            .transpose(),
            None => {
                // Highest version by semver precedence; among pre-releases of one version, the latest registered.
                let mut all: Vec<WorkflowVersion> = sqlx::query(&format!(
                    "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = $1"
                ))
                .bind(name)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(workflow_row)
                .collect::<anyhow::Result<_>>()?;
                all.sort_by(|a, b| {
                    let (va, vb) = (
                        semver::Version::parse(&a.version).ok(),
                        semver::Version::parse(&b.version).ok(),
                    );
                    va.cmp(&vb).then(a.registered_ms.cmp(&b.registered_ms))
                });
                Ok(all.pop())
            }
        }
    }

    async fn list_workflows(&self) -> anyhow::Result<Vec<WorkflowVersion>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY name, major, minor, patch"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(workflow_row)
        .collect()
    }

    async fn create_run(&self, run: NewRun) -> anyhow::Result<(RunRecord, bool)> {
        let mut tx = self.pool.begin().await?;
        let result = create_run(&mut tx, run).await;
        finish(tx, result).await
    }

    async fn create_started(
        &self,
        run: NewRun,
        mut first: Advance,
    ) -> anyhow::Result<(RunRecord, bool, Option<Advanced>)> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let (record, created) = create_run(&mut tx, run).await?;
            if !created {
                return Ok((record, false, None));
            }
            first.run_id = record.id.clone();
            let advanced = journal::advance(&mut tx, &first).await?;
            let record = get_run(&mut tx, &record.id)
                .await?
                .context("run vanished")?;
            Ok((record, true, Some(advanced)))
        }
        .await;
        finish(tx, result).await
    }

    async fn get_run(&self, id: &str) -> anyhow::Result<Option<RunRecord>> {
        let mut c = self.pool.acquire().await?;
        get_run(&mut c, id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        let (sql, binds) = run_query::list_runs(
            RUN_COLUMNS,
            filter,
            limit,
            |n| format!("${n}"),
            run_query::route_in_steps,
        );
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                run_query::Bind::Text(t) => query.bind(t),
                run_query::Bind::Int(i) => query.bind(i),
            };
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(run_row)
            .collect()
    }

    async fn unfinished_runs(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('pending', 'running') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        output: Option<Value>,
        failure: Option<Value>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let result = journal::set_status(&mut tx, id, status, output, failure).await;
        finish(tx, result).await
    }

    async fn purge_payloads(
        &self,
        workflow: Option<&str>,
        ended_before_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        purge::purge_runs(&self.pool, workflow, ended_before_ms, limit).await
    }

    async fn steps(&self, run_id: &str) -> anyhow::Result<Vec<StepRecord>> {
        sqlx::query(
            "SELECT step_id, plugin_digest, status, output, confidence, route, failure, skip_reason, attempts
             FROM steps WHERE run_id = $1 ORDER BY position",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(StepRecord {
                step_id: r.try_get(0)?,
                plugin_digest: r.try_get(1)?,
                status: parse(r.try_get(2)?)?,
                output: json_col(r.try_get(3)?),
                confidence: r.try_get(4)?,
                route: r.try_get(5)?,
                failure: json_col(r.try_get(6)?),
                skip_reason: r.try_get(7)?,
                attempts: r.try_get::<i64, _>(8)? as u32,
            })
        })
        .collect()
    }

    async fn advance(&self, advance: Advance) -> anyhow::Result<Advanced> {
        let mut tx = self.pool.begin().await?;
        let result = journal::advance(&mut tx, &advance).await;
        finish(tx, result).await
    }

    async fn reviews(
        &self,
        status: Option<ReviewStatus>,
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<ReviewRecord>> {
        let mut c = self.pool.acquire().await?;
        reviews::list(&mut c, status, run_id).await
    }

    async fn get_review(&self, id: &str) -> anyhow::Result<Option<ReviewRecord>> {
        let mut c = self.pool.acquire().await?;
        reviews::get(&mut c, id).await
    }

    async fn expired_reviews(&self, now_ms: i64) -> anyhow::Result<Vec<ReviewRecord>> {
        let mut c = self.pool.acquire().await?;
        reviews::expired(&mut c, now_ms).await
    }

    async fn decide_review(
        &self,
        id: &str,
        decision: Decision,
        decided: Decided,
    ) -> anyhow::Result<ReviewRecord> {
        let mut tx = self.pool.begin().await?;
        let result = reviews::decide(&mut tx, id, &decision, &decided).await;
        finish(tx, result).await
    }

    async fn attempts(&self, run_id: &str) -> anyhow::Result<Vec<AttemptRecord>> {
        sqlx::query(
            "SELECT a.step_id, a.attempt, a.input_digest, a.status, a.failure, a.started_ms, a.finished_ms, a.latency_us, a.fuel, a.memory_peak, a.logs, a.tape
             FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.step_id = a.step_id
             WHERE a.run_id = $1 ORDER BY s.position, a.attempt",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRecord {
                step_id: r.try_get(0)?,
                attempt: r.try_get::<i64, _>(1)? as u32,
                input_digest: r.try_get(2)?,
                status: parse(r.try_get(3)?)?,
                failure: json_col(r.try_get(4)?),
                started_ms: r.try_get(5)?,
                finished_ms: r.try_get(6)?,
                latency_us: r.try_get::<Option<i64>, _>(7)?.map(|v| v as u64),
                fuel: r.try_get::<Option<i64>, _>(8)?.map(|v| v as u64),
                memory_peak: r.try_get::<Option<i64>, _>(9)?.map(|v| v as u64),
                logs: json_col(r.try_get(10)?),
                tape: json_col(r.try_get(11)?),
            })
        })
        .collect()
    }

    async fn events(&self, run_id: &str) -> anyhow::Result<Vec<EventRecord>> {
        sqlx::query(
            "SELECT seq, at_ms, kind, step_id, data FROM events WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(EventRecord {
                seq: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                kind: r.try_get(2)?,
                step_id: r.try_get(3)?,
                data: json_col(r.try_get(4)?).unwrap_or(Value::Null),
            })
        })
        .collect()
    }

    async fn state_get(&self, run_id: &str, key: &str) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM state WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn state_set(
        &self,
        run_id: &str,
        key: &str,
        value: Option<&str>,
        max_keys: u64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let result = state_set(&mut tx, run_id, key, value, max_keys).await;
        finish(tx, result).await
    }

    async fn record_model_call(
        &self,
        call: ModelCallRecord,
        settle: Option<Settle>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let result = model::record_call(&mut tx, &call, settle.as_ref()).await;
        finish(tx, result).await
    }

    async fn model_calls(&self, run_id: &str) -> anyhow::Result<Vec<ModelCallRecord>> {
        let mut c = self.pool.acquire().await?;
        model::calls(&mut c, run_id).await
    }

    async fn reserve_budget(
        &self,
        scopes: Vec<BudgetScope>,
        micros: i64,
    ) -> anyhow::Result<Result<(), BudgetExceeded>> {
        let mut tx = self.begin_flushed().await?;
        let result = model::reserve(&mut tx, &scopes, micros).await;
        finish(tx, result).await
    }

    async fn spend(&self, scope: &str) -> anyhow::Result<Spend> {
        let mut c = self.pool.acquire().await?;
        model::spend(&mut c, scope).await
    }

    async fn usage(&self, since_day: &str) -> anyhow::Result<Vec<usage::UsageRow>> {
        let mut c = self.pool.acquire().await?;
        model::usage(&mut c, since_day).await
    }

    async fn cache_get(&self, key: &str, now_ms: i64) -> anyhow::Result<Option<String>> {
        let mut c = self.pool.acquire().await?;
        model::cache_get(&mut c, key, now_ms).await
    }

    async fn cache_put(&self, key: &str, response: &str, expires_ms: i64) -> anyhow::Result<()> {
        let mut c = self.pool.acquire().await?;
        model::cache_put(&mut c, key, response, expires_ms).await
    }

    async fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease_ms: i64,
    ) -> anyhow::Result<Option<Lease>> {
        let mut tx = self.begin_flushed().await?;
        let result = lease::claim_run(&mut tx, run_id, owner, lease_ms).await;
        finish(tx, result).await
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
        min_age_ms: i64,
    ) -> anyhow::Result<Vec<Lease>> {
        let mut tx = self.begin_flushed().await?;
        let result = lease::claim_orphans(&mut tx, owner, lease_ms, limit, min_age_ms).await;
        finish(tx, result).await
    }

    async fn claim_abandoned(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Lease>> {
        let mut tx = self.begin_flushed().await?;
        let result = lease::claim_abandoned(&mut tx, owner, lease_ms, limit).await;
        finish(tx, result).await
    }

    async fn renew_lease(&self, held: &Lease, lease_ms: i64) -> anyhow::Result<bool> {
        lease::renew(&self.pool, held, lease_ms).await
    }

    async fn release_lease(&self, held: &Lease) -> anyhow::Result<()> {
        lease::release(&self.pool, held).await
    }
    fn rollouts(&self) -> &dyn RolloutJournal {
        self
    }

    fn shadows(&self) -> &dyn ShadowJournal {
        self
    }

    fn experiments(&self) -> &dyn ExperimentJournal {
        self
    }

    fn monitor(&self) -> &dyn MonitorJournal {
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("postgres://weir:s3cret@db:5432/weir"),
            "postgres://weir:***@db:5432/weir"
        );
        assert_eq!(
            super::redact("postgres://127.0.0.1/test"),
            "postgres://127.0.0.1/test"
        );
    }
}
