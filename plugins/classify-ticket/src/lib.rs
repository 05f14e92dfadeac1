//! Classifies a support ticket into a queue (billing, technical, account, shipping,
//! feedback) with a multinomial naive Bayes model trained at build time. The route label is
//! the predicted queue and the confidence is its posterior probability, so a workflow can
//! send uncertain tickets to review. Config `temperature` (default 1) scales the log-scores
//! before they become posteriors: above 1 the confidences soften, below 1 they sharpen, and
//! the predicted queue never changes.

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Meta, Output, Step, StepError, config};

mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

#[derive(Serialize)]
struct Classification {
    label: String,
    confidence: f64,
    scores: serde_json::Map<String, serde_json::Value>,
}

struct ClassifyTicket;

impl Step for ClassifyTicket {
    type Input = Ticket;
    type Output = Classification;

    fn meta() -> Meta {
        Meta::new("classify-ticket", "1.1.0")
            .description(format!(
                "Naive Bayes ticket classifier: trained on {} tickets, {:.0}% accurate in 5-fold cross-validation",
                model::TRAINED_ON,
                model::CV_ACCURACY * 100.0
            ))
            .input_schema(serde_json::json!({
                "type": "object",
                "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                "anyOf": [{"required": ["subject"]}, {"required": ["body"]}]
            }))
            .output_schema(serde_json::json!({
                "type": "object",
                "required": ["label", "confidence", "scores"],
                "properties": {"label": {"enum": model::LABELS}, "confidence": {"type": "number"}}
            }))
    }

    fn run(_ctx: &Context, ticket: Ticket) -> Result<Output<Classification>, StepError> {
        let tokens = textkit::tokens(&format!("{} {}", ticket.subject, ticket.body));
        if tokens.is_empty() {
            return Err(StepError::invalid_input(
                "the ticket has no words to classify",
            ));
        }
        let mut scores: Vec<f64> = model::PRIORS.to_vec();
        for token in &tokens {
            let row = match model::WORDS.binary_search_by(|(w, _)| (*w).cmp(token.as_str())) {
                Ok(i) => model::WORDS[i].1,
                Err(_) => model::UNSEEN,
            };
            for (score, weight) in scores.iter_mut().zip(row) {
                *score += weight;
            }
        }
        // Temperature scaling, the usual calibration of a classifier's confidences: it
        // divides every log-score alike, so the order of the queues stays as it was.
        let temperature: f64 = config::get("temperature")?.unwrap_or(1.0);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(StepError::fatal(format!(
                "config key `temperature` is {temperature}: it must be a positive number"
            )));
        }
        // Softmax over log-scores gives posteriors without overflow.
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = scores
            .iter()
            .map(|s| ((s - max) / temperature).exp())
            .collect();
        let total: f64 = exp.iter().sum();
        let posteriors: Vec<f64> = exp.iter().map(|e| e / total).collect();
        // The top queue from the log-scores themselves: a large temperature can round every
        // posterior to the same value, and the queue must not depend on it.
        let best = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap_or(0);
        let label = model::LABELS[best].to_string();
        let confidence = (posteriors[best] * 1000.0).round() / 1000.0;
        let scores = model::LABELS
            .iter()
            .zip(&posteriors)
            .map(|(l, p)| {
                (
                    l.to_string(),
                    serde_json::json!((p * 1000.0).round() / 1000.0),
                )
            })
            .collect();
        Ok(Output::new(Classification {
            label: label.clone(),
            confidence,
            scores,
        })
        .confidence(confidence)
        .route(label))
    }
}

weir_sdk::export_step!(ClassifyTicket);
