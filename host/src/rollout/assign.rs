//! Which version a new run starts on while its workflow is under a rollout.
//!
//! Sticky by construction: a run's place on the line is a hash of the rollout and the run's
//! idempotency key (or its id), so every host computes the same arm with no shared state,
//! a client retrying with its key lands where it landed before, and raising the weight only
//! ever moves runs from the stable arm to the candidate (a key below 25% is below 50%). A run
//! keeps the version it started on: the rollout chooses once, at submission.

use sha2::{Digest, Sha256};

use super::{Rollout, State};

/// The two sides of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The version runs were on before the rollout.
    Stable,
    /// The version being rolled out.
    Candidate,
}

/// Where `key` falls on the rollout's line, in [0, 1).
pub fn position(rollout_id: &str, key: &str) -> f64 {
    let digest = Sha256::new()
        .chain_update(rollout_id.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable, so the position is uniform and never rounds to 1.
    (u64::from_be_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm a run with `key` takes at `weight` percent.
pub fn arm(rollout_id: &str, key: &str, weight: u32) -> Arm {
    if position(rollout_id, key) * 100.0 < f64::from(weight) {
        Arm::Candidate
    } else {
        Arm::Stable
    }
}

/// The version a new run with `key` starts on, by the workflow's latest rollout: split while
/// it runs, the candidate once promoted, the stable version once rolled back or aborted.
pub fn version_for(rollout: &Rollout, key: &str) -> (String, Arm) {
    let side = match rollout.state {
        State::Promoted => Arm::Candidate,
        State::RolledBack | State::Aborted => Arm::Stable,
        State::Pending | State::Ramping | State::Paused => arm(&rollout.id, key, rollout.weight),
    };
    let version = match side {
        Arm::Stable => rollout.from.clone(),
        Arm::Candidate => rollout.to.clone(),
    };
    (version, side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_arm_and_only_moves_to_the_candidate_as_the_weight_rises() {
        for i in 0..2_000 {
            let key = format!("ticket-{i}");
            let at = |w| arm("r1", &key, w);
            assert_eq!(at(25), at(25));
            if at(25) == Arm::Candidate {
                assert_eq!(at(50), Arm::Candidate, "{key}");
            }
            assert_eq!(at(0), Arm::Stable);
            assert_eq!(at(100), Arm::Candidate);
        }
    }

    #[test]
    fn the_split_lies_in_a_binomial_99_percent_interval() {
        let n = 10_000u32;
        let hits = (0..n)
            .filter(|i| arm("rollout-7", &i.to_string(), 5) == Arm::Candidate)
            .count() as f64;
        // 5% of 10,000: sd = sqrt(n p q) = 21.8; 2.576 sd either side of 500.
        let half = 2.576 * (f64::from(n) * 0.05 * 0.95).sqrt();
        assert!((hits - 500.0).abs() <= half, "{hits} candidates of {n}");
        // Another rollout puts other keys first: the first 5% is not always the same users.
        let both = (0..n)
            .filter(|i| {
                arm("rollout-7", &i.to_string(), 5) == Arm::Candidate
                    && arm("rollout-8", &i.to_string(), 5) == Arm::Candidate
            })
            .count();
        assert!(both < 60, "{both} keys were canaries in both rollouts");
    }
}
