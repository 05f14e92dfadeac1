//! The statistics of an evaluation: Wilson score intervals for agreement rates, a normal
//! interval for a paired mean, and percentiles.

use serde::Serialize;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A share with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rate {
    /// Cases that count.
    pub hits: u64,
    /// Cases in all.
    pub n: u64,
    /// hits ÷ n (1 when n is 0: nothing disagreed).
    pub rate: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
    pub hi: f64,
}

/// `hits` of `n`, with Wilson's interval: unlike the normal one it stays inside [0, 1] and
/// is honest at small n and at rates near 0 or 1, which is where agreement rates live.
pub fn wilson(hits: u64, n: u64) -> Rate {
    if n == 0 {
        return Rate {
            hits,
            n,
            rate: 1.0,
            lo: 0.0,
            hi: 1.0,
        };
    }
    let (x, n_f) = (hits as f64, n as f64);
    let p = x / n_f;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = Z95 / (1.0 + z2 / n_f) * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    Rate {
        hits,
        n,
        rate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    }
}

/// A mean of paired differences with its 95% interval (normal approximation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Shift {
    /// Pairs.
    pub n: u64,
    /// The mean difference (candidate − baseline).
    pub mean: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
    pub hi: f64,
}

/// The mean of `deltas` with its interval (zero width for fewer than two).
pub fn shift(deltas: &[f64]) -> Shift {
    let n = deltas.len();
    if n == 0 {
        return Shift {
            n: 0,
            mean: 0.0,
            lo: 0.0,
            hi: 0.0,
        };
    }
    let mean = deltas.iter().sum::<f64>() / n as f64;
    let half = if n < 2 {
        0.0
    } else {
        let var = deltas.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Z95 * (var / n as f64).sqrt()
    };
    Shift {
        n: n as u64,
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

/// The `q`-th percentile (0–100) of `values`, nearest rank; 0 when empty.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The mean of `values`; 0 when empty.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_published_values() {
        // Newcombe (1998), table I: 81 of 263 gives 0.2553–0.3662.
        let r = wilson(81, 263);
        assert!(
            (r.lo - 0.2553).abs() < 5e-4 && (r.hi - 0.3662).abs() < 5e-4,
            "{r:?}"
        );
        // 15 of 148: 0.0624–0.1605.
        let r = wilson(15, 148);
        assert!(
            (r.lo - 0.0624).abs() < 5e-4 && (r.hi - 0.1605).abs() < 5e-4,
            "{r:?}"
        );
        // All agree at small n: the lower end says how little 10 cases prove.
        let r = wilson(10, 10);
        assert!((r.hi - 1.0).abs() < 1e-9, "{r:?}");
        assert!((r.lo - 0.7225).abs() < 5e-4, "{r:?}");
    }

    #[test]
    fn shifts_and_percentiles() {
        let s = shift(&[0.1, 0.1, 0.1]);
        assert!((s.mean - 0.1).abs() < 1e-12 && (s.hi - s.lo).abs() < 1e-12);
        let s = shift(&[-1.0, 1.0]);
        assert!(s.lo < 0.0 && s.hi > 0.0 && s.mean.abs() < 1e-12);
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            (percentile(&values, 95.0), percentile(&values, 50.0)),
            (95.0, 50.0)
        );
        assert_eq!(percentile(&[], 95.0), 0.0);
    }
}
