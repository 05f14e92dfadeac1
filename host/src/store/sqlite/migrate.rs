//! Upgrading a SQLite journal to the schema this Weir writes: the versioned migrations of
//! [`MIGRATIONS`], applied in one transaction, each checked first and all checked after.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::now_ms;
use super::rows::SEQ_BITS;
use crate::store::migrations::MIGRATIONS;

/// The versions applied so far.
const SCHEMA_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)";

pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch(SCHEMA_MIGRATIONS_TABLE)?;
    // A migration that rebuilds a table others reference (drop it, rename its copy in) must
    // run with foreign keys off, which SQLite allows only outside a transaction; they are
    // checked before the migrations commit instead, and back on for every write after.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = apply_migrations(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn apply_migrations(conn: &mut Connection) -> anyhow::Result<()> {
    // IMMEDIATE: two processes opening a new database together must not both migrate it.
    let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = txn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > known {
        // What it wrote may not be what this version reads: refuse rather than misread.
        bail!(
            "the database is at schema version {current}, written by a newer Weir; this Weir knows versions up to {known}: upgrade Weir to open it"
        );
    }
    if current == known {
        return Ok(());
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        precheck(&txn, *version)?;
        txn.execute_batch(sql)
            .with_context(|| format!("migration {version} failed"))?;
        txn.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
    }
    let broken: Option<String> = txn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(table) = broken {
        bail!("migrating left rows of {table} that refer to no row; nothing was changed");
    }
    txn.commit()?;
    Ok(())
}

