//! The last step of the triage workflow: turns the ticket and its classification into the
//! decision a help desk acts on (queue, priority, summary, status).
//!
//! Config: `status` (`routed` by default; the review branch sets `needs_review`).

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Meta, Output, Step, StepError, config};

/// Words that make a ticket urgent whatever its queue.
const URGENT_WORDS: &[&str] = &[
    "urgent",
    "asap",
    "down",
    "outage",
    "blocked",
    "immediately",
    "502",
    "500",
    "charged twice",
];
/// Longest summary kept; the full text stays in the journal.
const SUMMARY_CHARS: usize = 80;

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Classification {
    label: String,
    confidence: f64,
}

#[derive(Deserialize)]
struct Input {
    ticket: Ticket,
    classification: Classification,
    /// The ticket's dedupe key (the `fingerprint` step's), passed through when given.
    #[serde(default)]
    fingerprint: Option<String>,
}

#[derive(Serialize)]
struct Decision {
    queue: String,
    priority: &'static str,
    status: String,
    confidence: f64,
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}

struct FormatTriage;

impl Step for FormatTriage {
    type Input = Input;
    type Output = Decision;

    fn meta() -> Meta {
        Meta::new("format-triage", "1.0.0").description("Formats the triage decision").output_schema(serde_json::json!({
            "type": "object",
            "required": ["queue", "priority", "status", "summary"],
            "properties": {"priority": {"enum": ["high", "normal"]}, "status": {"enum": ["routed", "needs_review"]}}
        }))
    }

    fn run(_ctx: &Context, input: Input) -> Result<Output<Decision>, StepError> {
        let status: String = config::get("status")?.unwrap_or_else(|| "routed".into());
        if status != "routed" && status != "needs_review" {
            return Err(StepError::fatal(format!(
                "config `status` must be routed or needs_review, not {status:?}"
            )));
        }
        let text = format!("{} {}", input.ticket.subject, input.ticket.body).to_lowercase();
        let priority = if URGENT_WORDS.iter().any(|w| text.contains(w)) {
            "high"
        } else {
            "normal"
        };
        let subject = input.ticket.subject.trim();
        let source = if subject.is_empty() {
            input.ticket.body.trim()
        } else {
            subject
        };
        let mut summary: String = source.chars().take(SUMMARY_CHARS).collect();
        if source.chars().count() > SUMMARY_CHARS {
            summary.push('…');
        }
        let decision = Decision {
            queue: input.classification.label,
            priority,
            status,
            confidence: input.classification.confidence,
            summary,
            fingerprint: input.fingerprint,
        };
        Ok(Output::new(decision).confidence(input.classification.confidence))
    }
}

weir_sdk::export_step!(FormatTriage);
