//! Frozen bins: how a feature's values are counted, fixed when its baseline is pinned so that
//! every later window is counted the same way and windows add up bin by bin.

use std::collections::HashMap;

/// Categories a categorical feature keeps, the baseline's most frequent; the rest are counted
/// together as [`OTHER`], so a feature with free-text values cannot grow without bound.
pub const MAX_CATEGORIES: usize = 20;
/// The bin of a category the baseline did not keep.
pub const OTHER: &str = "__other__";
/// The bin of a missing value (null, absent, or an expression that failed).
pub const MISSING: &str = "__missing__";
/// Fixed bins of a confidence on [0, 1], as wide as a twentieth each.
pub const CONFIDENCE_BINS: usize = 20;

/// A numeric feature's bins: open-ended intervals between the baseline's deciles, then one bin
/// for a missing value. Repeated edges (a feature with few distinct values) are kept once.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericBins {
    /// Upper edges, exclusive, ascending: bin `i` holds values below `edges[i]` and at or
    /// above `edges[i - 1]`; the last value bin is open above.
    pub edges: Vec<f64>,
}

impl NumericBins {
    /// The baseline's deciles as edges (nine at most: ten value bins).
    pub fn deciles(baseline: &[f64]) -> Self {
        let mut sorted: Vec<f64> = baseline.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::new();
        if !sorted.is_empty() {
            for decile in 1..10 {
                let at = (decile * sorted.len()) / 10;
                let edge = sorted[at.min(sorted.len() - 1)];
                if edges.last().is_none_or(|last| *last < edge) {
                    edges.push(edge);
                }
            }
        }
        Self { edges }
    }

    /// Fixed, evenly spaced bins of a confidence: edges at 0.05, 0.10, … 0.95.
    pub fn confidence() -> Self {
        Self {
            edges: (1..CONFIDENCE_BINS)
                .map(|i| i as f64 / CONFIDENCE_BINS as f64)
                .collect(),
        }
    }

    /// How many bins, the missing one included.
    pub fn len(&self) -> usize {
        self.edges.len() + 2
    }

    /// Always false: there is at least a value bin and the missing one.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin of `value`; `None` (and a value that is not a finite number) is the last bin.
    pub fn bin(&self, value: Option<f64>) -> usize {
        match value {
            Some(v) if v.is_finite() => self.edges.partition_point(|edge| *edge <= v),
            _ => self.edges.len() + 1,
        }
    }

    /// Counts per bin of `values`.
    pub fn counts(&self, values: impl IntoIterator<Item = Option<f64>>) -> Vec<u64> {
        let mut counts = vec![0; self.len()];
        for value in values {
            counts[self.bin(value)] += 1;
        }
        counts
    }
}

/// A categorical feature's bins: the baseline's most frequent categories (at most
/// [`MAX_CATEGORIES`], most frequent first, ties by name), then [`OTHER`], then [`MISSING`].
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalBins {
    /// The kept categories.
    pub categories: Vec<String>,
}

impl CategoricalBins {
    /// Keeps the baseline's most frequent categories.
    pub fn top<'a>(baseline: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for value in baseline.into_iter().flatten() {
            *counts.entry(value).or_default() += 1;
        }
        let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Self {
            categories: ranked
                .into_iter()
                .take(MAX_CATEGORIES)
                .map(|(c, _)| c.to_string())
                .collect(),
        }
    }

    /// How many bins, [`OTHER`] and [`MISSING`] included.
    pub fn len(&self) -> usize {
        self.categories.len() + 2
    }

    /// Always false: [`OTHER`] and [`MISSING`] are always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin of `value`.
    pub fn bin(&self, value: Option<&str>) -> usize {
        match value {
            None => self.categories.len() + 1,
            Some(v) => self
                .categories
                .iter()
                .position(|c| c == v)
                .unwrap_or(self.categories.len()),
        }
    }

    /// The name of bin `index`.
    pub fn label(&self, index: usize) -> &str {
        match self.categories.get(index) {
            Some(c) => c,
            None if index == self.categories.len() => OTHER,
            None => MISSING,
        }
    }

    /// Counts per bin of `values`.
    pub fn counts<'a>(&self, values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<u64> {
        let mut counts = vec![0; self.len()];
        for value in values {
            counts[self.bin(value)] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_are_open_ended_with_a_missing_bin() {
        let baseline: Vec<f64> = (0..100).map(f64::from).collect();
        let bins = NumericBins::deciles(&baseline);
        assert_eq!(
            bins.edges,
            [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        assert_eq!(bins.len(), 11);
        assert_eq!(bins.bin(Some(-1e9)), 0);
        assert_eq!(bins.bin(Some(10.0)), 1);
        assert_eq!(bins.bin(Some(1e9)), 9);
        assert_eq!(bins.bin(None), 10);
        assert_eq!(bins.bin(Some(f64::NAN)), 10);
        assert_eq!(bins.counts(baseline.iter().map(|v| Some(*v))), {
            let mut even = vec![10; 10];
            even.push(0);
            even
        });
    }

    #[test]
    fn few_distinct_values_keep_each_edge_once() {
        let baseline = [1.0, 1.0, 1.0, 2.0, 2.0];
        assert_eq!(NumericBins::deciles(&baseline).edges, [1.0, 2.0]);
        assert_eq!(NumericBins::deciles(&[]).len(), 2);
    }

    #[test]
    fn confidence_bins_are_twentieths() {
        let bins = NumericBins::confidence();
        assert_eq!(bins.len(), CONFIDENCE_BINS + 1);
        assert_eq!(bins.bin(Some(0.0)), 0);
        assert_eq!(bins.bin(Some(0.05)), 1);
        assert_eq!(bins.bin(Some(1.0)), CONFIDENCE_BINS - 1);
    }

    #[test]
    fn categories_past_the_top_are_other_and_none_is_missing() {
        let names: Vec<String> = (0..30).map(|i| format!("c{i:02}")).collect();
        let mut baseline: Vec<Option<&str>> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            baseline.extend(std::iter::repeat_n(Some(name.as_str()), 40 - i));
        }
        let bins = CategoricalBins::top(baseline);
        assert_eq!(bins.categories.len(), MAX_CATEGORIES);
        assert_eq!(bins.categories[0], "c00");
        assert_eq!(bins.bin(Some("c00")), 0);
        assert_eq!(bins.label(bins.bin(Some("c29"))), OTHER);
        assert_eq!(bins.label(bins.bin(Some("never seen"))), OTHER);
        assert_eq!(bins.label(bins.bin(None)), MISSING);
    }
}
