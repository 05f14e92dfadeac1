//! The `weir:step/state` import, implemented on the attempt's state.

use tracing::Instrument as _;

use crate::attempt::AttemptState;
use crate::bindings::weir::step::state::Host;

/// A span per host call, inside the attempt's span, so traces show what a step asked for.
/// The key is the guest's: cut to the longest valid key, and escaped, before a log shows it.
fn span(op: &'static str, key: &str) -> tracing::Span {
    let key = crate::text::truncated(key, super::MAX_KEY_BYTES);
    let key = crate::text::escape_for_terminal(&key);
    tracing::info_span!("host_call", capability = "state", op, key = %key)
}

impl Host for AttemptState {
    async fn get(&mut self, key: String) -> Option<String> {
        // No key longer than the bound can have been set; the store is not asked.
        if key.len() > super::MAX_KEY_BYTES {
            return None;
        }
        match self.state.get(&key).instrument(span("get", &key)).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "state read failed");
                None
            }
        }
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), String> {
        self.state
            .set(&key, Some(&value))
            .instrument(span("set", &key))
            .await
    }

    async fn delete(&mut self, key: String) {
        if let Err(e) = self
            .state
            .set(&key, None)
            .instrument(span("delete", &key))
            .await
        {
            tracing::warn!(error = %crate::text::escape_for_terminal(&e), "state delete failed");
        }
    }
}
