//! The `weir:step/log` import, implemented on the attempt's state.

use super::{LogLevel, LogLine, LogSource};
use crate::attempt::AttemptState;
use crate::bindings::weir::step::log::{Host, Level};

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

impl Host for AttemptState {
    fn log(&mut self, level: Level, message: String) {
        let level = LogLevel::from(level);
        let line = LogLine {
            level,
            source: LogSource::Guest,
            message,
        };
        if let Some(kept) = self.log.push_kept(line) {
            self.emit(&kept);
        }
    }
}
