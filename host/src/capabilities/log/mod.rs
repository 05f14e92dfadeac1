//! The `log` capability: structured, levelled lines attributed to run, step and attempt.
//!
//! One attempt may emit at most `Limits::log_lines` lines and `Limits::log_bytes` bytes;
//! past either bound lines are counted and dropped, so a flooding guest cannot exhaust the
//! host's memory or its log pipeline. A line longer than [`MAX_LINE_BYTES`] is cut to it,
//! with a marker naming its full length, before it is counted.

mod host;

use serde::Serialize;

/// Longest log line kept, in bytes: a record is a line for people to read, not a payload,
/// and one huge line must not take the whole byte budget of the attempt.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

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
    pub(crate) fn push(&mut self, mut line: LogLine) -> bool {
        line.message = crate::text::truncate(line.message, MAX_LINE_BYTES);
        let size = line.message.len() as u64;
        if self.lines.len() as u64 >= self.max_lines || self.bytes + size > self.max_bytes {
            self.dropped += 1;
            return false;
        }
        self.bytes += size;
        self.lines.push(line);
        true
    }

    /// [`push`](Self::push), handing back the line as kept (cut to its bound) when it was.
    pub(crate) fn push_kept(&mut self, line: LogLine) -> Option<LogLine> {
        self.push(line)
            .then(|| self.lines.last().cloned())
            .flatten()
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
    fn a_huge_line_is_cut_to_its_bound() {
        let mut log = LogBuffer::new(10, 1 << 20);
        assert!(log.push(line(&"y".repeat(1 << 20))));
        let (lines, _) = log.into_parts();
        assert!(lines[0].message.len() <= MAX_LINE_BYTES + crate::text::MARKER_BYTES);
        assert!(lines[0].message.ends_with("… [truncated, 1048576 bytes]"));
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
