//! Human-readable output: the payload on stdout, everything else on stderr.

use crate::attempt::AttemptReport;
use crate::limits::Limits;

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
        eprintln!("  {:<5} {}", line.level.as_str(), line.message);
    }
    if report.logs_dropped > 0 {
        eprintln!(
            "  ({} log lines dropped past the limit of {})",
            count(report.logs_dropped),
            count(limits.log_lines)
        );
    }
    for (name, text) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in text.lines().take(20) {
            eprintln!("  {name} {line}");
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
            denial.capability, denial.target, denial.reason
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
            outln!(
                "{}",
                serde_json::to_string_pretty(&output.payload).unwrap_or_default()
            );
            let mut extras = String::new();
            if let Some(route) = &output.route {
                extras.push_str(&format!(" · route {route}"));
            }
            if let Some(confidence) = output.confidence {
                extras.push_str(&format!(" · confidence {confidence:.2}"));
            }
            eprintln!("ok · {used}{extras}");
        }
        Err(failure) => {
            eprintln!("failed ({}): {failure}", failure.kind());
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
