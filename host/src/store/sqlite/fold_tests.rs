//! Tests of folding a run's log, and of the journal's rules checked against it.

use serde_json::json;

use super::*;
use crate::store::sqlite::journal::advance;
use crate::store::sqlite::migrate::{database_at, migrate};
use crate::store::sqlite::writer::open;
use crate::store::{Advance, Basis, Durability};

fn result(step: &str, attempt: u32, output: Value) -> AttemptResult {
    AttemptResult {
        run_id: "r1".into(),
        step_id: step.into(),
        attempt,
        outcome: AttemptOutcome::Succeeded {
            output,
            confidence: Some(0.75),
            route: Some("on".into()),
        },
        latency_us: 42,
        fuel: Some(7),
        memory_peak: 65536,
        logs: json!({"logs": ["hi"]}),
        redacted: Vec::new(),
        tape: None,
    }
}

/// An advance of run `r1` that starts `step` (its input digest `i<step>`).
fn starting(step: &str) -> Advance {
    let mut advance = Advance::new("r1");
    advance.started = vec![(step.into(), format!("i{step}"))];
    advance
}

/// An advance of run `r1` that records this result.
fn finishing(step: &str, attempt: u32, output: Value) -> Advance {
    let mut advance = Advance::new("r1");
    advance.finished = Some(result(step, attempt, output));
    advance
}

/// A new database in `dir` holding run `id`, just created with these steps (step id, plugin
/// digest) and `pending`; with the keys of its events.
fn database_with_new_run(
    dir: &tempfile::TempDir,
    id: &str,
    steps: &[(&str, &str)],
) -> (Connection, EventKeys) {
    let mut c = open(&dir.path().join("new.db"), Durability::Normal).unwrap();
    migrate(&mut c).unwrap();
    let new = crate::store::NewRun {
        id: Some(id.into()),
        workflow: "wf".into(),
        version: "1.0.0".into(),
        input: json!({}),
        idempotency_key: None,
        steps: steps
            .iter()
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect(),
        redacted: Vec::new(),
        source_run: None,
    };
    let (_, keys) =
        crate::store::sqlite::journal::create(&c, &new, crate::store::RunStatus::Pending).unwrap();
    (c, keys.expect("created"))
}

/// A database at version 5 holding run `r1` in the middle of its journal: step `a`
/// succeeded, `b` is running its first attempt, `c` has not started.
fn journal_written_before_the_event_log(dir: &tempfile::TempDir) -> Connection {
    let mut c = database_at(&dir.path().join("old.db"), 5);
    c.execute_batch(
        "INSERT INTO runs (id, workflow, version, status, input, input_digest, created_ms, updated_ms) VALUES ('r1', 'wf', '1.0.0', 'running', '{}', 'd', 1, 1);
         INSERT INTO steps VALUES ('r1', 'a', 0, 'pa', 'succeeded', '{\"x\":1}', 0.5, 'ok', NULL, NULL, 1);
         INSERT INTO steps VALUES ('r1', 'b', 1, 'pb', 'running', NULL, NULL, NULL, NULL, NULL, 1);
         INSERT INTO steps VALUES ('r1', 'c', 2, 'pc', 'pending', NULL, NULL, NULL, NULL, NULL, 0);
         INSERT INTO attempts VALUES ('r1', 'a', 1, 'ia', 'succeeded', NULL, 10, 11, 1000, 5, 4096, '{}');
         INSERT INTO attempts VALUES ('r1', 'b', 1, 'ib', 'running', NULL, 12, NULL, NULL, NULL, NULL, NULL);
         INSERT INTO events VALUES ('r1', 1, 1, 'run_created', NULL, '{}');
         INSERT INTO events VALUES ('r1', 2, 10, 'step_started', 'a', '{\"attempt\":1}');
         INSERT INTO events VALUES ('r1', 3, 11, 'step_succeeded', 'a', '{\"attempt\":1}');
         INSERT INTO events VALUES ('r1', 4, 12, 'step_started', 'b', '{\"attempt\":1}');",
    )
    .unwrap();
    migrate(&mut c).unwrap();
    c
}

