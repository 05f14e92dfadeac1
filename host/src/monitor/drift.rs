//! Drift of one step: its closed windows since the baseline, merged into chunks of at least
//! [`Settings::min_samples`] results, judged feature by feature against the baseline's
//! frozen bins; each feature's alert opens and closes over the chunks (see `verdict`), and
//! the step's status follows from its features. A pure function of the journal's counts and
//! the clock: every host, and a host after a restart, comes to the same verdict.

use serde::Serialize;

use super::frozen::{self, Counts, Frozen};
use super::profile::{self, CONFIDENCE, INPUT_VIOLATION, Kind, ROUTE, STATUS};
use super::stats::{Direction, MeanChart};
use super::threshold::FalseAlertBudget;
use super::verdict::{self, Alert, Evidence, Score, Transition};
use crate::store::ProfileRow;

/// Features whose alert alone makes the step's status `alert`.
pub const CORE: [&str; 3] = [CONFIDENCE, ROUTE, INPUT_VIOLATION];
/// Results a version's first windows must hold to become its baseline, by default.
pub const DEFAULT_BASELINE_RESULTS: i64 = 1000;
/// The longest stretch of windows merged into one chunk, by default: a day.
pub const DEFAULT_MAX_SPAN_MS: i64 = 24 * 3_600_000;

/// How a workflow's steps are windowed and judged (`[monitor]` in the workflow file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Window length.
    pub window_ms: i64,
    /// Results a version's first windows must hold to become its baseline.
    pub baseline_results: i64,
    /// Results a chunk needs before it is judged.
    pub min_samples: u64,
    /// The longest stretch of windows one chunk merges; a chunk that reaches it short of
    /// `min_samples` is `insufficient`.
    pub max_span_ms: i64,
    /// Where each feature's significance level comes from.
    pub budget: FalseAlertBudget,
    /// Whether step results are counted at all.
    pub profiles: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_ms: profile::DEFAULT_WINDOW_MS,
            baseline_results: DEFAULT_BASELINE_RESULTS,
            min_samples: verdict::MIN_SAMPLES,
            max_span_ms: DEFAULT_MAX_SPAN_MS,
            budget: FalseAlertBudget::default(),
            profiles: true,
        }
    }
}

/// A step's status, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No chunk since the baseline has enough results (or there is no baseline yet).
    Insufficient,
    /// Nothing drifted.
    Ok,
    /// A feature's alert is open that does not alert the step, or a feature's latest change
    /// was significant but not material.
    Warn,
    /// A core feature's alert is open, or half the features' are.
    Alert,
}

impl Status {
    /// Its name, as printed and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insufficient => "insufficient",
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Alert => "alert",
        }
    }
}

/// One feature's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeatureDrift {
    /// The feature.
    pub feature: String,
    /// The statistic: `psi`, `js`, `rate` or `mean`.
    pub stat: String,
    /// Its value in the latest chunk.
    pub score: f64,
    /// Where drift starts.
    pub threshold: f64,
    /// The test's p-value.
    pub p_value: f64,
    /// Results in the latest chunk.
    pub n: u64,
    /// What the latest chunk says: `insufficient`, `clean`, `immaterial`, `suspect` or `drift`.
    pub evidence: String,
    /// Whether the feature's alert is open.
    pub alert: bool,
    /// Start of the chunk that opened it.
    pub alert_since_ms: Option<i64>,
}

/// A stretch of windows judged as one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Span {
    /// Its first window's start.
    pub from_ms: i64,
    /// Its last window's end.
    pub to_ms: i64,
    /// Results it holds.
    pub n: i64,
}

/// What the judge needs of a baseline: its counts and where they came from.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The counts.
    pub counts: Counts,
    /// The version whose windows they are.
    pub version: String,
    /// Its windows.
    pub span: Span,
}

/// Closed windows merged into chunks of at least `min_samples` results (or of `max_span`);
/// the windows after the last chunk are still filling it.
pub struct Chunks {
    /// Each chunk: its span, its counts, and whether it has enough results to judge.
    pub chunks: Vec<(Span, Counts, bool)>,
    /// Results in windows not judged yet: closed ones short of a chunk, and the open one.
    pub pending: i64,
}

/// The chunks of `rows` (one step of one version) in windows starting at or after `from_ms`,
/// as of `now_ms`.
pub fn chunks(rows: &[ProfileRow], from_ms: i64, now_ms: i64, settings: &Settings) -> Chunks {
    let mut windows: std::collections::BTreeMap<i64, Vec<&ProfileRow>> = Default::default();
    for row in rows.iter().filter(|r| r.window_ms >= from_ms) {
        windows.entry(row.window_ms).or_default().push(row);
    }
    let mut out = Chunks {
        chunks: Vec::new(),
        pending: 0,
    };
    let mut current: Option<(Span, Counts)> = None;
    for (start, rows) in windows {
        let counts = Counts::of(rows);
        if start + settings.window_ms > now_ms {
            out.pending += counts.results;
            continue;
        }
        let (span, sum) = current.get_or_insert_with(|| {
            (
                Span {
                    from_ms: start,
                    to_ms: start,
                    n: 0,
                },
                Counts::default(),
            )
        });
        *sum = sum.plus(&counts);
        span.to_ms = start + settings.window_ms;
        span.n = sum.results;
        let enough = sum.results as u64 >= settings.min_samples;
        if enough || span.to_ms - span.from_ms >= settings.max_span_ms {
            let (span, sum) = current.take().expect("a chunk was being filled");
            out.chunks.push((span, sum, enough));
        }
    }
    if let Some((_, sum)) = current {
        out.pending += sum.results;
    }
    out
}

