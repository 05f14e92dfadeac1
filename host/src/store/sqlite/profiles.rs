//! Step profiles and baseline pins on SQLite (see `store/profiles.rs`). A result's counts are
//! journaled inside its own event (`record.profile`), so counting it writes no page the
//! advance does not write anyway: on SQLite a page is what a commit costs. When the run stops
//! (it ends, or parks for review), [`settle`] moves its results' counts into
//! `profile_results`, one row per step and window, in the same transaction, and records how
//! far it got (`runs.profiled_seq`). A read adds the counts still in the events of unfinished
//! runs. A fold adds many rows' counts with one statement per window, from a JSON array.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::json;

use super::SqliteStore;
use super::rows::EventKeys;
use crate::store::profiles::{
    self, BaselinePin, FilterValue, MonitorJournal, Pending, ProfileFilter, ProfileRow, StepProfile,
};

#[async_trait]
impl MonitorJournal for SqliteStore {
    async fn profiles(&self, filter: &ProfileFilter) -> anyhow::Result<Vec<ProfileRow>> {
        let filter = filter.clone();
        self.read(move |c| {
            // One snapshot for both reads: a fold committing between them would otherwise be
            // missed (or counted twice).
            let tx = c.unchecked_transaction()?;
            let rows = read(&tx, &filter)?;
            tx.commit()?;
            Ok(rows)
        })
        .await
    }

    async fn compact_profiles(&self, limit: usize) -> anyhow::Result<usize> {
        self.write(move |c| compact(c, limit)).await
    }

    async fn pin_baseline(&self, pin: &BaselinePin) -> anyhow::Result<()> {
        let p = pin.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO baseline_pins (workflow, version, from_ms, to_ms, source_version, pinned_by, pinned_ms, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                p.workflow,
                p.version,
                p.from_ms,
                p.to_ms,
                p.source_version,
                p.pinned_by,
                p.pinned_ms,
                p.reason
            ])?;
            Ok(())
        })
        .await
    }

    async fn baseline_pins(&self, workflow: &str) -> anyhow::Result<Vec<BaselinePin>> {
        let workflow = workflow.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT workflow, version, from_ms, to_ms, source_version, pinned_by, pinned_ms, reason
                 FROM baseline_pins WHERE workflow = ?1 ORDER BY pinned_ms, id",
            )?;
            let pins = stmt.query_map([workflow], |r| {
                Ok(BaselinePin {
                    workflow: r.get(0)?,
                    version: r.get(1)?,
                    from_ms: r.get(2)?,
                    to_ms: r.get(3)?,
                    source_version: r.get(4)?,
                    pinned_by: r.get(5)?,
                    pinned_ms: r.get(6)?,
                    reason: r.get(7)?,
                })
            })?;
            Ok(pins.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Moves the counts in run `run_id`'s events after `runs.profiled_seq` into
/// `profile_results`, a row per result, inside the caller's transaction: in SQL alone, since
/// every run that stops does it.
pub(super) fn settle(c: &Connection, run_id: &str) -> anyhow::Result<()> {
    let run: Option<(Option<i64>, i64, String, String)> = c
        .prepare_cached("SELECT num, profiled_seq, workflow, version FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((num, profiled, workflow, version)) = run else {
        return Ok(());
    };
    let keys = EventKeys::numbered_run(run_id, num)?;
    let last = super::rows::last_seq(c, keys)?;
    if last <= profiled {
        return Ok(());
    }
    c.prepare_cached(
        "INSERT INTO profile_results (workflow, version, step_id, window_ms, counts)
         SELECT ?3, ?4, step_id, json_extract(record, '$.profile.w'), json_extract(record, '$.profile')
         FROM events
         WHERE key > ?1 AND key < ?2 AND kind IN ('step_succeeded', 'step_failed')
           AND json_extract(record, '$.profile') IS NOT NULL",
    )?
    .execute(params![keys.after() + profiled, keys.before(), workflow, version])?;
    c.prepare_cached("UPDATE runs SET profiled_seq = ?2 WHERE id = ?1")?
        .execute(params![run_id, last])?;
    Ok(())
}

/// A result's counts as journaled in its event, as a pending result.
fn pending_of(workflow: &str, version: &str, step_id: String, profile: String) -> Option<Pending> {
    let value: serde_json::Value = serde_json::from_str(&profile).ok()?;
    let (window_ms, _) = profiles::from_value(&value)?;
    Some(Pending {
        workflow: workflow.to_string(),
        version: version.to_string(),
        step_id,
        window_ms,
        counts: profile,
    })
}

/// Folds up to `limit` pending results into the counts and deletes them, in the writer's
/// transaction (the only writer: nothing else folds meanwhile).
fn compact(c: &Connection, limit: usize) -> anyhow::Result<usize> {
    let mut stmt = c.prepare_cached(
        "SELECT id, workflow, version, step_id, window_ms, counts FROM profile_results ORDER BY id LIMIT ?1",
    )?;
    let mut last = None;
    let pending: Vec<Pending> = stmt
        .query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Pending {
                    workflow: r.get(1)?,
                    version: r.get(2)?,
                    step_id: r.get(3)?,
                    window_ms: r.get(4)?,
                    counts: r.get(5)?,
                },
            ))
        })?
        .map(|row| {
            row.map(|(id, p)| {
                last = Some(id);
                p
            })
        })
        .collect::<Result<_, _>>()?;
    let Some(last) = last else { return Ok(0) };
    for profile in profiles::fold(&pending) {
        add_counts(c, &profile)?;
    }
    c.prepare_cached("DELETE FROM profile_results WHERE id <= ?1")?
        .execute([last])?;
    Ok(pending.len())
}