#[test]
fn a_run_journaled_before_the_upgrade_folds_to_its_rows_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let c = journal_written_before_the_event_log(&dir);
    let (steps, attempts) = fold(&c, "r1", true).unwrap();
    let status: Vec<_> = steps
        .iter()
        .map(|s| (s.step_id.as_str(), s.status))
        .collect();
    assert_eq!(
        status,
        [
            ("a", StepStatus::Succeeded),
            ("b", StepStatus::Running),
            ("c", StepStatus::Pending)
        ]
    );
    assert_eq!(steps[0].output, Some(json!({"x": 1})));
    assert_eq!(attempts.len(), 2);

    // `b`'s attempt, started before the upgrade, finishes after it, and `c` starts.
    let mut next = finishing("b", 1, json!({"y": 2}));
    next.started = vec![("c".into(), "ic".into())];
    let done = advance(&c, &next).unwrap();
    assert!(done.recorded);
    assert_eq!(done.attempts, [1]);

    let (steps, attempts) = fold(&c, "r1", true).unwrap();
    let b = &steps[1];
    assert_eq!(
        (b.status, b.output.clone(), b.confidence, b.route.as_deref()),
        (
            StepStatus::Succeeded,
            Some(json!({"y": 2})),
            Some(0.75),
            Some("on")
        )
    );
    assert_eq!(
        (steps[2].status, steps[2].attempts),
        (StepStatus::Running, 1)
    );
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a.step_id.as_str(),
                a.attempt,
                a.status,
                a.input_digest.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a", 1, StepStatus::Succeeded, "ia"),
            ("b", 1, StepStatus::Succeeded, "ib"),
            ("c", 1, StepStatus::Running, "ic")
        ]
    );
    let b1 = &attempts[1];
    assert_eq!(
        (b1.latency_us, b1.fuel, b1.memory_peak, b1.logs.clone()),
        (
            Some(42),
            Some(7),
            Some(65536),
            Some(json!({"logs": ["hi"]}))
        )
    );
    assert!(b1.finished_ms.is_some());
}

#[test]
fn a_step_takes_one_result_and_only_from_its_latest_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let c = journal_written_before_the_event_log(&dir);
    // After a crash, `b` starts again: attempt 2.
    let again = starting("b");
    assert_eq!(advance(&c, &again).unwrap().attempts, [2]);

    let stale = finishing("b", 1, json!("late"));
    assert!(!advance(&c, &stale).unwrap().recorded, "attempt 1 is stale");

    let current = finishing("b", 2, json!("now"));
    assert!(advance(&c, &current).unwrap().recorded);
    assert!(
        !advance(&c, &current).unwrap().recorded,
        "a second result for the step is refused"
    );
    let (steps, _) = fold(&c, "r1", true).unwrap();
    assert_eq!(steps[1].output, Some(json!("now")));

    // A finished step neither starts again nor is skipped; a pending one is skipped.
    let restart = starting("b");
    assert!(advance(&c, &restart).is_err());
    let mut skip = Advance::new("r1");
    skip.skipped = vec![("b".into(), "late".into()), ("c".into(), "route".into())];
    advance(&c, &skip).unwrap();
    let (steps, _) = fold(&c, "r1", true).unwrap();
    assert_eq!(steps[1].status, StepStatus::Succeeded);
    assert_eq!(
        (steps[2].status, steps[2].skip_reason.as_deref()),
        (StepStatus::Skipped, Some("route"))
    );
}

#[test]
fn a_basis_counts_only_while_the_log_ends_where_its_driver_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = journal_written_before_the_event_log(&dir);
    let again = starting("b");
    let started = advance(&c, &again).unwrap();
    let seq = started.seq.expect("SQLite reports the log's end");
    let basis = |attempts: &[(&str, u32)]| Basis {
        seq,
        attempts: attempts.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
    };

    // Another driver records `b`'s result after this one's last commit.
    let other = finishing("b", 2, json!("theirs"));
    assert!(advance(&c, &other).unwrap().recorded);

    // This driver's view is now stale: its result is checked, and refused.
    let mut mine = finishing("b", 2, json!("mine"));
    mine.basis = Some(basis(&[]));
    assert!(!advance(&c, &mine).unwrap().recorded);
    // A stale count is not used either: `c` starts at 1, not at 6.
    let mut start = starting("c");
    start.basis = Some(basis(&[("c", 5)]));
    assert_eq!(advance(&c, &start).unwrap().attempts, [1]);
    let (steps, _) = fold(&c, "r1", false).unwrap();
    assert_eq!(steps[1].output, Some(json!("theirs")));
}

