//! Frozen bins over profile counts: a baseline's windows, added up, fix how each feature is
//! binned (the deciles of a numeric feature, taken on bucket edges; the most frequent
//! categories of a categorical one), and every later window is counted into the same bins,
//! exactly, from its own buckets.

use std::collections::BTreeMap;

use super::bins::{CONFIDENCE_BINS, MAX_CATEGORIES, MISSING, NumericBins, OTHER};
use super::profile::{self, Kind};
use crate::store::ProfileRow;

/// Counts of a stretch of windows (a baseline, a window, several merged), per feature and
/// bin, with the sums of their values; and how many results they hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Feature → bin → (count, sum).
    pub features: BTreeMap<String, BTreeMap<String, (i64, f64)>>,
    /// Results counted (each has one status).
    pub results: i64,
}

impl Counts {
    /// The counts of `rows` (any windows, any order).
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a ProfileRow>) -> Self {
        let mut counts = Self::default();
        for row in rows {
            counts.add(&row.feature, &row.bin, row.count, row.sum);
        }
        counts
    }

    /// Adds a bin's count.
    pub fn add(&mut self, feature: &str, bin: &str, count: i64, sum: f64) {
        let slot = self
            .features
            .entry(feature.to_string())
            .or_default()
            .entry(bin.to_string())
            .or_insert((0, 0.0));
        slot.0 += count;
        slot.1 += sum;
        if feature == profile::STATUS {
            self.results += count;
        }
    }

    /// These counts and `other`'s, added.
    pub fn plus(&self, other: &Counts) -> Counts {
        let mut sum = self.clone();
        for (feature, bins) in &other.features {
            for (bin, (count, s)) in bins {
                sum.add(feature, bin, *count, *s);
            }
        }
        sum
    }

    /// A feature's bins, empty when it was not counted.
    pub fn feature(&self, feature: &str) -> &BTreeMap<String, (i64, f64)> {
        static EMPTY: BTreeMap<String, (i64, f64)> = BTreeMap::new();
        self.features.get(feature).unwrap_or(&EMPTY)
    }

    /// The results `feature` counted in `bins` other than `succeeded` (a status) or in any
    /// bin (a violation path): hits for a rate.
    pub fn hits(&self, feature: &str) -> u64 {
        self.feature(feature)
            .iter()
            .filter(|(bin, _)| feature != profile::STATUS || bin.as_str() != "succeeded")
            .map(|(_, (n, _))| *n as u64)
            .sum()
    }

    /// The mean of a numeric feature's values (its missing ones left out).
    pub fn mean(&self, feature: &str) -> Option<f64> {
        let (n, sum) = self
            .feature(feature)
            .iter()
            .filter(|(bin, _)| bin.as_str() != MISSING)
            .fold((0, 0.0), |(n, s), (_, (c, v))| (n + c, s + v));
        (n > 0).then(|| sum / n as f64)
    }
}

/// How one feature is binned, fixed by its baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Frozen {
    /// Open-ended intervals between the baseline's deciles, plus missing.
    Numeric(NumericBins),
    /// Twenty fixed bins on [0, 1], plus missing.
    Confidence,
    /// The baseline's most frequent values, then [`OTHER`], then [`MISSING`].
    Categorical(Vec<String>),
}

impl Frozen {
    /// The bins `feature`'s baseline counts fix.
    pub fn from_baseline(feature: &str, baseline: &BTreeMap<String, (i64, f64)>) -> Self {
        match profile::kind_of(feature) {
            Kind::Confidence => Self::Confidence,
            Kind::Numeric => Self::Numeric(deciles(baseline)),
            Kind::Categorical | Kind::Presence => {
                let mut values: Vec<(&String, i64)> = baseline
                    .iter()
                    .filter(|(bin, _)| bin.as_str() != MISSING && bin.as_str() != OTHER)
                    .map(|(bin, (n, _))| (bin, *n))
                    .collect();
                values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                values.truncate(MAX_CATEGORIES);
                Self::Categorical(values.into_iter().map(|(bin, _)| bin.clone()).collect())
            }
        }
    }

    /// A feature's counts on these bins.
    pub fn count(&self, bins: &BTreeMap<String, (i64, f64)>) -> Vec<u64> {
        match self {
            Self::Numeric(numeric) => {
                let mut counts = vec![0u64; numeric.len()];
                for (bin, (n, _)) in bins {
                    counts[numeric.bin(profile::bucket_value(bin))] += *n as u64;
                }
                counts
            }
            Self::Confidence => {
                let mut counts = vec![0u64; CONFIDENCE_BINS + 1];
                for (bin, (n, _)) in bins {
                    let index = bin
                        .strip_prefix('c')
                        .and_then(|i| i.parse::<usize>().ok())
                        .filter(|i| *i < CONFIDENCE_BINS)
                        .unwrap_or(CONFIDENCE_BINS);
                    counts[index] += *n as u64;
                }
                counts
            }
            Self::Categorical(kept) => {
                let mut counts = vec![0u64; kept.len() + 2];
                for (bin, (n, _)) in bins {
                    let index = if bin == MISSING {
                        kept.len() + 1
                    } else {
                        kept.iter().position(|k| k == bin).unwrap_or(kept.len())
                    };
                    counts[index] += *n as u64;
                }
                counts
            }
        }
    }
}

