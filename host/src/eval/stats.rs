//! The statistics of an evaluation and of a rollout's checks: Wilson score intervals for
//! rates, Newcombe's interval for the difference of two rates, a normal interval for a
//! paired mean, and percentiles.

use serde::Serialize;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;
/// z for a one-sided 95% bound (a two-sided 90% interval).
pub const Z95_ONE_SIDED: f64 = 1.644_853_626_951_472;

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
    wilson_at(hits, n, Z95)
}

/// [`wilson`] at another `z`.
pub fn wilson_at(hits: u64, n: u64, z: f64) -> Rate {
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
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = z / (1.0 + z2 / n_f) * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    Rate {
        hits,
        n,
        rate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    }
}

/// The difference of two rates, `a − b`, with its interval at `z`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Difference {
    /// a's rate − b's rate.
    pub estimate: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
    pub hi: f64,
}

/// Newcombe's hybrid score interval (method 10, 1998) for `a_hits/a_n − b_hits/b_n`: each
/// rate's Wilson interval, combined. Unlike the Wald interval it stays honest at small n and
/// at rates of 0, which is where a canary's failure rate starts.
pub fn newcombe(a_hits: u64, a_n: u64, b_hits: u64, b_n: u64, z: f64) -> Difference {
    let a = wilson_at(a_hits, a_n, z);
    let b = wilson_at(b_hits, b_n, z);
    let (pa, pb) = (rate_of(a_hits, a_n), rate_of(b_hits, b_n));
    let estimate = pa - pb;
    Difference {
        estimate,
        lo: estimate - ((pa - a.lo).powi(2) + (b.hi - pb).powi(2)).sqrt(),
        hi: estimate + ((a.hi - pa).powi(2) + (pb - b.lo).powi(2)).sqrt(),
    }
}

fn rate_of(hits: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { hits as f64 / n as f64 }
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
    fn newcombe_matches_the_published_values() {
        // Newcombe (1998), table II, method 10: 56/70 − 48/80 gives 0.0524–0.3339.
        let d = newcombe(56, 70, 48, 80, Z95);
        assert!((d.estimate - 0.2).abs() < 1e-12, "{d:?}");
        assert!(
            (d.lo - 0.0524).abs() < 5e-4 && (d.hi - 0.3339).abs() < 5e-4,
            "{d:?}"
        );
        // 9/10 − 3/10: 0.1705–0.8090.
        let d = newcombe(9, 10, 3, 10, Z95);
        assert!(
            (d.lo - 0.1705).abs() < 5e-4 && (d.hi - 0.8090).abs() < 5e-4,
            "{d:?}"
        );
        // Nothing failed on either side: the interval straddles 0, narrower one-sided.
        let two = newcombe(0, 40, 0, 40, Z95);
        let one = newcombe(0, 40, 0, 40, Z95_ONE_SIDED);
        assert!(
            two.lo < 0.0 && two.hi > 0.0 && one.hi < two.hi,
            "{one:?} {two:?}"
        );
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
