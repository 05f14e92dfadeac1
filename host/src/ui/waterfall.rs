//! A run's waterfall: each attempt as a bar on the run's time line, drawn as SVG here.

use std::fmt::Write as _;

use crate::store::{AttemptRecord, RunRecord, StepStatus};

const WIDTH: f64 = 800.0;
const LABEL: f64 = 160.0;
const ROW: f64 = 24.0;

/// Escapes text for SVG (XML) content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn class(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "ok",
        StepStatus::Failed => "failed",
        StepStatus::Running => "running",
        _ => "other",
    }
}

/// The SVG of `attempts`, in the order they started; an attempt still running ends at the
/// run's last change. One `rect` per attempt, with a `title` a browser shows on hover.
pub fn svg(run: &RunRecord, attempts: &[AttemptRecord]) -> String {
    let mut sorted: Vec<&AttemptRecord> = attempts.iter().collect();
    sorted.sort_by_key(|a| (a.started_ms, a.attempt));
    let start = run.created_ms;
    let end = sorted
        .iter()
        .map(|a| a.finished_ms.unwrap_or(run.updated_ms))
        .chain([run.updated_ms, start + 1])
        .max()
        .unwrap_or(start + 1);
    let span = (end - start).max(1) as f64;
    let height = ROW * sorted.len().max(1) as f64 + ROW;
    let scale = WIDTH - LABEL - 10.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="waterfall" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="attempts over time">"#
    );
    for (row, a) in sorted.iter().enumerate() {
        let y = ROW * row as f64;
        let from = (a.started_ms - start).max(0) as f64;
        let to = (a.finished_ms.unwrap_or(run.updated_ms) - start).max(0) as f64;
        let x = LABEL + from / span * scale;
        let width = ((to - from) / span * scale).max(2.0);
        let took = a
            .latency_us
            .map(|us| format!("{:.1} ms", us as f64 / 1000.0))
            .unwrap_or_else(|| "no result".into());
        let label = escape(&format!("{} #{}", a.step_id, a.attempt));
        let _ = write!(
            out,
            r#"<text x="4" y="{ty}" class="label">{label}</text><rect x="{x:.1}" y="{ry}" width="{width:.1}" height="{h}" class="{class}"><title>{label}: {status}, {took}</title></rect>"#,
            ty = y + ROW * 0.65,
            ry = y + 4.0,
            h = ROW - 8.0,
            class = class(a.status),
            status = a.status,
            took = escape(&took),
        );
    }
    let axis = ROW * sorted.len().max(1) as f64 + ROW * 0.7;
    let _ = write!(
        out,
        r#"<text x="{LABEL}" y="{axis}" class="axis">0 ms</text><text x="{right}" y="{axis}" class="axis" text-anchor="end">{total} ms</text></svg>"#,
        right = WIDTH - 10.0,
        total = end - start,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_svg() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
