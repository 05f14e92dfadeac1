//! Human-readable output: the payload on stdout, everything else on stderr.
//!
//! Whatever a guest chose (log lines, captured stdout and stderr, failure messages, denied
//! targets, route labels) is shown escaped ([`crate::text::escape_for_terminal`]): one record
//! per line, nothing that moves the cursor, clears a line or reorders the text.

use crate::attempt::AttemptReport;
use crate::limits::Limits;
use crate::text::{escape_for_terminal as shown, json_for_terminal};

/// Lines of captured stdout and of stderr shown per attempt; the report keeps them all.
const STDIO_LINES_SHOWN: usize = 20;

/// A JSON value pretty-printed for a terminal: the same document, with invisible and
/// bidirectional characters escaped.
pub(crate) fn pretty_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(json_for_terminal)
}

/// A time (ms since the epoch) as RFC 3339 to the second, UTC.
pub(crate) fn time(at_ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `1.5 MiB`-style sizes.
pub(crate) fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// `12,345,678`-style counts.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn report(report: &AttemptReport, limits: &Limits) {
    for line in &report.logs {
        eprintln!("  {:<5} {}", line.level.as_str(), shown(&line.message));
    }
    if report.logs_dropped > 0 {
        eprintln!(
            "  ({} log lines dropped past the limit of {})",
            count(report.logs_dropped),
            count(limits.log_lines)
        );
    }
    for (name, text) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in text.lines().take(STDIO_LINES_SHOWN) {
            eprintln!("  {name} {}", shown(line));
        }
    }
    if report.stdio_dropped_bytes > 0 {
        eprintln!(
            "  ({} of stdout/stderr dropped past the limit)",
            size(report.stdio_dropped_bytes)
        );
    }
    for denial in &report.denials {
        eprintln!(
            "  denied {} {}: {}",
            denial.capability,
            shown(&denial.target),
            shown(&denial.reason)
        );
    }
    if report.denials_dropped > 0 {
        eprintln!(
            "  ({} more denials counted, not kept)",
            count(report.denials_dropped)
        );
    }

    let usage = &report.usage;
    let mut used = format!(
        "{:.2?} · memory peak {}",
        usage.elapsed,
        size(usage.memory_peak_bytes)
    );
    if let (Some(consumed), Some(limit)) = (usage.fuel_consumed, usage.fuel_limit) {
        used.push_str(&format!(" · fuel {} of {}", count(consumed), count(limit)));
    }
    match &report.outcome {
        Ok(output) => {
            outln!("{}", pretty_json(&output.payload).unwrap_or_default());
            let mut extras = String::new();
            if let Some(route) = &output.route {
                extras.push_str(&format!(" · route {}", shown(route)));
            }
            if let Some(confidence) = output.confidence {
                extras.push_str(&format!(" · confidence {confidence:.2}"));
            }
            eprintln!("ok · {used}{extras}");
        }
        Err(failure) => {
            eprintln!(
                "failed ({}): {}",
                failure.kind(),
                shown(&failure.to_string())
            );
            eprintln!("used · {used}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(1000), "1,000");
        assert_eq!(super::count(12_345_678), "12,345,678");
    }
}
