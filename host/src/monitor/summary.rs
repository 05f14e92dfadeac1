//! A step's profile, read back: per version, step and feature, what its windows add up to —
//! how many results, the mean and p50/p90/p99 of a numeric feature (from its buckets, to
//! within their accuracy), the most frequent values of a categorical one, and the share of
//! results that had each input field. What `weir monitor profile` and
//! `GET /v1/monitor/{workflow}/profile` show.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::bins::MISSING;
use super::profile::{self, Kind};
use crate::store::ProfileRow;

/// Values listed per categorical or presence feature.
pub const TOP: usize = 5;

/// One feature of one step of one version, over the windows read.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeatureSummary {
    /// The workflow version.
    pub version: String,
    /// The step.
    pub step_id: String,
    /// The feature.
    pub feature: String,
    /// How it is counted: `numeric`, `confidence`, `categorical` or `presence`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Results counted (a presence feature: the step's results, of which a share had each field).
    pub n: i64,
    /// Of them, with no value.
    pub missing: i64,
    /// Windows that counted any.
    pub windows: usize,
    /// Mean value (numeric and confidence).
    pub mean: Option<f64>,
    /// Median, 90th and 99th percentile (numeric and confidence).
    pub p50: Option<f64>,
    /// See `p50`.
    pub p90: Option<f64>,
    /// See `p50`.
    pub p99: Option<f64>,
    /// The most frequent values, at most [`TOP`] (categorical and presence).
    pub top: Vec<Share>,
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Share {
    /// The value (a category, or a field name).
    pub value: String,
    /// Results with it.
    pub count: i64,
    /// Their share of the feature's `n`.
    pub share: f64,
}

/// Sums `rows` (any order) into one summary per (version, step, feature), in that order.
pub fn summarize(rows: &[ProfileRow]) -> Vec<FeatureSummary> {
    type Key = (String, String, String);
    let mut bins: BTreeMap<Key, BTreeMap<String, (i64, f64)>> = BTreeMap::new();
    let mut windows: BTreeMap<Key, BTreeSet<i64>> = BTreeMap::new();
    for row in rows {
        let key = (
            row.version.clone(),
            row.step_id.clone(),
            row.feature.clone(),
        );
        let bin = bins.entry(key.clone()).or_default().entry(row.bin.clone());
        let slot = bin.or_insert((0, 0.0));
        slot.0 += row.count;
        slot.1 += row.sum;
        windows.entry(key).or_default().insert(row.window_ms);
    }
    // Every result has a status: a step's results are its status counts.
    let results = |version: &str, step: &str| -> i64 {
        let key = (
            version.to_string(),
            step.to_string(),
            profile::STATUS.to_string(),
        );
        bins.get(&key)
            .map_or(0, |b| b.values().map(|(n, _)| n).sum())
    };
    bins.iter()
        .map(|((version, step_id, feature), counts)| {
            let kind = profile::kind_of(feature);
            let counted: i64 = counts.values().map(|(n, _)| n).sum();
            let missing = counts.get(MISSING).map_or(0, |(n, _)| *n);
            let n = match kind {
                Kind::Presence => results(version, step_id),
                _ => counted,
            };
            let mut summary = FeatureSummary {
                version: version.clone(),
                step_id: step_id.clone(),
                feature: feature.clone(),
                kind: kind_name(kind),
                n,
                missing,
                windows: windows[&(version.clone(), step_id.clone(), feature.clone())].len(),
                mean: None,
                p50: None,
                p90: None,
                p99: None,
                top: Vec::new(),
            };
            match kind {
                Kind::Numeric | Kind::Confidence => {
                    let valued = counted - missing;
                    let sum: f64 = counts
                        .iter()
                        .filter(|(bin, _)| bin.as_str() != MISSING)
                        .map(|(_, (_, s))| s)
                        .sum();
                    summary.mean = (valued > 0).then(|| sum / valued as f64);
                    let points = points(kind, counts);
                    summary.p50 = quantile(&points, 0.5);
                    summary.p90 = quantile(&points, 0.9);
                    summary.p99 = quantile(&points, 0.99);
                }
                Kind::Categorical | Kind::Presence => {
                    let mut top: Vec<Share> = counts
                        .iter()
                        .map(|(value, (count, _))| Share {
                            value: value.clone(),
                            count: *count,
                            share: if n > 0 { *count as f64 / n as f64 } else { 0.0 },
                        })
                        .collect();
                    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
                    top.truncate(TOP);
                    summary.top = top;
                }
            }
            summary
        })
        .collect()
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Numeric => "numeric",
        Kind::Confidence => "confidence",
        Kind::Categorical => "categorical",
        Kind::Presence => "presence",
    }
}

