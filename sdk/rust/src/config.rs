//! The step's configuration table, from the workflow file or `weir step run --config`.

use serde::de::DeserializeOwned;

use crate::StepError;
use crate::bindings::weir::step::config as wit;

/// The value under `key`, deserialized as `T`; `Ok(None)` when the key is absent.
///
/// A value of the wrong shape is a [`StepError::Fatal`] naming the key, since no retry can
/// fix a bad configuration.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StepError> {
    let Some(text) = wit::get(key) else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StepError::fatal(format!("config key `{key}` has the wrong shape: {e}")))
}

/// Like [`get`], but a missing key is a [`StepError::Fatal`] that names it.
pub fn require<T: DeserializeOwned>(key: &str) -> Result<T, StepError> {
    get(key)?.ok_or_else(|| StepError::fatal(format!("config key `{key}` is required but not set")))
}

/// The whole configuration table as a JSON object.
pub fn all() -> serde_json::Value {
    serde_json::from_str(&wit::all())
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}
