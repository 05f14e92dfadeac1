//! Model calls on a replay: answered from the recorded run's journal, never sent. A call
//! must ask what the recorded call at the same position asked (alias, rendered messages,
//! parameters); otherwise it is a `nondeterminism` finding and the step gets a refusal.

use serde_json::{Value, json};

use std::sync::atomic::Ordering;

use super::findings::Nondeterminism;
use super::recorded::{Matching, OnMiss, Recorded, Tally};
use crate::model::{CallScope, Message, ModelCall, ModelFailure, ModelReply, TokenUsage};
use crate::store::ModelCallRecord;

/// What a recorded call asked, in the form a replayed call is compared in.
pub fn asked_of_record(call: &ModelCallRecord) -> Value {
    let request = &call.request;
    let mut asked = json!({"alias": call.alias, "messages": request["messages"]});
    // A call refused before it was built (no provider) journals its messages only.
    if request.get("model").is_some() {
        asked["max_tokens"] = request["max_tokens"].clone();
        asked["temperature"] = request["temperature"].clone();
        asked["json"] = request["json"].clone();
    }
    asked
}

/// Answers `call` (its messages rendered and redacted as they would be sent) from the
/// record, walking `chain` (the alias and its fallbacks) as the live call did; `None` when
/// a candidate's call is not on record and is to be made for real (`--on-miss live`).
pub fn answer(
    recorded: &Recorded,
    scope: &CallScope,
    call: &ModelCall,
    messages: &[Message],
    chain: &[String],
) -> Option<Result<ModelReply, ModelFailure>> {
    let asked = |alias: &str| {
        let max_tokens = call.max_tokens.unwrap_or(scope.policy.max_tokens);
        let mut asked = json!({
            "alias": alias, "messages": messages, "max_tokens": max_tokens,
            "temperature": call.temperature, "json": call.json,
        });
        if let Some(redactor) = &scope.redactor {
            redactor.strings("request", &mut asked);
        }
        asked
    };
    match recorded.matching {
        Matching::Position => Some(strict(recorded, scope, chain, asked)),
        Matching::Request(on_miss) => candidate(recorded, scope, chain, asked, on_miss),
    }
}

/// A candidate's call: answered by the first unused recorded call of the step that asked
/// the same, whatever its position.
fn candidate(
    recorded: &Recorded,
    scope: &CallScope,
    chain: &[String],
    asked: impl Fn(&str) -> Value,
    on_miss: OnMiss,
) -> Option<Result<ModelReply, ModelFailure>> {
    let mut last = None;
    for alias in chain {
        let asked = asked(alias);
        // The recorded form carries only what the recorded call journaled.
        let Some(record) = recorded.find_model_call(&scope.step_id, &asked) else {
            Tally::add(&recorded.tally.missed);
            return match on_miss {
                OnMiss::Live => {
                    Tally::add(&recorded.tally.live);
                    None
                }
                OnMiss::Fail => Some(Err(ModelFailure::Rejected(format!(
                    "evaluation: no recorded call of step `{}` asked this (--on-miss fail)",
                    scope.step_id
                )))),
                OnMiss::Skip => {
                    recorded.tally.skipped.store(true, Ordering::Relaxed);
                    Some(Err(ModelFailure::Unavailable(format!(
                        "evaluation: no recorded call of step `{}` asked this (--on-miss skip)",
                        scope.step_id
                    ))))
                }
            };
        };
        Tally::add(&recorded.tally.answered);
        recorded
            .tally
            .answered_cost_micros
            .fetch_add(record.cost_micros, Ordering::Relaxed);
        let failure = match record.outcome.as_str() {
            "ok" | "cached" => return Some(Ok(reply(alias, &record))),
            kind => ModelFailure::from_kind(kind, record.error.clone().unwrap_or_default()),
        };
        let next = failure.falls_through();
        last = Some(failure);
        if !next {
            break;
        }
    }
    last.map(Err)
}

/// A strict replay's call: the recorded call at the same position must have asked the same.
fn strict(
    recorded: &Recorded,
    scope: &CallScope,
    chain: &[String],
    asked: impl Fn(&str) -> Value,
) -> Result<ModelReply, ModelFailure> {
    let mut last = None;
    for alias in chain {
        let (position, record) = recorded.next_model_call(&scope.step_id, scope.attempt);
        let mut asked = asked(alias);
        let Some(record) = record else {
            recorded.findings.push(Nondeterminism::new(
                &scope.step_id,
                scope.attempt,
                format!("model call {position}"),
                Value::Null,
                asked,
            ));
            return Err(ModelFailure::Unavailable(format!(
                "replay: the record holds no model call {position} for this attempt"
            )));
        };
        let expected = asked_of_record(&record);
        if let Value::Object(map) = &mut asked {
            map.retain(|key, _| expected.get(key).is_some());
        }
        if expected != asked {
            recorded.findings.push(Nondeterminism::new(
                &scope.step_id,
                scope.attempt,
                format!("model call {position}"),
                expected,
                asked,
            ));
            return Err(ModelFailure::Rejected(format!(
                "replay: model call {position} differs from the record; nothing was sent"
            )));
        }
        let failure = match record.outcome.as_str() {
            "ok" | "cached" => return Ok(reply(alias, &record)),
            kind => ModelFailure::from_kind(kind, record.error.clone().unwrap_or_default()),
        };
        let next = failure.falls_through();
        last = Some(failure);
        if !next {
            break;
        }
    }
    Err(last.unwrap_or_else(|| ModelFailure::NotConfigured("replay: no alias to call".into())))
}

fn reply(alias: &str, record: &ModelCallRecord) -> ModelReply {
    let response = record.response.clone().unwrap_or_default();
    ModelReply {
        content: response["content"].as_str().unwrap_or_default().to_string(),
        alias: alias.to_string(),
        model: response["model"]
            .as_str()
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| record.model.clone())
            .unwrap_or_default(),
        usage: TokenUsage {
            prompt_tokens: record.prompt_tokens,
            completion_tokens: record.completion_tokens,
        },
        cost_micros: record.cost_micros,
        cached: record.outcome == "cached",
    }
}
