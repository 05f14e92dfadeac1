//! The `state` capability: small key/value state scoped to a run and journaled with it.
//!
//! Inside a workflow run the state lives in the store, so it survives a crash and later
//! steps and later attempts see it; for a single `weir step run` it lives in memory for the
//! attempt. Keys, values and the number of keys are bounded so a step cannot use the journal
//! as bulk storage.

mod host;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::Store;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Keys one run may hold.
pub const MAX_KEYS: u64 = 1_000;

/// Where a run's state lives.
#[derive(Clone)]
pub enum StateScope {
    /// In memory, for one-off steps.
    Memory(Arc<Mutex<HashMap<String, String>>>),
    /// In the journal, for workflow runs.
    Journal {
        /// The store.
        store: Arc<dyn Store>,
        /// The run.
        run_id: String,
    },
}

impl Default for StateScope {
    fn default() -> Self {
        Self::Memory(Arc::default())
    }
}

impl std::fmt::Debug for StateScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("StateScope::Memory"),
            Self::Journal { run_id, .. } => write!(f, "StateScope::Journal({run_id})"),
        }
    }
}

impl StateScope {
    /// The value under `key`.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            Self::Memory(map) => Ok(map.lock().expect("state poisoned").get(key).cloned()),
            Self::Journal { store, run_id } => store.state_get(run_id, key).await,
        }
    }

    /// Sets or (with `None`) removes `key`, enforcing the limits; the error names the limit.
    pub async fn set(&self, key: &str, value: Option<&str>) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "state key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ));
        }
        if let Some(v) = value
            && v.len() > MAX_VALUE_BYTES
        {
            return Err(format!(
                "state value for {key:?} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                v.len()
            ));
        }
        match self {
            Self::Memory(map) => {
                let mut map = map.lock().expect("state poisoned");
                match value {
                    None => {
                        map.remove(key);
                    }
                    Some(v) => {
                        if !map.contains_key(key) && map.len() as u64 >= MAX_KEYS {
                            return Err(format!(
                                "the run already holds {MAX_KEYS} state keys, the limit"
                            ));
                        }
                        map.insert(key.to_string(), v.to_string());
                    }
                }
                Ok(())
            }
            Self::Journal { store, run_id } => store
                .state_set(run_id, key, value, MAX_KEYS)
                .await
                .map_err(|e| format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_state_enforces_limits() {
        let state = StateScope::default();
        state.set("k", Some("v")).await.unwrap();
        assert_eq!(state.get("k").await.unwrap().as_deref(), Some("v"));
        state.set("k", None).await.unwrap();
        assert_eq!(state.get("k").await.unwrap(), None);
        let err = state.set("", Some("v")).await.unwrap_err();
        assert_eq!(err, "state key must be 1 to 256 bytes, got 0");
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(
            state
                .set("k", Some(&big))
                .await
                .unwrap_err()
                .contains("the limit is 65536")
        );
    }
}