/// Refuses a migration that would drop or misplace rows, before it runs.
fn precheck(txn: &Transaction<'_>, version: i64) -> anyhow::Result<()> {
    if version == 8 {
        // Migration 8 keys each event by its run's number: an event of no run would be
        // dropped, and one past the room a run has would land among the next run's.
        let orphan: Option<(String, i64)> = txn
            .query_row(
                "SELECT run_id, seq FROM events WHERE run_id NOT IN (SELECT id FROM runs) LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((run, seq)) = orphan {
            bail!(
                "event {seq} of run {run:?} belongs to no run in the journal, and the upgrade to schema version 8 would drop it; nothing was changed (remove the run's events, or restore its row, and open the database again)"
            );
        }
        let beyond: Option<(String, i64)> = txn
            .query_row(
                &format!(
                    "SELECT run_id, seq FROM events WHERE seq < 1 OR seq >= {} LIMIT 1",
                    1i64 << SEQ_BITS
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((run, seq)) = beyond {
            bail!(
                "event {seq} of run {run:?} is outside the 1 to {} a run's log can hold from schema version 8 on; nothing was changed",
                (1i64 << SEQ_BITS) - 1
            );
        }
    }
    Ok(())
}

/// A new database at `path` with the migrations up to `version` applied, as an older Weir
/// left it: for tests of upgrades.
#[cfg(test)]
pub(super) fn database_at(path: &std::path::Path, version: i64) -> Connection {
    let conn = super::writer::open(path, crate::store::Durability::Normal).unwrap();
    conn.execute_batch(SCHEMA_MIGRATIONS_TABLE).unwrap();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        conn.execute_batch(sql).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [version])
            .unwrap();
    }
    conn
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use crate::store::sqlite::writer::open;

    /// The plan SQLite picks for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn runs_are_found_through_their_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("plan.db"), Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        // Unfinished runs, without reading finished ones.
        let unfinished = plan(&conn, super::super::UNFINISHED_RUNS, []);
        assert!(
            unfinished
                .iter()
                .any(|step| step.contains("USING INDEX runs_unfinished")),
            "{unfinished:?}"
        );
        // A run by its idempotency key, through the index of the runs that have one.
        let keyed = plan(&conn, super::super::journal::RUN_BY_IDEMPOTENCY_KEY, ["k"]);
        assert!(
            keyed
                .iter()
                .any(|step| step.contains("USING INDEX runs_by_idempotency_key")),
            "{keyed:?}"
        );
    }

    #[test]
    fn upgrading_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        // A database at version 2, with a run in it.
        let mut conn = database_at(&dir.path().join("old.db"), 2);
        conn.execute_batch(
            "INSERT INTO runs VALUES ('r1', 'wf', '1.0.0', 'running', '{}', 'd', NULL, NULL, NULL, 1, 1);
             INSERT INTO steps VALUES ('r1', 'a', 0, 'p', 'succeeded', '{\"x\":1}', 0.5, 'ok', NULL, NULL, 1);
             INSERT INTO attempts VALUES ('r1', 'a', 1, 'i', 'succeeded', NULL, 1, 2, 3, NULL, 4, '{}');
             INSERT INTO events VALUES ('r1', 1, 1, 'run_created', NULL, '{}');
             INSERT INTO state VALUES ('r1', 'k', 'v');",
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let count = |table: &str| -> i64 {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE run_id = 'r1'"),
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        for table in ["steps", "attempts", "state"] {
            assert_eq!(count(table), 1, "{table} kept its row");
        }
        let run: (String, Option<String>, i64) = conn
            .query_row(
                "SELECT status, idempotency_key, lease_epoch FROM runs WHERE id = 'r1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(run, ("running".into(), None, 0), "runs kept its row");
        // Foreign keys are back on once the migrations are done.
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let output: String = conn
            .query_row(
                "SELECT output FROM steps WHERE run_id = 'r1' AND step_id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(output, "{\"x\":1}");
        // The run's one event, now at its number's first key.
        let event: (i64, String) = conn
            .query_row(
                "SELECT e.key, e.kind FROM events e JOIN runs r ON e.key = (r.num << 24) + 1 WHERE r.id = 'r1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(event, ((1 << 24) + 1, "run_created".into()));
        let without_rowid: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('runs', 'steps', 'attempts', 'state') AND sql LIKE '%WITHOUT ROWID%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without_rowid, 4);
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, MIGRATIONS.last().unwrap().0);
    }

    #[test]
    fn a_database_from_a_newer_weir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let mut conn = open(&path, Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        let known = MIGRATIONS.last().unwrap().0;
        conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [known + 1])
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the database is at schema version {}, written by a newer Weir; this Weir knows versions up to {known}: upgrade Weir to open it",
                known + 1
            )
        );
        // Opening the store says which file.
        let err = crate::store::SqliteStore::open(&path, Durability::Normal).unwrap_err();
        assert!(format!("{err:#}").contains("new.db"), "{err:#}");
    }

    #[test]
    fn a_migration_that_would_leave_dangling_rows_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let before = MIGRATIONS[MIGRATIONS.len() - 2].0;
        let mut conn = database_at(&dir.path().join("dangling.db"), before);
        // A step of a run that is not there (written with foreign keys off).
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO steps (run_id, step_id, position, plugin_digest, status) VALUES ('ghost', 'a', 0, 'p', 'pending');
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "migrating left rows of steps that refer to no row; nothing was changed"
        );
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, before, "still at the old version");
    }

    /// A database at schema version 7 with runs `r1` (three events) and `r2` (one), created
    /// in that order; `extra` runs before the upgrade.
    fn journal_at_version_7(dir: &tempfile::TempDir, extra: &str) -> Connection {
        let conn = database_at(&dir.path().join("v7.db"), 7);
        conn.execute_batch(&format!(
            "INSERT INTO runs (id, workflow, version, status, input, input_digest, created_ms, updated_ms) VALUES ('r2', 'wf', '1.0.0', 'pending', '{{}}', 'd', 20, 20);
             INSERT INTO runs (id, workflow, version, status, input, input_digest, created_ms, updated_ms) VALUES ('r1', 'wf', '1.0.0', 'running', '{{}}', 'd', 10, 10);
             INSERT INTO events VALUES ('r2', 1, 20, 'run_created', NULL, '{{}}', NULL, '{{\"steps\":[[\"a\",\"pa\"]]}}');
             INSERT INTO events VALUES ('r1', 1, 10, 'run_created', NULL, '{{}}', NULL, '{{\"steps\":[[\"a\",\"pa\"]]}}');
             INSERT INTO events VALUES ('r1', 2, 11, 'run_running', NULL, 'null', NULL, NULL);
             INSERT INTO events VALUES ('r1', 3, 12, 'step_started', 'a', '{{\"attempt\":1}}', 1, '{{\"input_digest\":\"i\"}}');
             {extra}"
        ))
        .unwrap();
        conn
    }

    #[test]
    fn upgrading_keys_each_event_by_its_run_number_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = journal_at_version_7(&dir, "");
        migrate(&mut conn).unwrap();
        let nums: Vec<(String, i64)> = conn
            .prepare("SELECT id, num FROM runs ORDER BY num")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(nums, [("r1".into(), 1), ("r2".into(), 2)]);
        let events: Vec<(i64, i64, String)> = conn
            .prepare("SELECT key, at_ms, kind FROM events ORDER BY key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let run1 = 1i64 << SEQ_BITS;
        let run2 = 2i64 << SEQ_BITS;
        assert_eq!(
            events,
            [
                (run1 + 1, 10, "run_created".into()),
                (run1 + 2, 11, "run_running".into()),
                (run1 + 3, 12, "step_started".into()),
                (run2 + 1, 20, "run_created".into()),
            ]
        );
        // The next run takes the next number, and the migrated run's log goes on where it was.
        let next: i64 = conn
            .query_row(
                "UPDATE run_numbers SET last = last + 1 RETURNING last",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(next, 3);
        let keys = super::super::rows::EventKeys::of(&conn, "r1").unwrap();
        assert_eq!(super::super::rows::last_seq(&conn, keys).unwrap(), 3);
        let (steps, attempts) = super::super::fold::fold(&conn, "r1", true).unwrap();
        assert_eq!(steps[0].status, crate::store::StepStatus::Running);
        assert_eq!(attempts[0].input_digest, "i");
    }

    #[test]
    fn an_event_of_no_run_stops_the_upgrade_before_it_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = journal_at_version_7(
            &dir,
            "INSERT INTO events VALUES ('ghost', 4, 1, 'run_created', NULL, '{}', NULL, NULL);",
        );
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event 4 of run \"ghost\" belongs to no run in the journal, and the upgrade to schema version 8 would drop it; nothing was changed (remove the run's events, or restore its row, and open the database again)"
        );
        let (version, events): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT MAX(version) FROM schema_migrations), (SELECT COUNT(*) FROM events WHERE run_id = 'ghost')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((version, events), (7, 1), "nothing changed");
    }

    #[test]
    fn an_event_beyond_a_runs_room_stops_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = journal_at_version_7(
            &dir,
            "INSERT INTO events VALUES ('r2', 16777216, 1, 'run_running', NULL, 'null', NULL, NULL);",
        );
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event 16777216 of run \"r2\" is outside the 1 to 16777215 a run's log can hold from schema version 8 on; nothing was changed"
        );
    }

    #[test]
    fn a_runs_events_are_read_as_one_range_of_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("plan.db"), Durability::Normal).unwrap();
        migrate(&mut conn).unwrap();
        // Where a run's log ends: one seek from the end of its range, no sort.
        let last = plan(
            &conn,
            "SELECT key FROM events WHERE key > ?1 AND key < ?2 ORDER BY key DESC LIMIT 1",
            [1, 2],
        );
        assert_eq!(
            last,
            ["SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"],
            "{last:?}"
        );
    }

    #[test]
    fn upgrading_rolls_up_the_calls_already_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database_at(&dir.path().join("v9.db"), 9);
        let call = |step: &str, model: &str, outcome: &str, latency_us: i64, at_ms: i64| {
            format!(
                "INSERT INTO model_calls VALUES ('r', '{step}', 1, {at_ms}, 'wf', '1.0.0', 'smart', 'p', {model}, NULL, NULL, '{{}}', NULL, '{outcome}', NULL, 10, 2, 30, {latency_us}, 1, {at_ms});"
            )
        };
        let day = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        conn.execute_batch(
            &[
                call("a", "'big'", "ok", 1_500, day + 1),
                call("a", "'big'", "cached", 200, day + 2),
                call("a", "NULL", "unavailable", 20_000_000, day - 1),
            ]
            .concat(),
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows = crate::store::sqlite::model::usage(&conn, "2026-12-06").unwrap();
        let brief: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.day.as_str(),
                    r.model.as_str(),
                    r.calls,
                    r.cached,
                    r.failed,
                    r.cost_micros,
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                ("2026-12-07", "big", 2, 1, 0, 60),
                ("2026-12-06", "smart", 1, 0, 1, 30)
            ]
        );
        // The buckets each call would have been counted in, had it been journaled since.
        use crate::store::usage::latency_bucket;
        let mut big = vec![0; crate::store::usage::LATENCY_BUCKETS];
        big[latency_bucket(1_500)] += 1;
        big[latency_bucket(200)] += 1;
        assert_eq!(rows[0].latency_buckets, big);
        assert_eq!(rows[1].latency_buckets[latency_bucket(20_000_000)], 1);
        assert_eq!(rows[0].latency_us, 1_700);
    }
}
