//! A workflow's `[monitor]`: how its steps' profiles are windowed and judged (every key is
//! optional; the defaults are [`Settings::default`]), and a step's declared features
//! (`[steps.monitor.features]`, see `monitor/features.rs`).
//!
//! ```toml
//! [monitor]
//! window = "1h"             # profile windows, tumbling from the epoch (UTC)
//! baseline = 1000           # a version's first windows holding this many results
//! min-samples = 100         # results a chunk of windows needs to be judged
//! max-span = "24h"          # the most windows one chunk merges
//! false-alert-every = 720   # windows between false alerts, per step
//! profiles = true           # false: count nothing
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Diagnostic;
use crate::monitor::drift::Settings;
use crate::monitor::features::{Declared, DeclaredKind, MAX_DECLARED};

/// A step's `monitor` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepMonitorTable {
    #[serde(default)]
    pub features: BTreeMap<String, Spanned<FeatureTable>>,
}

/// One declared feature as written: `{ expr = "…", type = "numeric" | "categorical" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeatureTable {
    pub expr: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
}

/// A step's declared features, compiled; every problem is reported at its place.
pub(crate) fn features(
    table: Option<&Spanned<StepMonitorTable>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Declared> {
    let Some(table) = table else {
        return Vec::new();
    };
    let declared = &table.get_ref().features;
    if declared.len() > MAX_DECLARED {
        errors.push(Diagnostic::at(
            table.span(),
            format!(
                "the step declares {} monitored features: at most {MAX_DECLARED}",
                declared.len()
            ),
        ));
    }
    let mut compiled = Vec::new();
    for (name, feature) in declared {
        let f = feature.get_ref();
        let named = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !named {
            errors.push(Diagnostic::at(
                feature.span(),
                format!("monitored feature {name:?}: a name is lowercase letters, digits and `_`"),
            ));
        }
        let kind = match f.kind.get_ref().as_str() {
            "numeric" => DeclaredKind::Numeric,
            "categorical" => DeclaredKind::Categorical,
            other => {
                errors.push(Diagnostic::at(
                    f.kind.span(),
                    format!(
                        "monitored feature `{name}` has type {other:?}: `numeric` or `categorical`"
                    ),
                ));
                continue;
            }
        };
        match Declared::compile(name, f.expr.get_ref(), kind) {
            Err(e) => errors.push(Diagnostic::at(
                f.expr.span(),
                format!("monitored feature `{name}`: {e}"),
            )),
            Ok(d) => {
                let unknown = d.unknown_variables();
                if unknown.is_empty() {
                    compiled.push(d);
                } else {
                    errors.push(
                        Diagnostic::at(
                            f.expr.span(),
                            format!(
                                "monitored feature `{name}` reads `{}`",
                                unknown.join("`, `")
                            ),
                        )
                        .help("a feature reads the step's `input` and `output` only"),
                    );
                }
            }
        }
    }
    compiled
}

/// `[monitor]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct MonitorTable {
    pub window: Option<Spanned<String>>,
    pub baseline: Option<Spanned<i64>>,
    pub min_samples: Option<Spanned<i64>>,
    pub max_span: Option<Spanned<String>>,
    pub false_alert_every: Option<Spanned<f64>>,
    pub profiles: Option<bool>,
}

/// The shortest window: shorter ones would make a row per result.
const MIN_WINDOW_MS: i64 = 1_000;

pub(crate) fn resolve(
    table: Option<&Spanned<MonitorTable>>,
    errors: &mut Vec<Diagnostic>,
) -> Settings {
    let mut settings = Settings::default();
    let Some(table) = table else { return settings };
    let t = table.get_ref();
    let duration = |value: &Spanned<String>, key: &str, errors: &mut Vec<Diagnostic>| {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d.as_millis() as i64 >= MIN_WINDOW_MS => Some(d.as_millis() as i64),
            Ok(_) => {
                errors.push(Diagnostic::at(
                    value.span(),
                    format!("`monitor.{key}` is {:?}: give at least 1s", value.get_ref()),
                ));
                None
            }
            Err(e) => {
                errors.push(Diagnostic::at(
                    value.span(),
                    format!(
                        "`monitor.{key}` is {:?}, not a duration such as 1h or 10m: {e}",
                        value.get_ref()
                    ),
                ));
                None
            }
        }
    };
    if let Some(window) = &t.window
        && let Some(ms) = duration(window, "window", errors)
    {
        settings.window_ms = ms;
    }
    if let Some(span) = &t.max_span
        && let Some(ms) = duration(span, "max-span", errors)
    {
        settings.max_span_ms = ms;
    }
    let positive = |value: &Spanned<i64>, key: &str, errors: &mut Vec<Diagnostic>| {
        let v = *value.get_ref();
        if v < 1 {
            errors.push(Diagnostic::at(
                value.span(),
                format!("`monitor.{key}` is {v}: give a number of results, at least 1"),
            ));
        }
        v.max(1)
    };
    if let Some(baseline) = &t.baseline {
        settings.baseline_results = positive(baseline, "baseline", errors);
    }
    if let Some(min) = &t.min_samples {
        let floor = crate::monitor::verdict::MIN_TESTABLE;
        let v = positive(min, "min-samples", errors) as u64;
        if v < floor {
            errors.push(Diagnostic::at(
                min.span(),
                format!(
                    "`monitor.min-samples` is {v}: the tests need at least {floor} results a stretch of windows"
                ),
            ));
        }
        settings.min_samples = v.max(floor);
    }
    if let Some(every) = &t.false_alert_every {
        let v = *every.get_ref();
        if !(v.is_finite() && v >= 1.0) {
            errors.push(Diagnostic::at(
                every.span(),
                format!("`monitor.false-alert-every` is {v}: give the windows between false alerts, at least 1"),
            ));
        } else {
            settings.budget.windows_between_false_alerts = v;
        }
    }
    if let Some(on) = t.profiles {
        settings.profiles = on;
    }
    if settings.max_span_ms < settings.window_ms {
        errors.push(
            Diagnostic::at(
                table.span(),
                "`monitor.max-span` is shorter than `monitor.window`".to_string(),
            )
            .help("a chunk merges whole windows: give a max-span of at least one window"),
        );
    }
    settings
}