/// The value each bin stands for and its count, in ascending value.
fn points(kind: Kind, counts: &BTreeMap<String, (i64, f64)>) -> Vec<(f64, i64)> {
    let mut points: Vec<(f64, i64)> = counts
        .iter()
        .filter_map(|(bin, (n, _))| {
            let value = match kind {
                // A confidence bin stands for its middle.
                Kind::Confidence => bin
                    .strip_prefix('c')
                    .and_then(|i| i.parse::<f64>().ok())
                    .map(|i| (i + 0.5) / super::bins::CONFIDENCE_BINS as f64),
                _ => profile::bucket_value(bin),
            }?;
            Some((value, *n))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// The `q` quantile of weighted points (the smallest value with at least `q` of the weight at
/// or below it).
fn quantile(points: &[(f64, i64)], q: f64) -> Option<f64> {
    let total: i64 = points.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    points.iter().find_map(|(value, n)| {
        seen += n;
        (seen >= rank).then_some(*value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::profile::{
        CONFIDENCE, INPUT_BYTES, INPUT_FIELDS, ROUTE, STATUS, numeric_bin,
    };

    fn row(window_ms: i64, feature: &str, bin: &str, count: i64, sum: f64) -> ProfileRow {
        ProfileRow {
            version: "1.0.0".into(),
            step_id: "classify".into(),
            window_ms,
            feature: feature.into(),
            bin: bin.into(),
            count,
            sum,
        }
    }

    #[test]
    fn windows_add_up_into_counts_means_quantiles_and_shares() {
        let mut rows = Vec::new();
        // 100 sizes 1..=100 over two windows.
        for v in 1..=100 {
            let value = f64::from(v);
            rows.push(row(
                i64::from(v % 2),
                INPUT_BYTES,
                &numeric_bin(Some(value)),
                1,
                value,
            ));
        }
        rows.push(row(0, STATUS, "succeeded", 80, 0.0));
        rows.push(row(1, STATUS, "timeout", 20, 0.0));
        rows.push(row(0, ROUTE, "billing", 60, 0.0));
        rows.push(row(1, ROUTE, "hardware", 20, 0.0));
        rows.push(row(0, INPUT_FIELDS, "body", 100, 0.0));
        rows.push(row(0, INPUT_FIELDS, "priority", 25, 0.0));
        rows.push(row(0, CONFIDENCE, "c18", 40, 40.0 * 0.92));
        rows.push(row(0, CONFIDENCE, "c10", 40, 40.0 * 0.52));
        let all = summarize(&rows);
        let get = |f: &str| all.iter().find(|s| s.feature == f).unwrap();

        let bytes = get(INPUT_BYTES);
        assert_eq!((bytes.n, bytes.windows, bytes.kind), (100, 2, "numeric"));
        assert_eq!(bytes.mean, Some(50.5));
        let p50 = bytes.p50.unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        let p99 = bytes.p99.unwrap();
        assert!((p99 - 99.0).abs() <= 2.0, "{p99}");

        let route = get(ROUTE);
        assert_eq!(route.top[0].value, "billing");
        assert_eq!(route.top[0].share, 0.75);

        let fields = get(INPUT_FIELDS);
        assert_eq!(fields.n, 100, "a field's share is of the step's results");
        assert_eq!(fields.top[1].value, "priority");
        assert_eq!(fields.top[1].share, 0.25);

        let confidence = get(CONFIDENCE);
        assert!((confidence.mean.unwrap() - 0.72).abs() < 1e-9);
        assert_eq!(confidence.p90, Some(0.925));
    }
}
