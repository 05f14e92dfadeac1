//! The rollout state machine: what a check's verdict or a person's command does to a rollout.
//! Pure functions of the rollout, the input and the time, so that the journal's events can be
//! replayed through them (`weir rollout explain`) and tested on a simulated clock.
//!
//! Hysteresis as in Argo Rollouts: a step moves on after two consecutive passing checks once
//! its hold has passed, and rolls back after two failed checks; a critical failure rate rolls
//! back at once; a step still inconclusive at its maximum hold pauses (never fails).

use serde_json::json;

use super::analysis::{Check, Verdict};
use super::{NewEvent, Rollout, State};

/// Passing checks in a row that move a step on.
pub const PASSES_TO_ADVANCE: u32 = 2;
/// Failed checks at a step that roll the rollout back.
pub const FAILS_TO_ROLL_BACK: u32 = 2;

/// A rollout after a change, with the events that record it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The rollout as it is now.
    pub rollout: Rollout,
    /// What to journal.
    pub events: Vec<NewEvent>,
}

/// Starts a pending rollout's first step (a plan of `[100]` is a cut-over: promoted at once).
pub fn begin(rollout: &Rollout, now_ms: i64) -> Outcome {
    let mut events = Vec::new();
    let next = enter_step(rollout, 0, now_ms, "the rollout started", &mut events);
    Outcome {
        rollout: next,
        events,
    }
}

/// What a check does to a ramping rollout.
pub fn after_check(rollout: &Rollout, check: &Check, now_ms: i64) -> Outcome {
    let mut r = rollout.clone();
    r.last_check_ms = Some(now_ms);
    r.updated_ms = now_ms;
    match check.verdict {
        Verdict::Pass => r.passes += 1,
        Verdict::Fail => {
            r.fails += 1;
            r.passes = 0;
        }
        Verdict::Critical | Verdict::Inconclusive => r.passes = 0,
    }
    let mut events = vec![NewEvent {
        kind: "check",
        data: json!({
            "step": r.step,
            "weight": r.weight,
            "passes": r.passes,
            "fails": r.fails,
            "check": check,
        }),
    }];
    let held = now_ms - r.held_since_ms;
    let next = match check.verdict {
        Verdict::Critical => finish(&r, State::RolledBack, &check.why, now_ms, &mut events),
        Verdict::Fail if r.fails >= FAILS_TO_ROLL_BACK => finish(
            &r,
            State::RolledBack,
            &format!("{} failed checks at {}%: {}", r.fails, r.weight, check.why),
            now_ms,
            &mut events,
        ),
        Verdict::Pass if r.passes >= PASSES_TO_ADVANCE && held >= r.plan.hold_ms => {
            let why = format!(
                "{} passing checks at {}% after a hold of {} s",
                r.passes,
                r.weight,
                held / 1000
            );
            enter_step(&r, r.step + 1, now_ms, &why, &mut events)
        }
        Verdict::Inconclusive if held >= r.plan.max_hold_ms => {
            r.state = State::Paused;
            r.reason = format!(
                "inconclusive for {} s at {}% (max hold): {}",
                held / 1000,
                r.weight,
                check.why
            );
            events.push(NewEvent {
                kind: "paused",
                data: json!({"step": r.step, "weight": r.weight, "cause": "inconclusive", "why": r.reason}),
            });
            r
        }
        _ => {
            r.reason = format!("at {}%: {}", r.weight, check.why);
            r
        }
    };
    Outcome {
        rollout: next,
        events,
    }
}

/// What a person may ask of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Hold the weight where it is.
    Pause,
    /// Go on checking from where it paused.
    Resume,
    /// Give the candidate every new run now.
    Promote,
    /// Stop: every new run on the stable version.
    Abort,
}

impl Order {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Promote => "promote",
            Self::Abort => "abort",
        }
    }
}

