//! The `weir:step/config` import, implemented on the attempt's state.

use crate::attempt::AttemptState;
use crate::bindings::weir::step::config::Host;

impl Host for AttemptState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).map(|v| v.to_string())
    }

    fn all(&mut self) -> String {
        self.config.to_json()
    }
}
