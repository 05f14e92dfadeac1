//! Structured log lines, attributed by the host to the run, step and attempt.
//!
//! The host bounds how much one attempt may log; lines past the bound are counted and
//! dropped, so logging can never exhaust the host.

use crate::bindings::weir::step::log::{self as wit, Level};

/// Logs at trace level.
pub fn trace(message: &str) {
    wit::log(Level::Trace, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    wit::log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    wit::log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    wit::log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    wit::log(Level::Error, message);
}
