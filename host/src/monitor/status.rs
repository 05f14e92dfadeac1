//! Every step of a workflow, judged: which baseline each version's step is compared with (a
//! pin, else the version's own first windows, else the previous version's baseline), and
//! the verdict of its windows since. What `weir monitor status` and `check` print and
//! `GET /v1/monitor/{workflow}/drift` serves.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::drift::{self, Judged, Reference, Settings, Span};
use super::frozen::Counts;
use crate::store::{BaselinePin, ProfileRow};

/// Where a step's baseline came from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BaselineInfo {
    /// The version whose windows it holds.
    pub version: String,
    /// Its windows.
    pub span: Span,
    /// `pinned` (by `weir monitor baseline set`), `first` (the version's first windows) or
    /// `previous` (a previous version's, until this one has its own).
    pub how: String,
}

/// One step of one version, judged.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepDrift {
    /// The workflow version.
    pub version: String,
    /// The step.
    pub step_id: String,
    /// What it is compared with; `None` while no baseline has enough results.
    pub baseline: Option<BaselineInfo>,
    /// The verdict.
    #[serde(flatten)]
    pub judged: Judged,
}

/// Judges every (version, step) `rows` holds, versions in semver order; `settings` gives a
/// version's `[monitor]` settings.
pub fn assess(
    rows: &[ProfileRow],
    pins: &[BaselinePin],
    settings: impl Fn(&str) -> Settings,
    now_ms: i64,
) -> Vec<StepDrift> {
    let mut versions: Vec<&str> = rows
        .iter()
        .map(|r| r.version.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    versions.sort_by(
        |a, b| match (semver::Version::parse(a), semver::Version::parse(b)) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => a.cmp(b),
        },
    );
    let mut by_step: BTreeMap<(&str, &str), Vec<ProfileRow>> = BTreeMap::new();
    for row in rows {
        by_step
            .entry((row.version.as_str(), row.step_id.as_str()))
            .or_default()
            .push(row.clone());
    }
    let steps: BTreeSet<&str> = rows.iter().map(|r| r.step_id.as_str()).collect();
    let mut out = Vec::new();
    for step in steps {
        // The latest baseline a version of this step had, for the next version to borrow.
        let mut carried: Option<(Reference, BaselineInfo)> = None;
        for version in &versions {
            let Some(own) = by_step.get(&(*version, step)) else {
                continue;
            };
            let settings = settings(version);
            let pin = pins.iter().rev().find(|p| p.version == *version);
            let found = match pin {
                Some(pin) => {
                    let source: &[ProfileRow] = by_step
                        .get(&(pin.source_version.as_str(), step))
                        .map_or(&[], Vec::as_slice);
                    Some(reference(
                        source,
                        &pin.source_version,
                        pin.from_ms,
                        pin.to_ms,
                        "pinned",
                    ))
                }
                None => first_windows(own, version, now_ms, &settings)
                    .map(|(from, to)| reference(own, version, from, to, "first")),
            };
            let (chosen, from_ms) = match found {
                Some(found) => {
                    let from = if found.0.version == *version {
                        found.0.span.to_ms
                    } else {
                        i64::MIN
                    };
                    carried = Some(found.clone());
                    (Some(found), from)
                }
                None => (
                    carried.clone().map(|(r, mut info)| {
                        info.how = "previous".into();
                        (r, info)
                    }),
                    i64::MIN,
                ),
            };
            let chunks = drift::chunks(own, from_ms, now_ms, &settings);
            let judged = match &chosen {
                Some((reference, _)) => drift::judge(reference, &chunks, &settings),
                None => Judged {
                    status: drift::Status::Insufficient,
                    latest: None,
                    chunks: 0,
                    pending: own
                        .iter()
                        .filter(|r| r.feature == super::profile::STATUS)
                        .map(|r| r.count)
                        .sum(),
                    features: Vec::new(),
                },
            };
            out.push(StepDrift {
                version: version.to_string(),
                step_id: step.to_string(),
                baseline: chosen.map(|(_, info)| info),
                judged,
            });
        }
    }
    out
}

/// The span of a version's first closed windows that together hold
/// [`Settings::baseline_results`] results, once they do.
pub fn first_windows(
    rows: &[ProfileRow],
    version: &str,
    now_ms: i64,
    settings: &Settings,
) -> Option<(i64, i64)> {
    let mut per_window: BTreeMap<i64, i64> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.version == version && r.feature == super::profile::STATUS)
    {
        *per_window.entry(row.window_ms).or_insert(0) += row.count;
    }
    let first = *per_window.keys().next()?;
    let mut seen = 0;
    for (start, n) in per_window {
        if start + settings.window_ms > now_ms {
            return None;
        }
        seen += n;
        if seen >= settings.baseline_results {
            return Some((first, start + settings.window_ms));
        }
    }
    None
}

/// The baseline of `rows`' windows in `[from_ms, to_ms)`.
fn reference(
    rows: &[ProfileRow],
    version: &str,
    from_ms: i64,
    to_ms: i64,
    how: &str,
) -> (Reference, BaselineInfo) {
    let counts = Counts::of(
        rows.iter()
            .filter(|r| r.window_ms >= from_ms && r.window_ms < to_ms),
    );
    let span = Span {
        from_ms,
        to_ms,
        n: counts.results,
    };
    (
        Reference {
            counts,
            version: version.to_string(),
            span,
        },
        BaselineInfo {
            version: version.to_string(),
            span,
            how: how.to_string(),
        },
    )
}

/// Every step of `workflow` judged as of `now_ms`, from the journal: its profiles, its pins,
/// and each version's `[monitor]` settings as registered (the defaults for a version whose
/// definition no longer loads).
pub async fn of_workflow(
    store: &dyn crate::store::Store,
    workflow: &str,
    now_ms: i64,
) -> anyhow::Result<Vec<StepDrift>> {
    let filter = crate::store::ProfileFilter {
        workflow: workflow.to_string(),
        ..Default::default()
    };
    let rows = store.monitor().profiles(&filter).await?;
    let pins = store.monitor().baseline_pins(workflow).await?;
    let mut settings: BTreeMap<String, Settings> = BTreeMap::new();
    for version in rows
        .iter()
        .map(|r| r.version.clone())
        .collect::<BTreeSet<_>>()
    {
        let found = settings_of(store, workflow, &version).await;
        settings.insert(version, found);
    }
    Ok(assess(
        &rows,
        &pins,
        |v| settings.get(v).copied().unwrap_or_default(),
        now_ms,
    ))
}

/// A registered version's `[monitor]` settings; the defaults when its definition no longer
/// loads.
pub async fn settings_of(
    store: &dyn crate::store::Store,
    workflow: &str,
    version: &str,
) -> Settings {
    crate::registry::load_definition(store, workflow, version)
        .await
        .map(|w| w.monitor)
        .unwrap_or_default()
}
