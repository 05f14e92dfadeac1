//! Deterministic routing that runs before any model: a ticket with no text routes to
//! `empty`, one that looks like spam (spam phrases, too many links) routes to `spam`, and
//! everything else to `ok`. Cheap checks first means the classifier never pays for junk.
//!
//! Config: `spam_phrases` (list of lower-case phrases; a default list otherwise) and
//! `max_links` (default 3).

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Meta, Output, Step, StepError, config};

const DEFAULT_SPAM_PHRASES: &[&str] = &[
    "click here",
    "crypto giveaway",
    "you have won",
    "winner",
    "free money",
    "limited offer",
    "act now",
    "casino",
    "viagra",
];

#[derive(Deserialize, Serialize)]
struct Ticket {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Routed {
    #[serde(flatten)]
    ticket: Ticket,
    signals: Vec<String>,
}

struct RouteTicket;

impl Step for RouteTicket {
    type Input = Ticket;
    type Output = Routed;

    fn meta() -> Meta {
        Meta::new("route-ticket", "1.0.0")
            .description("Routes empty and spam tickets away before any model runs")
    }

    fn run(_ctx: &Context, ticket: Ticket) -> Result<Output<Routed>, StepError> {
        let phrases: Vec<String> = config::get("spam_phrases")?
            .unwrap_or_else(|| DEFAULT_SPAM_PHRASES.iter().map(|p| p.to_string()).collect());
        let max_links: usize = config::get("max_links")?.unwrap_or(3);
        let text = format!("{} {}", ticket.subject, ticket.body).to_lowercase();

        let mut signals = Vec::new();
        if text.trim().is_empty() {
            signals.push("no text".to_string());
            return Ok(Output::new(Routed { ticket, signals })
                .route("empty")
                .confidence(1.0));
        }
        signals.extend(
            phrases
                .iter()
                .filter(|p| text.contains(p.as_str()))
                .map(|p| format!("spam phrase {p:?}")),
        );
        let links = text.matches("http://").count() + text.matches("https://").count();
        if links > max_links {
            signals.push(format!("{links} links"));
        }
        let route = if signals.is_empty() { "ok" } else { "spam" };
        Ok(Output::new(Routed { ticket, signals })
            .route(route)
            .confidence(1.0))
    }
}

weir_sdk::export_step!(RouteTicket);