/// Adds `profile`'s counts to the folded ones.
fn add_counts(c: &Connection, profile: &StepProfile) -> anyhow::Result<()> {
    let rows: Vec<_> = profile
        .sorted()
        .into_iter()
        .map(|n| json!([n.feature, n.bin, n.count, n.sum]))
        .collect();
    c.prepare_cached(
        "INSERT INTO step_profiles (workflow, version, step_id, window_ms, feature, bin, count, sum)
         SELECT ?1, ?2, ?3, ?4, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3
         FROM json_each(?5) AS j WHERE true
         ON CONFLICT (workflow, version, step_id, window_ms, feature, bin)
         DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum",
    )?
    .execute(params![
        profile.workflow,
        profile.version,
        profile.step_id,
        profile.window_ms,
        serde_json::Value::Array(rows).to_string(),
    ])?;
    Ok(())
}

/// The rows `filter` selects: the folded counts and the pending results, added up.
fn read(c: &Connection, filter: &ProfileFilter) -> anyhow::Result<Vec<ProfileRow>> {
    let values = || {
        profiles::filter_values(filter)
            .into_iter()
            .map(|v| match v {
                FilterValue::Text(text) => rusqlite::types::Value::Text(text.to_string()),
                FilterValue::Ms(ms) => rusqlite::types::Value::Integer(ms),
            })
    };
    let mut stmt = c.prepare_cached(&profiles::filter_sql(filter, placeholder))?;
    let folded = stmt
        .query_map(params_from_iter(values()), |r| {
            Ok(ProfileRow {
                version: r.get(0)?,
                step_id: r.get(1)?,
                window_ms: r.get(2)?,
                feature: r.get(3)?,
                bin: r.get(4)?,
                count: r.get(5)?,
                sum: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = c.prepare_cached(&profiles::pending_sql(filter, placeholder))?;
    let pending = stmt
        .query_map(params_from_iter(values()), |r| {
            Ok(Pending {
                workflow: filter.workflow.clone(),
                version: r.get(0)?,
                step_id: r.get(1)?,
                window_ms: r.get(2)?,
                counts: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut pending = pending;
    pending.extend(in_flight(c, filter)?);
    Ok(profiles::merged(folded, pending))
}

/// The counts still in the events of `filter`'s workflow's unfinished runs.
fn in_flight(c: &Connection, filter: &ProfileFilter) -> anyhow::Result<Vec<Pending>> {
    // `status IN ('pending', 'running')` as the index of unfinished runs says it.
    let mut stmt = c.prepare_cached(
        "SELECT r.version, e.step_id, json_extract(e.record, '$.profile')
         FROM runs r JOIN events e
           ON e.key > (r.num << 24) + r.profiled_seq AND e.key < ((r.num + 1) << 24)
         WHERE r.status IN ('pending', 'running') AND r.workflow = ?1
           AND e.kind IN ('step_succeeded', 'step_failed')",
    )?;
    let rows = stmt.query_map([&filter.workflow], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut pending = Vec::new();
    for row in rows {
        let (version, step_id, profile) = row?;
        let (Some(step_id), Some(profile)) = (step_id, profile) else {
            continue;
        };
        let Some(p) = pending_of(&filter.workflow, &version, step_id, profile) else {
            continue;
        };
        let keep = filter.version.as_ref().is_none_or(|v| *v == p.version)
            && filter.step_id.as_ref().is_none_or(|s| *s == p.step_id)
            && filter.since_ms.is_none_or(|ms| p.window_ms >= ms)
            && filter.until_ms.is_none_or(|ms| p.window_ms < ms);
        if keep {
            pending.push(p);
        }
    }
    Ok(pending)
}

fn placeholder(n: usize) -> String {
    format!("?{n}")
}
