//! The `log` capability: structured, levelled lines attributed to run, step and attempt.
//!
//! One attempt may emit at most `Limits::log_lines` lines and `Limits::log_bytes` bytes;
//! past either bound lines are counted and dropped, so a flooding guest cannot exhaust the
//! host's memory or its log pipeline.

mod host;

use serde::Serialize;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// The `log` import.
    Guest,
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

/// Severity, mirroring the WIT `level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One kept log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Where it came from.
    pub source: LogSource,
    /// The text.
    pub message: String,
}

/// The bounded log of one attempt.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    lines: Vec<LogLine>,
    bytes: u64,
    dropped: u64,
    max_lines: u64,
    max_bytes: u64,
}

impl LogBuffer {
    pub(crate) fn new(max_lines: u64, max_bytes: u64) -> Self {
        Self {
            max_lines,
            max_bytes,
            ..Self::default()
        }
    }

    /// Keeps the line if it fits in the budget; otherwise counts it as dropped.
    pub(crate) fn push(&mut self, line: LogLine) -> bool {
        let size = line.message.len() as u64;
        if self.lines.len() as u64 >= self.max_lines || self.bytes + size > self.max_bytes {
            self.dropped += 1;
            return false;
        }
        self.bytes += size;
        self.lines.push(line);
        true
    }

    pub(crate) fn into_parts(self) -> (Vec<LogLine>, u64) {
        (self.lines, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            level: LogLevel::Info,
            source: LogSource::Guest,
            message: message.into(),
        }
    }

    #[test]
    fn lines_past_the_count_bound_are_dropped_and_counted() {
        let mut log = LogBuffer::new(2, 1024);
        assert!(log.push(line("a")));
        assert!(log.push(line("b")));
        assert!(!log.push(line("c")));
        let (lines, dropped) = log.into_parts();
        assert_eq!(lines.len(), 2);
        assert_eq!(dropped, 1);
    }

    #[test]
    fn lines_past_the_byte_bound_are_dropped_and_counted() {
        let mut log = LogBuffer::new(100, 5);
        assert!(log.push(line("abcd")));
        assert!(!log.push(line("ef")));
        assert!(log.push(line("g")));
        assert_eq!(log.into_parts().1, 1);
    }
}
