//! The `weir:step/state` import, implemented on the attempt's state.

use tracing::Instrument as _;

use crate::attempt::AttemptState;
use crate::bindings::weir::step::state::Host;

/// A span per host call, inside the attempt's span, so traces show what a step asked for.
fn span(op: &'static str, key: &str) -> tracing::Span {
    tracing::info_span!("host_call", capability = "state", op, key)
}

impl Host for AttemptState {
    async fn get(&mut self, key: String) -> Option<String> {
        match self.state.get(&key).instrument(span("get", &key)).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(key, error = %format!("{e:#}"), "state read failed");
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
            tracing::warn!(key, error = %e, "state delete failed");
        }
    }
}
