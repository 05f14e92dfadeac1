//! The model layer's tables: journaled calls, budget reservations and the response cache.

use rusqlite::{Connection, OptionalExtension, params};

use std::sync::LazyLock;

use crate::store::usage::{self, LATENCY_BUCKETS, UsageBump, UsageRow};
use crate::store::{BudgetExceeded, BudgetScope, ModelCallRecord, Settle, Spend};

fn placeholder(n: usize) -> String {
    format!("?{n}")
}

static USAGE_UPSERT: LazyLock<String> = LazyLock::new(|| usage::upsert_sql(placeholder));
static USAGE_SELECT: LazyLock<String> = LazyLock::new(|| usage::select_sql(placeholder));

pub(super) fn record_call(
    c: &Connection,
    call: &ModelCallRecord,
    settle: Option<&Settle>,
) -> anyhow::Result<()> {
    c.prepare_cached(
        "INSERT INTO model_calls (run_id, step_id, attempt, seq, workflow, version, alias, provider, model, prompt_id, prompt_hash, request, response, outcome, error, prompt_tokens, completion_tokens, cost_micros, latency_us, upstream_attempts, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        call.run_id,
        call.step_id,
        call.attempt,
        call.seq,
        call.workflow,
        call.version,
        call.alias,
        call.provider,
        call.model,
        call.prompt_id,
        call.prompt_hash,
        call.request.to_string(),
        call.response.as_ref().map(|r| r.to_string()),
        call.outcome,
        call.error,
        call.prompt_tokens as i64,
        call.completion_tokens as i64,
        call.cost_micros,
        call.latency_us as i64,
        call.upstream_attempts,
        call.at_ms,
    ])?;
    let bump = UsageBump::of(call);
    c.prepare_cached(&USAGE_UPSERT)?.execute(params![
        bump.day,
        call.workflow,
        call.version,
        call.step_id,
        bump.model,
        1,
        bump.cached,
        bump.failed,
        call.prompt_tokens as i64,
        call.completion_tokens as i64,
        call.cost_micros,
        call.latency_us as i64,
        bump.bucket as i64,
    ])?;
    if let Some(settle) = settle {
        for scope in &settle.scopes {
            c.prepare_cached(
                "UPDATE budgets SET reserved_micros = reserved_micros - ?2, spent_micros = spent_micros + ?3 WHERE scope = ?1",
            )?
            .execute(params![scope, settle.reserved_micros, settle.actual_micros])?;
        }
    }
    Ok(())
}

/// The usage rollup's rows from `since_day` on.
pub(super) fn usage(c: &Connection, since_day: &str) -> anyhow::Result<Vec<UsageRow>> {
    let mut stmt = c.prepare_cached(&USAGE_SELECT)?;
    let rows = stmt.query_map([since_day], |r| {
        Ok(UsageRow {
            day: r.get(0)?,
            workflow: r.get(1)?,
            version: r.get(2)?,
            step_id: r.get(3)?,
            model: r.get(4)?,
            calls: r.get(5)?,
            cached: r.get(6)?,
            failed: r.get(7)?,
            prompt_tokens: r.get(8)?,
            completion_tokens: r.get(9)?,
            cost_micros: r.get(10)?,
            latency_us: r.get(11)?,
            latency_buckets: (0..LATENCY_BUCKETS)
                .map(|k| r.get(12 + k))
                .collect::<rusqlite::Result<_>>()?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn calls(c: &Connection, run_id: &str) -> anyhow::Result<Vec<ModelCallRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT run_id, step_id, attempt, seq, workflow, version, alias, provider, model, prompt_id, prompt_hash, request, response, outcome, error, prompt_tokens, completion_tokens, cost_micros, latency_us, upstream_attempts, at_ms
         FROM model_calls WHERE run_id = ?1 ORDER BY at_ms, step_id, attempt, seq",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
            Ok(r.get::<_, Option<String>>(i)?
                .and_then(|t| serde_json::from_str(&t).ok()))
        };
        Ok(ModelCallRecord {
            run_id: r.get(0)?,
            step_id: r.get(1)?,
            attempt: r.get(2)?,
            seq: r.get(3)?,
            workflow: r.get(4)?,
            version: r.get(5)?,
            alias: r.get(6)?,
            provider: r.get(7)?,
            model: r.get(8)?,
            prompt_id: r.get(9)?,
            prompt_hash: r.get(10)?,
            request: json(11)?.unwrap_or_default(),
            response: json(12)?,
            outcome: r.get(13)?,
            error: r.get(14)?,
            prompt_tokens: r.get::<_, i64>(15)? as u64,
            completion_tokens: r.get::<_, i64>(16)? as u64,
            cost_micros: r.get(17)?,
            latency_us: r.get::<_, i64>(18)? as u64,
            upstream_attempts: r.get(19)?,
            at_ms: r.get(20)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs on the single writer connection, so the check and the reservation cannot interleave
/// with another reservation.
pub(super) fn reserve(
    c: &Connection,
    scopes: &[BudgetScope],
    micros: i64,
) -> anyhow::Result<Result<(), BudgetExceeded>> {
    for scope in scopes {
        let used = spend(c, &scope.key)?;
        let used = used.reserved_micros + used.spent_micros;
        if used + micros > scope.limit_micros {
            return Ok(Err(BudgetExceeded {
                scope: scope.key.clone(),
                limit_micros: scope.limit_micros,
                used_micros: used,
                asked_micros: micros,
            }));
        }
    }
    for scope in scopes {
        c.prepare_cached(
            "INSERT INTO budgets (scope, reserved_micros) VALUES (?1, ?2)
             ON CONFLICT (scope) DO UPDATE SET reserved_micros = reserved_micros + excluded.reserved_micros",
        )?
        .execute(params![scope.key, micros])?;
    }
    Ok(Ok(()))
}

pub(super) fn spend(c: &Connection, scope: &str) -> anyhow::Result<Spend> {
    Ok(
        c.prepare_cached("SELECT reserved_micros, spent_micros FROM budgets WHERE scope = ?1")?
            .query_row([scope], |r| {
                Ok(Spend {
                    reserved_micros: r.get(0)?,
                    spent_micros: r.get(1)?,
                })
            })
            .optional()?
            .unwrap_or_default(),
    )
}

pub(super) fn cache_get(c: &Connection, key: &str, now_ms: i64) -> anyhow::Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT response FROM model_cache WHERE key = ?1 AND expires_ms > ?2")?
            .query_row(params![key, now_ms], |r| r.get(0))
            .optional()?,
    )
}

pub(super) fn cache_put(
    c: &Connection,
    key: &str,
    response: &str,
    expires_ms: i64,
) -> anyhow::Result<()> {
    // Expired entries go as new ones come, so the table stays the size of what is live.
    c.prepare_cached("DELETE FROM model_cache WHERE expires_ms <= ?1")?
        .execute([super::now_ms()])?;
    c.prepare_cached(
        "INSERT INTO model_cache (key, response, expires_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET response = excluded.response, expires_ms = excluded.expires_ms",
    )?
    .execute(params![key, response, expires_ms])?;
    Ok(())
}