/// What an order does, or why it cannot be done in the rollout's state.
pub fn order(rollout: &Rollout, order: Order, by: &str, now_ms: i64) -> Result<Outcome, String> {
    let state = rollout.state;
    if state.is_final() {
        return Err(format!(
            "rollout {} is {} already: nothing is left to {}",
            rollout.id,
            state.as_str(),
            order.as_str()
        ));
    }
    let mut events = Vec::new();
    let why = format!("{} by {by}", past(order));
    let next = match order {
        Order::Pause if state == State::Paused => {
            return Err(format!("rollout {} is paused already", rollout.id));
        }
        Order::Pause if state == State::Pending => {
            return Err(format!(
                "rollout {} has not begun (no run goes to its candidate yet): abort it to stop it",
                rollout.id
            ));
        }
        Order::Pause => {
            let mut r = rollout.clone();
            r.state = State::Paused;
            r.reason = why.clone();
            r.updated_ms = now_ms;
            events.push(NewEvent {
                kind: "paused",
                data: json!({"step": r.step, "weight": r.weight, "cause": "manual", "by": by, "why": why}),
            });
            r
        }
        Order::Resume if state != State::Paused => {
            return Err(format!(
                "rollout {} is {}, not paused: only a paused rollout resumes",
                rollout.id,
                state.as_str()
            ));
        }
        Order::Resume => {
            let mut r = rollout.clone();
            r.state = State::Ramping;
            // The window keeps the runs it has; the hold counts again from now.
            r.held_since_ms = now_ms;
            r.passes = 0;
            r.reason = why.clone();
            r.updated_ms = now_ms;
            events.push(NewEvent {
                kind: "resumed",
                data: json!({"step": r.step, "weight": r.weight, "by": by}),
            });
            r
        }
        Order::Promote => finish(rollout, State::Promoted, &why, now_ms, &mut events),
        Order::Abort => finish(rollout, State::Aborted, &why, now_ms, &mut events),
    };
    // Every event of an order names who gave it: that is how `explain` tells an order
    // from a check's consequence.
    for event in &mut events {
        if let Some(data) = event.data.as_object_mut() {
            data.insert("by".into(), json!(by));
        }
    }
    Ok(Outcome {
        rollout: next,
        events,
    })
}

fn past(order: Order) -> &'static str {
    match order {
        Order::Pause => "paused",
        Order::Resume => "resumed",
        Order::Promote => "promoted",
        Order::Abort => "aborted",
    }
}

/// Moves to step `index`: its weight goes live with a fresh window, or, at 100%, the
/// candidate is promoted (a step at 100% has no stable arm left to compare with).
fn enter_step(
    rollout: &Rollout,
    index: usize,
    now_ms: i64,
    why: &str,
    events: &mut Vec<NewEvent>,
) -> Rollout {
    let weight = rollout.plan.steps.get(index).copied().unwrap_or(100);
    if weight >= 100 {
        return finish(rollout, State::Promoted, why, now_ms, events);
    }
    let mut r = rollout.clone();
    r.state = State::Ramping;
    r.step = index;
    r.weight = weight;
    r.passes = 0;
    r.fails = 0;
    r.window_since_ms = now_ms;
    r.held_since_ms = now_ms;
    r.last_check_ms = None;
    r.reason = format!("at {weight}%: {why}");
    r.updated_ms = now_ms;
    events.push(NewEvent {
        kind: "ramping",
        data: json!({"step": index, "weight": weight, "why": why}),
    });
    r
}