/// Edges between a numeric feature's deciles, each at a bucket's value: the buckets up to
/// the one a decile falls in are below its edge, so any window's buckets fall on one side of
/// every edge and count exactly.
pub fn deciles(baseline: &BTreeMap<String, (i64, f64)>) -> NumericBins {
    let mut points: Vec<(f64, i64)> = baseline
        .iter()
        .filter_map(|(bin, (n, _))| Some((profile::bucket_value(bin)?, *n)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: i64 = points.iter().map(|(_, n)| n).sum();
    let mut edges: Vec<f64> = Vec::new();
    let mut seen = 0;
    let mut decile = 1;
    for (i, (_, n)) in points.iter().enumerate() {
        seen += n;
        while decile < 10 && seen * 10 >= decile * total {
            decile += 1;
            if let Some((next, _)) = points.get(i + 1)
                && edges.last().is_none_or(|last| last < next)
            {
                edges.push(*next);
            }
        }
    }
    NumericBins { edges }
}

/// A confidence's control-chart spread from its bins: the standard deviation of one value,
/// each bin at its middle.
pub fn confidence_sd(bins: &BTreeMap<String, (i64, f64)>, mean: f64) -> f64 {
    let (n, squares) = bins
        .iter()
        .filter_map(|(bin, (n, _))| {
            let i: f64 = bin.strip_prefix('c')?.parse().ok()?;
            let middle = (i + 0.5) / CONFIDENCE_BINS as f64;
            Some((*n, *n as f64 * (middle - mean).powi(2)))
        })
        .fold((0, 0.0), |(n, s), (c, v)| (n + c, s + v));
    if n < 2 {
        return 0.0;
    }
    (squares / (n - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::profile::numeric_bin;

    fn buckets(values: impl IntoIterator<Item = f64>) -> BTreeMap<String, (i64, f64)> {
        let mut bins = BTreeMap::new();
        for v in values {
            let slot = bins.entry(numeric_bin(Some(v))).or_insert((0, 0.0));
            slot.0 += 1;
            slot.1 += v;
        }
        bins
    }

    #[test]
    fn deciles_on_bucket_edges_split_the_baseline_into_tenths() {
        let baseline = buckets((1..=1000).map(f64::from));
        let frozen = Frozen::Numeric(deciles(&baseline));
        let counts = frozen.count(&baseline);
        assert_eq!(counts.len(), 11, "ten value bins and missing: {counts:?}");
        // Each tenth is 100 values give or take the bucket a decile falls in (2% of the value).
        for c in &counts[..10] {
            assert!((60..=140).contains(c), "{counts:?}");
        }
        assert_eq!(counts.iter().sum::<u64>(), 1000);
        // A window counts into the same bins from its own buckets.
        let window = buckets((1..=100).map(|v| f64::from(v) * 10.0));
        assert_eq!(frozen.count(&window).iter().sum::<u64>(), 100);
    }

    #[test]
    fn few_distinct_values_keep_each_edge_once() {
        let baseline = buckets([1.0; 500].into_iter().chain([2.0; 500]));
        let NumericBins { edges } = deciles(&baseline);
        assert_eq!(edges.len(), 1, "{edges:?}");
        let frozen = Frozen::Numeric(NumericBins { edges });
        assert_eq!(frozen.count(&baseline), vec![500, 500, 0]);
    }

    #[test]
    fn categories_beyond_the_baselines_top_are_other() {
        let mut baseline = BTreeMap::new();
        for (i, route) in ["billing", "technical", "spam"].iter().enumerate() {
            baseline.insert(route.to_string(), (10 - i as i64, 0.0));
        }
        let frozen = Frozen::from_baseline("output.route", &baseline);
        let mut window = BTreeMap::new();
        window.insert("billing".to_string(), (4, 0.0));
        window.insert("refund".to_string(), (3, 0.0));
        window.insert(MISSING.to_string(), (1, 0.0));
        assert_eq!(frozen.count(&window), vec![4, 0, 0, 3, 1]);
    }

    #[test]
    fn counts_add_and_know_their_results_rates_and_means() {
        let mut a = Counts::default();
        a.add(profile::STATUS, "succeeded", 9, 0.0);
        a.add(profile::STATUS, "timeout", 1, 0.0);
        a.add(profile::CONFIDENCE, "c10", 9, 9.0 * 0.52);
        let b = a.plus(&a);
        assert_eq!(b.results, 20);
        assert_eq!(b.hits(profile::STATUS), 2);
        assert!((b.mean(profile::CONFIDENCE).unwrap() - 0.52).abs() < 1e-12);
        let sd = confidence_sd(b.feature(profile::CONFIDENCE), 0.525);
        assert!(sd.abs() < 1e-12, "one bin has no spread: {sd}");
    }
}
