//! A step's `shadow`: a candidate plugin that runs on a share of the step's live runs, after
//! the run ends, on the same input, with the model's answers reused from the live attempt
//! where it asks the same thing. Its results are recorded and compared, never passed on.
//!
//! ```toml
//! shadow = { candidate = "classify-v2.wasm", sample = 0.2, on-miss = "live", budget-usd-day = 5.0 }
//! ```

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::PluginRef;
use super::diagnostic::Diagnostic;
use crate::replay::OnMiss;

/// The default share of runs a shadow takes.
pub const DEFAULT_SAMPLE: f64 = 0.1;
/// The default daily spend of a shadow's live model calls, in dollars.
pub const DEFAULT_BUDGET_USD_DAY: f64 = 1.0;

/// `shadow = { … }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ShadowTable {
    pub candidate: Spanned<String>,
    pub sample: Option<Spanned<f64>>,
    pub on_miss: Option<Spanned<String>>,
    pub budget_usd_day: Option<Spanned<f64>>,
}

/// A step's shadow, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow {
    /// The candidate plugin.
    pub candidate: PluginRef,
    /// Where `candidate = …` is written.
    pub candidate_span: std::ops::Range<usize>,
    /// The share of runs it takes, chosen by a hash of run and step (the same runs on every
    /// host and after a restart).
    pub sample: f64,
    /// What a call the live attempt's record cannot answer does: `live` (paid from the
    /// shadow's budget) or `fail`.
    pub on_miss: OnMiss,
    /// What its live model calls may spend per day (UTC), in dollars.
    pub budget_usd_day: f64,
}

/// The pin of a step's shadow candidate beside the steps' own (`shadow:<step>`).
pub fn pin(step: &str) -> String {
    format!("shadow:{step}")
}

pub(crate) fn resolve(
    table: &Spanned<ShadowTable>,
    base_dir: &Path,
    errors: &mut Vec<Diagnostic>,
) -> Option<Shadow> {
    let t = table.get_ref();
    let candidate = super::resolve::plugin_ref(&t.candidate, base_dir, errors);
    let sample = t.sample.as_ref().map_or(DEFAULT_SAMPLE, |s| {
        let value = *s.get_ref();
        if !(value > 0.0 && value <= 1.0) {
            errors.push(
                Diagnostic::at(
                    s.span(),
                    format!("`shadow.sample` is {value}, not in (0, 1]"),
                )
                .help("the share of runs the shadow takes, e.g. 0.2; remove `shadow` to stop it"),
            );
        }
        value
    });
    let on_miss = match t.on_miss.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("live", _)) => OnMiss::Live,
        Some(("fail", _)) => OnMiss::Fail,
        Some((other, span)) => {
            errors.push(Diagnostic::at(
                span,
                format!("`shadow.on-miss` is {other:?}: `live` or `fail`"),
            ));
            OnMiss::Live
        }
    };
    let budget_usd_day =
        t.budget_usd_day
            .as_ref()
            .map_or(DEFAULT_BUDGET_USD_DAY, |b| {
                let value = *b.get_ref();
                if !(value >= 0.0 && value.is_finite()) {
                    errors.push(Diagnostic::at(
                b.span(),
                format!("`shadow.budget-usd-day` is {value}, not a non-negative number of dollars"),
            ));
                }
                value
            });
    Some(Shadow {
        candidate,
        candidate_span: t.candidate.span(),
        sample,
        on_miss,
        budget_usd_day,
    })
}
