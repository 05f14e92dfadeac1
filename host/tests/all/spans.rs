//! Tracing context stays with its own work: an attempt's span is current only while its
//! future is polled, so attempts in flight together never lend their spans to each other,
//! nor to log lines written elsewhere meanwhile (catalog reloads, shutdown, other runs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use weir::capabilities::config::StepConfig;
use weir::{AttemptContext, Limits, StepSpec};

use crate::support::{host, ok, plugin, spec};

/// One event as a subscriber saw it: its fields, and the spans it was inside (name and
/// `run_id`), innermost first.
#[derive(Debug, Clone)]
struct Seen {
    fields: HashMap<String, String>,
    scope: Vec<(String, Option<String>)>,
}

/// A layer that records every event with its span scope.
#[derive(Default, Clone)]
struct Recorder {
    events: Arc<Mutex<Vec<Seen>>>,
    run_of_span: Arc<Mutex<HashMap<u64, String>>>,
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(run) = fields.0.remove("run_id") {
            self.run_of_span.lock().unwrap().insert(id.into_u64(), run);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let runs = self.run_of_span.lock().unwrap();
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .map(|span| {
                        let run = runs.get(&span.id().into_u64()).cloned();
                        (span.name().to_string(), run)
                    })
                    .collect()
            })
            .unwrap_or_default();
        drop(runs);
        self.events.lock().unwrap().push(Seen {
            fields: fields.0,
            scope,
        });
    }
}

#[tokio::test]
async fn concurrent_attempts_keep_their_spans_to_themselves() {
    let recorder = Recorder::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let echo = plugin(weir_artifacts::ECHO).await;
    // Each attempt sleeps (yielding to the others) and then logs a line of its own.
    let spec = StepSpec {
        config: StepConfig::from_value(json!({"annotate": true, "sleep_ms": 300})).unwrap(),
        ..spec(Limits::default())
    };
    let attempts = (0..4).map(|n| {
        let ctx = AttemptContext {
            run_id: format!("run-{n}"),
            step_id: "only".into(),
            ..AttemptContext::default()
        };
        host().run_step(&echo, &spec, "{}", ctx)
    });
    let elsewhere = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            tracing::info!(marker = "elsewhere", "a log line from outside any run");
        }
    };
    let (reports, ()) = tokio::join!(futures_util::future::join_all(attempts), elsewhere);
    for report in &reports {
        ok(report.as_ref().unwrap());
    }

    let events = recorder.events.lock().unwrap().clone();
    let outside: Vec<&Seen> = events
        .iter()
        .filter(|e| e.fields.get("marker").is_some_and(|m| m == "elsewhere"))
        .collect();
    assert_eq!(outside.len(), 20);
    for event in outside {
        assert!(
            event.scope.is_empty(),
            "a line from outside any run carried spans: {:?}",
            event.scope
        );
    }
    // Inside the attempts (host calls, guest lines): exactly one attempt span, its own.
    let mut runs = std::collections::BTreeSet::new();
    for event in &events {
        let attempts: Vec<&Option<String>> = event
            .scope
            .iter()
            .filter(|(name, _)| name == "attempt")
            .map(|(_, run)| run)
            .collect();
        if attempts.is_empty() {
            continue;
        }
        assert_eq!(
            attempts.len(),
            1,
            "an event inside an attempt carried another attempt's span too: {event:?}"
        );
        if let Some(run) = event.fields.get("run_id") {
            assert_eq!(attempts[0].as_ref(), Some(run), "{event:?}");
        }
        runs.extend(attempts[0].clone());
    }
    assert_eq!(
        runs.len(),
        4,
        "events from every attempt were seen: {events:?}"
    );
}
