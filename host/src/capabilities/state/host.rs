//! The `weir:step/state` import, implemented on the attempt's state.

use crate::attempt::AttemptState;
use crate::bindings::weir::step::state::Host;

impl Host for AttemptState {
    async fn get(&mut self, key: String) -> Option<String> {
        match self.state.get(&key).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(key, error = %format!("{e:#}"), "state read failed");
                None
            }
        }
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), String> {
        self.state.set(&key, Some(&value)).await
    }

    async fn delete(&mut self, key: String) {
        if let Err(e) = self.state.set(&key, None).await {
            tracing::warn!(key, error = %e, "state delete failed");
        }
    }
}