#[test]
fn an_advance_on_a_basis_stops_at_a_change_made_since() {
    let dir = tempfile::tempdir().unwrap();
    let c = journal_written_before_the_event_log(&dir);
    let again = starting("b");
    let seq = advance(&c, &again).unwrap().seq.unwrap();
    let on_basis = |step: &str| {
        let mut next = finishing(step, 2, json!(step));
        next.basis = Some(Basis {
            seq,
            attempts: Default::default(),
        });
        next
    };

    // Cancelled after the driver's last commit (a status change is an event too): the
    // driver's result is still recorded, once, and it is told the run is over.
    crate::store::sqlite::journal::set_status(
        &c,
        "r1",
        crate::store::RunStatus::Cancelled,
        None,
        Some(json!({"reason": "stop"})),
    )
    .unwrap();
    let over = advance(&c, &on_basis("b")).unwrap();
    assert!(over.recorded && over.run_over, "{over:?}");
    let keys = EventKeys::of(&c, "r1").unwrap();
    let kinds: Vec<String> = c
        .prepare("SELECT kind FROM events WHERE key > ?1 AND key < ?2 ORDER BY key")
        .unwrap()
        .query_map([keys.after() + seq, keys.before()], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["run_cancelled", "step_succeeded"]);
    let (steps, _) = fold(&c, "r1", false).unwrap();
    assert_eq!(steps[1].output, Some(json!("b")));
}

#[test]
fn a_new_run_lists_its_steps_in_its_first_event_and_has_no_step_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (c, keys) = database_with_new_run(&dir, "r2", &[("b", "pb"), ("a", "pa")]);
    let rows: i64 = c
        .query_row("SELECT COUNT(*) FROM steps WHERE run_id = 'r2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 0);
    let (steps, _) = fold(&c, "r2", true).unwrap();
    assert_eq!(
        steps,
        [
            StepRecord::pending("b".into(), "pb".into()),
            StepRecord::pending("a".into(), "pa".into())
        ],
        "in workflow order, not by id"
    );
    assert_eq!(
        step_state(&c, "r2", keys, "a").unwrap(),
        Some((StepStatus::Pending, 0))
    );
    assert_eq!(step_state(&c, "r2", keys, "zz").unwrap(), None);
    let mut start = Advance::new("r2");
    start.started = vec![("a".into(), "ia".into())];
    assert_eq!(advance(&c, &start).unwrap().attempts, [1]);
    assert_eq!(
        step_state(&c, "r2", keys, "a").unwrap(),
        Some((StepStatus::Running, 1))
    );
}

#[test]
fn a_driver_that_knows_its_runs_keys_still_finds_a_run_cancelled_behind_its_back() {
    use crate::store::RunStatus;
    use crate::store::sqlite::journal::{advance_with, set_status};
    use crate::store::sqlite::rows::KnownKeys;

    let dir = tempfile::tempdir().unwrap();
    let (c, keys) = database_with_new_run(&dir, "r1", &[("a", "pa"), ("b", "pb")]);
    let known = KnownKeys::default();
    known.remember("r1", keys);
    let started = advance_with(&c, &starting("a"), &known).unwrap();
    assert_eq!(started.attempts, [1]);
    let basis = |seq| Basis {
        seq,
        attempts: [("b".to_string(), 0)].into(),
    };

    // Cancelled between the driver's commits: its next advance, on the driver's word about
    // where the log ends, finds the log moved on and is checked against the journal.
    set_status(&c, "r1", RunStatus::Cancelled, None, None).unwrap();
    let mut next = finishing("a", 1, json!({}));
    next.started = vec![("b".into(), "ib".into())];
    next.basis = Some(basis(started.seq.unwrap()));
    let refused = advance_with(&c, &next, &known).unwrap();
    assert!(refused.run_over, "{refused:?}");
    assert!(refused.attempts.is_empty(), "b does not start");
    assert_eq!(known.get("r1"), None, "a run that is over is forgotten");
    let (steps, _) = fold(&c, "r1", true).unwrap();
    assert_eq!(steps[1].status, StepStatus::Pending);
}
