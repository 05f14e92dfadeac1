//! The `config` capability: the step's configuration table, read-only to the guest.

mod host;
mod table;

pub use table::{ConfigError, StepConfig};
