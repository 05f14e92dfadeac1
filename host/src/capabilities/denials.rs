//! The refusals of one attempt, bounded: a guest that is refused in a loop, with targets of
//! its own choosing, must not grow the host's memory, its log or the journal.
//!
//! The first [`MAX_KEPT_DENIALS`] refusals are kept (each target cut to
//! [`MAX_DENIAL_TARGET_BYTES`]) and logged; later ones are only counted, and one line says
//! that logging stopped.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::text::truncate;

/// Refusals kept, and logged, per attempt; later ones are counted. Enough to show what a step
/// tried; a step refused more often than this is looping on it.
pub const MAX_KEPT_DENIALS: usize = 32;
/// Longest target kept for one refusal (a host, an address, a path, a model alias), in bytes;
/// the rest is cut with a marker. Real targets are far shorter.
pub const MAX_DENIAL_TARGET_BYTES: usize = 256;
/// Longest reason kept for one refusal, in bytes.
const MAX_DENIAL_REASON_BYTES: usize = 512;

/// One refused request: what the guest asked for and was not granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The capability that refused (`http`, `sockets`, `files`, `model`).
    pub capability: &'static str,
    /// What was asked for: a host, an address, a path (cut to its bound).
    pub target: String,
    /// Why it was refused.
    pub reason: String,
}

#[derive(Debug, Default)]
struct Kept {
    denials: Vec<Denial>,
    dropped: u64,
}

/// Denials recorded during one attempt; clones share it with the callbacks that refuse.
#[derive(Debug, Clone, Default)]
pub(crate) struct DenialLog(Arc<Mutex<Kept>>);

impl DenialLog {
    /// Records one refusal: kept and logged up to the bound, counted past it.
    pub(crate) fn record(&self, capability: &'static str, target: String, reason: &str) {
        let mut kept = self.0.lock().expect("denial log poisoned");
        if kept.denials.len() >= MAX_KEPT_DENIALS {
            if kept.dropped == 0 {
                tracing::warn!(
                    capability,
                    kept = MAX_KEPT_DENIALS,
                    "further requests denied to this attempt are counted, not logged"
                );
            }
            kept.dropped += 1;
            return;
        }
        let target = truncate(target, MAX_DENIAL_TARGET_BYTES);
        let reason = truncate(reason.to_string(), MAX_DENIAL_REASON_BYTES);
        tracing::warn!(
            capability,
            target = %crate::text::escape_for_terminal(&target),
            reason = %crate::text::escape_for_terminal(&reason),
            "request denied"
        );
        kept.denials.push(Denial {
            capability,
            target,
            reason,
        });
    }

    /// The kept denials and the number past the bound, leaving the log empty.
    pub(crate) fn take(&self) -> (Vec<Denial>, u64) {
        let mut kept = self.0.lock().expect("denial log poisoned");
        let dropped = std::mem::take(&mut kept.dropped);
        (std::mem::take(&mut kept.denials), dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_past_the_bound_are_counted_and_targets_cut() {
        let log = DenialLog::default();
        for i in 0..MAX_KEPT_DENIALS + 10 {
            log.record(
                "model",
                format!("{i}{}", "a".repeat(1 << 20)),
                "not granted",
            );
        }
        let (kept, dropped) = log.take();
        assert_eq!(kept.len(), MAX_KEPT_DENIALS);
        assert_eq!(dropped, 10);
        assert!(
            kept.iter()
                .all(|d| d.target.len() <= MAX_DENIAL_TARGET_BYTES + crate::text::MARKER_BYTES)
        );
        assert!(kept[0].target.ends_with("… [truncated, 1048577 bytes]"));
        assert_eq!(log.take(), (Vec::new(), 0));
    }
}
