//! The model layer's tables on PostgreSQL: journaled calls, budgets and the response cache.
//! Budget rows are locked in key order before they are checked, so concurrent reservations
//! from any number of hosts serialize on them and never overspend.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use std::sync::LazyLock;

use super::rows::json_col;
use crate::store::usage::{self, LATENCY_BUCKETS, UsageBump, UsageRow};
use crate::store::{BudgetExceeded, BudgetScope, ModelCallRecord, Settle, Spend, now_ms};

fn placeholder(n: usize) -> String {
    format!("${n}")
}

static USAGE_UPSERT: LazyLock<String> = LazyLock::new(|| usage::upsert_sql(placeholder));
static USAGE_SELECT: LazyLock<String> = LazyLock::new(|| usage::select_sql(placeholder));

pub(super) async fn record_call(
    c: &mut PgConnection,
    call: &ModelCallRecord,
    settle: Option<&Settle>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO model_calls (run_id, step_id, attempt, seq, workflow, version, alias, provider, model, prompt_id, prompt_hash, request, response, outcome, error, prompt_tokens, completion_tokens, cost_micros, latency_us, upstream_attempts, at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&call.run_id)
    .bind(&call.step_id)
    .bind(call.attempt as i64)
    .bind(call.seq as i64)
    .bind(&call.workflow)
    .bind(&call.version)
    .bind(&call.alias)
    .bind(&call.provider)
    .bind(&call.model)
    .bind(&call.prompt_id)
    .bind(&call.prompt_hash)
    .bind(call.request.to_string())
    .bind(call.response.as_ref().map(|r| r.to_string()))
    .bind(&call.outcome)
    .bind(&call.error)
    .bind(call.prompt_tokens as i64)
    .bind(call.completion_tokens as i64)
    .bind(call.cost_micros)
    .bind(call.latency_us as i64)
    .bind(call.upstream_attempts as i64)
    .bind(call.at_ms)
    .execute(&mut *c)
    .await?;
    let bump = UsageBump::of(call);
    sqlx::query(&USAGE_UPSERT)
        .bind(&bump.day)
        .bind(&call.workflow)
        .bind(&call.version)
        .bind(&call.step_id)
        .bind(&bump.model)
        .bind(1i64)
        .bind(bump.cached)
        .bind(bump.failed)
        .bind(call.prompt_tokens as i64)
        .bind(call.completion_tokens as i64)
        .bind(call.cost_micros)
        .bind(call.latency_us as i64)
        .bind(bump.bucket as i64)
        .execute(&mut *c)
        .await?;
    if let Some(settle) = settle {
        for scope in &settle.scopes {
            sqlx::query("UPDATE budgets SET reserved_micros = reserved_micros - $2, spent_micros = spent_micros + $3 WHERE scope = $1")
                .bind(scope)
                .bind(settle.reserved_micros)
                .bind(settle.actual_micros)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

fn call_row(r: &PgRow) -> anyhow::Result<ModelCallRecord> {
    Ok(ModelCallRecord {
        run_id: r.try_get(0)?,
        step_id: r.try_get(1)?,
        attempt: r.try_get::<i64, _>(2)? as u32,
        seq: r.try_get::<i64, _>(3)? as u32,
        workflow: r.try_get(4)?,
        version: r.try_get(5)?,
        alias: r.try_get(6)?,
        provider: r.try_get(7)?,
        model: r.try_get(8)?,
        prompt_id: r.try_get(9)?,
        prompt_hash: r.try_get(10)?,
        request: json_col(r.try_get(11)?).unwrap_or_default(),
        response: json_col(r.try_get(12)?),
        outcome: r.try_get(13)?,
        error: r.try_get(14)?,
        prompt_tokens: r.try_get::<i64, _>(15)? as u64,
        completion_tokens: r.try_get::<i64, _>(16)? as u64,
        cost_micros: r.try_get(17)?,
        latency_us: r.try_get::<i64, _>(18)? as u64,
        upstream_attempts: r.try_get::<i64, _>(19)? as u32,
        at_ms: r.try_get(20)?,
    })
}

pub(super) async fn calls(
    c: &mut PgConnection,
    run_id: &str,
) -> anyhow::Result<Vec<ModelCallRecord>> {
    sqlx::query(
        "SELECT run_id, step_id, attempt, seq, workflow, version, alias, provider, model, prompt_id, prompt_hash, request, response, outcome, error, prompt_tokens, completion_tokens, cost_micros, latency_us, upstream_attempts, at_ms
         FROM model_calls WHERE run_id = $1 ORDER BY at_ms, step_id, attempt, seq",
    )
    .bind(run_id)
    .fetch_all(c)
    .await?
    .iter()
    .map(call_row)
    .collect()
}

pub(super) async fn reserve(
    c: &mut PgConnection,
    scopes: &[BudgetScope],
    micros: i64,
) -> anyhow::Result<Result<(), BudgetExceeded>> {
    let mut ordered: Vec<&BudgetScope> = scopes.iter().collect();
    ordered.sort_by(|a, b| a.key.cmp(&b.key));
    for scope in &ordered {
        sqlx::query("INSERT INTO budgets (scope) VALUES ($1) ON CONFLICT (scope) DO NOTHING")
            .bind(&scope.key)
            .execute(&mut *c)
            .await?;
    }
    for scope in &ordered {
        let used: i64 = sqlx::query_scalar(
            "SELECT reserved_micros + spent_micros FROM budgets WHERE scope = $1 FOR UPDATE",
        )
        .bind(&scope.key)
        .fetch_one(&mut *c)
        .await?;
        if used + micros > scope.limit_micros {
            return Ok(Err(BudgetExceeded {
                scope: scope.key.clone(),
                limit_micros: scope.limit_micros,
                used_micros: used,
                asked_micros: micros,
            }));
        }
    }
    for scope in &ordered {
        sqlx::query("UPDATE budgets SET reserved_micros = reserved_micros + $2 WHERE scope = $1")
            .bind(&scope.key)
            .bind(micros)
            .execute(&mut *c)
            .await?;
    }
    Ok(Ok(()))
}

/// The usage rollup's rows from `since_day` on.
pub(super) async fn usage(c: &mut PgConnection, since_day: &str) -> anyhow::Result<Vec<UsageRow>> {
    let rows = sqlx::query(&USAGE_SELECT)
        .bind(since_day)
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(UsageRow {
                day: r.try_get(0)?,
                workflow: r.try_get(1)?,
                version: r.try_get(2)?,
                step_id: r.try_get(3)?,
                model: r.try_get(4)?,
                calls: r.try_get(5)?,
                cached: r.try_get(6)?,
                failed: r.try_get(7)?,
                prompt_tokens: r.try_get(8)?,
                completion_tokens: r.try_get(9)?,
                cost_micros: r.try_get(10)?,
                latency_us: r.try_get(11)?,
                latency_buckets: (0..LATENCY_BUCKETS)
                    .map(|k| r.try_get(12 + k))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

pub(super) async fn spend(c: &mut PgConnection, scope: &str) -> anyhow::Result<Spend> {
    Ok(
        sqlx::query("SELECT reserved_micros, spent_micros FROM budgets WHERE scope = $1")
            .bind(scope)
            .fetch_optional(c)
            .await?
            .map(|r| -> anyhow::Result<Spend> {
                Ok(Spend {
                    reserved_micros: r.try_get(0)?,
                    spent_micros: r.try_get(1)?,
                })
            })
            .transpose()?
            .unwrap_or_default(),
    )
}

pub(super) async fn cache_get(
    c: &mut PgConnection,
    key: &str,
    now: i64,
) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT response FROM model_cache WHERE key = $1 AND expires_ms > $2")
            .bind(key)
            .bind(now)
            .fetch_optional(c)
            .await?,
    )
}

pub(super) async fn cache_put(
    c: &mut PgConnection,
    key: &str,
    response: &str,
    expires_ms: i64,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM model_cache WHERE expires_ms <= $1")
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO model_cache (key, response, expires_ms) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET response = excluded.response, expires_ms = excluded.expires_ms",
    )
    .bind(key)
    .bind(response)
    .bind(expires_ms)
    .execute(&mut *c)
    .await?;
    Ok(())
}
