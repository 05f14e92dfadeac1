//! Small durable key/value state scoped to the run: what one step sets, later steps and
//! later attempts of the same run read. Values are strings; [`get`] and [`set`] convert
//! through JSON for any serde type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StepError;
use crate::bindings::weir::step::state as wit;

/// The value under `key`, deserialized from JSON; `Ok(None)` when unset.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StepError> {
    let Some(text) = wit::get(key) else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        StepError::fatal(format!(
            "state key `{key}` holds something of another shape: {e}"
        ))
    })
}

/// Stores `value` as JSON under `key`. Past the host's limits (key or value size, number of
/// keys) this is a [`StepError::Fatal`] naming the limit.
pub fn set<T: Serialize>(key: &str, value: &T) -> Result<(), StepError> {
    let text = serde_json::to_string(value)
        .map_err(|e| StepError::fatal(format!("state value for `{key}` is not JSON: {e}")))?;
    wit::set(key, &text).map_err(StepError::fatal)
}

/// Removes `key`.
pub fn delete(key: &str) {
    wit::delete(key);
}