/// One step's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Judged {
    /// The step's status.
    pub status: Status,
    /// The latest chunk judged.
    pub latest: Option<Span>,
    /// Chunks judged since the baseline.
    pub chunks: usize,
    /// Results not judged yet (the open window, and closed ones short of a chunk).
    pub pending: i64,
    /// Per feature, weakest verdict last.
    pub features: Vec<FeatureDrift>,
}

/// Judges `chunks` against `reference`.
pub fn judge(reference: &Reference, chunks: &Chunks, settings: &Settings) -> Judged {
    let base = &reference.counts;
    let features: Vec<&String> = judged_features(base);
    let alpha = settings.budget.alpha(features.len().max(1));
    let mut verdicts = Vec::new();
    for feature in features {
        let frozen = Frozen::from_baseline(feature, base.feature(feature));
        let score = |counts: &Counts| score(feature, &frozen, base, counts, alpha);
        let mut alert = Alert::default();
        let mut since = None;
        let mut latest = None;
        let mut previous: Option<&Counts> = None;
        for (span, counts, enough) in &chunks.chunks {
            if !enough {
                continue;
            }
            let window = score(counts);
            let pooled =
                || previous.map_or(Evidence::Insufficient, |p| score(&p.plus(counts)).evidence);
            match alert.observe(window.evidence, pooled) {
                Transition::Opened => since = Some(span.from_ms),
                Transition::Resolved => since = None,
                Transition::Held => {}
            }
            previous = Some(counts);
            latest = Some(window);
        }
        let Some(latest) = latest else { continue };
        verdicts.push(FeatureDrift {
            feature: feature.clone(),
            stat: latest.stat.to_string(),
            score: latest.score,
            threshold: latest.threshold,
            p_value: latest.p_value,
            n: latest.n,
            evidence: evidence_name(latest.evidence).to_string(),
            alert: alert.open,
            alert_since_ms: since,
        });
    }
    let latest = chunks
        .chunks
        .iter()
        .rev()
        .find(|(_, _, enough)| *enough)
        .map(|(span, _, _)| *span);
    let open = verdicts.iter().filter(|f| f.alert).count();
    let status = if latest.is_none() {
        Status::Insufficient
    } else if verdicts
        .iter()
        .any(|f| f.alert && CORE.contains(&f.feature.as_str()))
        || (open > 0 && open * 2 >= verdicts.len())
    {
        Status::Alert
    } else if open > 0
        || verdicts
            .iter()
            .any(|f| matches!(f.evidence.as_str(), "immaterial" | "suspect" | "drift"))
    {
        Status::Warn
    } else {
        Status::Ok
    };
    let mut features = verdicts;
    features.sort_by(|a, b| {
        (b.alert, b.evidence == "drift", &a.feature).cmp(&(
            a.alert,
            a.evidence == "drift",
            &b.feature,
        ))
    });
    Judged {
        status,
        latest,
        chunks: chunks.chunks.iter().filter(|(_, _, e)| *e).count(),
        pending: chunks.pending,
        features,
    }
}

/// The features a baseline lets the judge compare: each it counted, and the rates of
/// failure and schema violations (judged even when the baseline had none).
fn judged_features(base: &Counts) -> Vec<&String> {
    static VIOLATION: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| INPUT_VIOLATION.to_string());
    let mut features: Vec<&String> = base.features.keys().collect();
    if !base.features.contains_key(INPUT_VIOLATION) && base.results > 0 {
        features.push(&VIOLATION);
        features.sort();
    }
    features
}

/// One feature's score in `current` against the baseline.
fn score(feature: &str, frozen: &Frozen, base: &Counts, current: &Counts, alpha: f64) -> Score {
    let rate = |f: &str| {
        let (b, c) = (base.hits(f), current.hits(f));
        verdict::judge_rate(
            (b, base.results as u64),
            (c, current.results as u64),
            Direction::Up,
            alpha,
        )
    };
    match feature {
        STATUS | INPUT_VIOLATION => return rate(feature),
        _ => {}
    }
    let (b, c) = (
        frozen.count(base.feature(feature)),
        frozen.count(current.feature(feature)),
    );
    match profile::kind_of(feature) {
        Kind::Numeric => verdict::judge_numeric(&b, &c, alpha),
        Kind::Categorical | Kind::Presence => verdict::judge_categorical(&b, &c, alpha),
        Kind::Confidence => {
            let psi = verdict::judge_numeric(&b, &c, alpha);
            let (Some(centre), Some(mean)) = (base.mean(feature), current.mean(feature)) else {
                return psi;
            };
            let chart = MeanChart {
                centre,
                sigma: frozen::confidence_sd(base.feature(feature), centre),
                chunk: 1,
            };
            let valued = c.iter().sum::<u64>() - c.last().copied().unwrap_or(0);
            let shift = verdict::judge_mean(&chart, mean, valued, alpha);
            if shift.evidence > psi.evidence {
                shift
            } else {
                psi
            }
        }
    }
}

fn evidence_name(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::Insufficient => "insufficient",
        Evidence::Clean => "clean",
        Evidence::Immaterial => "immaterial",
        Evidence::Suspect => "suspect",
        Evidence::Drift => "drift",
    }
}