fn finish(
    rollout: &Rollout,
    state: State,
    why: &str,
    now_ms: i64,
    events: &mut Vec<NewEvent>,
) -> Rollout {
    let mut r = rollout.clone();
    r.state = state;
    r.weight = if state == State::Promoted { 100 } else { 0 };
    r.reason = why.to_string();
    r.updated_ms = now_ms;
    events.push(NewEvent {
        kind: state.as_str(),
        data: json!({"step": r.step, "weight": r.weight, "why": why}),
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::figures::{ArmFigures, Window};
    use crate::rollout::plan::Plan;

    const MIN: i64 = 60_000;

    fn rollout() -> Rollout {
        let mut plan = Plan::with_steps(vec![10, 50, 100]);
        plan.hold_ms = 30 * MIN;
        plan.max_hold_ms = 60 * MIN;
        Rollout {
            id: "r".into(),
            workflow: "triage".into(),
            from: "1.0.0".into(),
            to: "2.0.0".into(),
            plan,
            state: State::Pending,
            step: 0,
            weight: 0,
            passes: 0,
            fails: 0,
            window_since_ms: 0,
            held_since_ms: 0,
            last_check_ms: None,
            reason: String::new(),
            created_ms: 0,
            updated_ms: 0,
            revision: 0,
        }
    }

    fn check(verdict: Verdict) -> Check {
        Check {
            window: Window {
                since_ms: 0,
                until_ms: 0,
            },
            stable: ArmFigures::default(),
            candidate: ArmFigures::default(),
            metrics: Vec::new(),
            verdict,
            why: format!("{verdict:?}"),
        }
    }

    /// Runs verdicts through the machine every 10 simulated minutes.
    fn drive(verdicts: &[Verdict]) -> (Rollout, Vec<&'static str>) {
        let mut r = begin(&rollout(), 0).rollout;
        let mut kinds = Vec::new();
        for (i, v) in verdicts.iter().enumerate() {
            let out = after_check(&r, &check(*v), (i as i64 + 1) * 10 * MIN);
            kinds.extend(out.events.iter().map(|e| e.kind).filter(|k| *k != "check"));
            r = out.rollout;
        }
        (r, kinds)
    }

    #[test]
    fn passes_move_on_only_after_the_hold() {
        use Verdict::Pass;
        // Two passes at 10 and 20 minutes: the hold of 30 is not over; the third moves on.
        let (r, kinds) = drive(&[Pass, Pass]);
        assert_eq!((r.state, r.weight), (State::Ramping, 10));
        assert!(kinds.is_empty());
        let (r, kinds) = drive(&[Pass, Pass, Pass]);
        assert_eq!((r.state, r.weight, r.step), (State::Ramping, 50, 1));
        assert_eq!(kinds, ["ramping"]);
        // Three more at 50: the next step is 100, which is the promotion.
        let (r, kinds) = drive(&[Pass; 6]);
        assert_eq!((r.state, r.weight), (State::Promoted, 100));
        assert_eq!(kinds, ["ramping", "promoted"]);
    }

    #[test]
    fn two_failures_or_one_critical_roll_back() {
        use Verdict::{Critical, Fail, Pass};
        let (r, kinds) = drive(&[Fail, Pass, Fail]);
        assert_eq!((r.state, r.weight), (State::RolledBack, 0));
        assert_eq!(kinds, ["rolled_back"]);
        let (r, _) = drive(&[Critical]);
        assert_eq!(r.state, State::RolledBack);
        // A failure interrupts a pass streak.
        let (r, _) = drive(&[Pass, Fail, Pass]);
        assert_eq!((r.state, r.weight, r.passes), (State::Ramping, 10, 1));
    }

    #[test]
    fn inconclusive_pauses_at_the_max_hold_and_resumes_by_hand() {
        let (r, kinds) = drive(&[Verdict::Inconclusive; 5]);
        assert_eq!(r.state, State::Ramping);
        assert!(kinds.is_empty());
        let (r, kinds) = drive(&[Verdict::Inconclusive; 6]);
        assert_eq!((r.state, r.weight), (State::Paused, 10));
        assert_eq!(kinds, ["paused"]);
        let resumed = order(&r, Order::Resume, "ana", 61 * MIN).unwrap().rollout;
        assert_eq!(resumed.state, State::Ramping);
        assert_eq!(resumed.held_since_ms, 61 * MIN);
        assert_eq!(resumed.window_since_ms, r.window_since_ms);
        assert!(order(&resumed, Order::Resume, "ana", 62 * MIN).is_err());
        let aborted = order(&resumed, Order::Abort, "ana", 63 * MIN)
            .unwrap()
            .rollout;
        assert_eq!((aborted.state, aborted.weight), (State::Aborted, 0));
        let err = order(&aborted, Order::Promote, "ana", 64 * MIN).unwrap_err();
        assert!(err.contains("aborted already"), "{err}");
    }
}
