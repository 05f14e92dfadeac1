//! `weir rollout explain`: every decision of a rollout made again from its journal.
//!
//! The events are run back through the same `analysis` and `machine`: each check's verdict
//! from the figures it journaled, each transition from that verdict (or from the order a
//! person gave), and each check's figures read again from the runs in its window. A decision that comes out otherwise is a
//! disagreement: the journal was changed, or this Weir decides differently from the one that
//! ran the rollout.

use serde::Serialize;

use super::analysis::{Check, analyse};
use super::figures::{ArmFigures, gather};
use super::machine::{self, Order, Outcome};
use super::{Plan, Rollout, RolloutEvent, State};
use crate::store::Store;

/// One decision, made again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The journal's events it covers (their `seq`).
    pub events: Vec<i64>,
    /// When.
    pub at_ms: i64,
    /// `start`, `check`, or the order (`pause`, `resume`, `promote`, `abort`).
    pub cause: String,
    /// What the journal says followed, by event kind.
    pub journaled: Vec<String>,
    /// What follows when decided again.
    pub recomputed: Vec<String>,
    /// A check's verdict and why, decided again.
    pub verdict: Option<String>,
    /// Where the runs in the window, read again now, differ from the figures the check used.
    pub figures_now: Vec<String>,
    /// Whether the decision came out the same.
    pub agrees: bool,
}

/// A rollout's decisions, made again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The rollout as stored.
    pub rollout: Rollout,
    /// Each decision.
    pub decisions: Vec<Decision>,
    /// Whether the events lead to the stored state, step and weight.
    pub state_agrees: bool,
    /// Whether every decision and the state agree.
    pub agrees: bool,
}

/// Makes every decision of `rollout` again.
pub async fn explain(store: &dyn Store, rollout: Rollout) -> anyhow::Result<Explanation> {
    let events = store.rollouts().rollout_events(&rollout.id).await?;
    let Some(first) = events.first().filter(|e| e.kind == "started") else {
        anyhow::bail!(
            "rollout {}'s journal does not begin with `started`",
            rollout.id
        );
    };
    let plan: Plan = serde_json::from_value(first.data["plan"].clone())?;
    let mut r = Rollout {
        state: State::Pending,
        plan,
        step: 0,
        weight: 0,
        passes: 0,
        fails: 0,
        last_check_ms: None,
        revision: 1,
        ..rollout.clone()
    };
    let mut decisions = Vec::new();
    let mut i = 1;
    while i < events.len() {
        let e = &events[i];
        if e.kind == "pending" {
            // Waiting for the candidate to be registered: no decision.
            i += 1;
            continue;
        }
        let (cause, outcome, verdict, figures_now) = if e.kind == "check" {
            let journaled: Check = serde_json::from_value(e.data["check"].clone())?;
            let again = analyse(
                &r.plan.analysis,
                r.plan.min_runs,
                journaled.window,
                journaled.stable.clone(),
                journaled.candidate.clone(),
            );
            let mut notes = Vec::new();
            if again.verdict != journaled.verdict {
                notes.push(format!(
                    "journaled verdict {:?}, decided again {:?}",
                    journaled.verdict, again.verdict
                ));
            }
            notes.extend(reread(store, &r, &journaled).await?);
            let verdict = format!("{:?}: {}", again.verdict, again.why).to_lowercase();
            let outcome = machine::after_check(&r, &again, e.at_ms);
            ("check".to_string(), outcome, Some(verdict), notes)
        } else if let Some(by) = e.data.get("by").and_then(|b| b.as_str()) {
            let order = match e.kind.as_str() {
                "paused" => Order::Pause,
                "resumed" => Order::Resume,
                "promoted" => Order::Promote,
                _ => Order::Abort,
            };
            let outcome = machine::order(&r, order, by, e.at_ms).unwrap_or_else(|_| Outcome {
                rollout: r.clone(),
                events: Vec::new(),
            });
            (order.as_str().to_string(), outcome, None, Vec::new())
        } else if r.state == State::Pending {
            (
                "start".to_string(),
                machine::begin(&r, e.at_ms),
                None,
                Vec::new(),
            )
        } else {
            decisions.push(Decision {
                events: vec![e.seq],
                at_ms: e.at_ms,
                cause: "none".into(),
                journaled: vec![e.kind.clone()],
                recomputed: Vec::new(),
                verdict: None,
                figures_now: Vec::new(),
                agrees: false,
            });
            i += 1;
            continue;
        };
        let recomputed: Vec<String> = outcome.events.iter().map(|e| e.kind.to_string()).collect();
        let span = recomputed.len().max(1).min(events.len() - i);
        let covered: &[RolloutEvent] = &events[i..i + span];
        let journaled: Vec<String> = covered.iter().map(|e| e.kind.clone()).collect();
        // The figures read again must match too: a journal edited consistently (figures
        // and verdict together) still disagrees with the runs.
        let agrees = journaled == recomputed && figures_now.is_empty();
        decisions.push(Decision {
            events: covered.iter().map(|e| e.seq).collect(),
            at_ms: e.at_ms,
            cause,
            journaled,
            recomputed,
            verdict,
            figures_now,
            agrees,
        });
        r = outcome.rollout;
        r.revision += 1;
        i += span;
    }
    let state_agrees = (r.state, r.step, r.weight) == (rollout.state, rollout.step, rollout.weight);
    let agrees = state_agrees && decisions.iter().all(|d| d.agrees);
    Ok(Explanation {
        rollout,
        decisions,
        state_agrees,
        agrees,
    })
}

/// The check's figures against the runs its window holds now.
async fn reread(store: &dyn Store, r: &Rollout, check: &Check) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    for (arm, journaled) in [("stable", &check.stable), ("candidate", &check.candidate)] {
        let now = gather(store, &r.workflow, &journaled.version, check.window).await?;
        notes.extend(compare(arm, journaled, &now));
    }
    Ok(notes)
}

fn compare(arm: &str, then: &ArmFigures, now: &ArmFigures) -> Vec<String> {
    [
        ("runs", then.runs, now.runs),
        ("failed", then.failed, now.failed),
        ("reviewed", then.reviewed, now.reviewed),
        ("rejected", then.rejected, now.rejected),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(what, a, b)| format!("{arm} {what}: {a} journaled, {b} in the runs now"))
    .collect()
}
