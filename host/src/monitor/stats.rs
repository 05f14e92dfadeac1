//! The tests and distances that compare a window's counts with its baseline's.
//!
//! Each takes counts per bin (the same frozen bins on both sides) and is exact arithmetic on
//! them; distributions come from `statrs`.

use statrs::distribution::{ChiSquared, ContinuousCDF, DiscreteCDF, Hypergeometric, Normal};

/// What an empty bin's share becomes in PSI, so that its logarithm is finite (the rule
/// Evidently applies).
pub const PSI_EMPTY_SHARE: f64 = 0.0001;

/// Shares of a count vector; all zero when it counts nothing.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// The population stability index, Σ (a − e) · ln(a / e) over the bins, with an empty bin's
/// share taken as [`PSI_EMPTY_SHARE`]. Bins empty on both sides add nothing.
pub fn psi(baseline: &[u64], current: &[u64]) -> f64 {
    shares(baseline)
        .into_iter()
        .zip(shares(current))
        .filter(|(e, a)| *e > 0.0 || *a > 0.0)
        .map(|(e, a)| {
            let (e, a) = (e.max(PSI_EMPTY_SHARE), a.max(PSI_EMPTY_SHARE));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The Jensen–Shannon distance (base 2, so between 0 and 1): the square root of the mean of
/// each side's Kullback–Leibler divergence from their midpoint.
pub fn js_distance(baseline: &[u64], current: &[u64]) -> f64 {
    let (p, q) = (shares(baseline), shares(current));
    let kl = |x: &[f64], m: &[f64]| -> f64 {
        x.iter()
            .zip(m)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, m)| x * (x / m).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    ((kl(&p, &m) + kl(&q, &m)) / 2.0).max(0.0).sqrt()
}

/// A test's statistic, its degrees of freedom where it has them, and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The test statistic (χ², or z).
    pub statistic: f64,
    /// Degrees of freedom of a χ² test; 0 for the others.
    pub df: u64,
    /// The probability of a result at least this extreme if nothing changed.
    pub p_value: f64,
}

/// Pearson's χ² test of homogeneity on the 2 × K table of baseline and current counts.
/// Categories empty on both sides are left out; with fewer than two left, nothing can differ
/// and the p-value is 1.
pub fn chi_square_homogeneity(baseline: &[u64], current: &[u64]) -> TestResult {
    let cells: Vec<(f64, f64)> = baseline
        .iter()
        .zip(current)
        .filter(|(b, c)| **b + **c > 0)
        .map(|(b, c)| (*b as f64, *c as f64))
        .collect();
    let (nb, nc) = cells
        .iter()
        .fold((0.0, 0.0), |(x, y), (b, c)| (x + b, y + c));
    if cells.len() < 2 || nb == 0.0 || nc == 0.0 {
        return TestResult {
            statistic: 0.0,
            df: 0,
            p_value: 1.0,
        };
    }
    let total = nb + nc;
    let statistic: f64 = cells
        .iter()
        .map(|(b, c)| {
            let column = b + c;
            let (eb, ec) = (column * nb / total, column * nc / total);
            (b - eb).powi(2) / eb + (c - ec).powi(2) / ec
        })
        .sum();
    let df = cells.len() as u64 - 1;
    TestResult {
        statistic,
        df,
        p_value: chi_square_sf(statistic, df),
    }
}

/// P(χ²(df) > x).
pub fn chi_square_sf(x: f64, df: u64) -> f64 {
    ChiSquared::new(df as f64).map_or(1.0, |d| d.sf(x))
}

/// The value a χ²(df) variable exceeds with probability `alpha`.
pub fn chi_square_quantile(alpha: f64, df: u64) -> f64 {
    ChiSquared::new(df as f64).map_or(f64::INFINITY, |d| d.inverse_cdf(1.0 - alpha))
}

/// Which change of a rate matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Only a rise (failures, schema violations, reviews: a fall is good news).
    Up,
    /// A change either way.
    Both,
}

/// A rate's change, `x2` of `n2` now against `x1` of `n1` in the baseline: the pooled
/// two-proportion z-test, or Fisher's exact test when a cell's expected count is below 5
/// (where the normal approximation is poor). Two-sided Fisher doubles the smaller tail.
pub fn proportion_test(x1: u64, n1: u64, x2: u64, n2: u64, direction: Direction) -> TestResult {
    if n1 == 0 || n2 == 0 {
        return TestResult {
            statistic: 0.0,
            df: 0,
            p_value: 1.0,
        };
    }
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let expected_min = [n1 as f64, n2 as f64]
        .into_iter()
        .flat_map(|n| [n * pooled, n * (1.0 - pooled)])
        .fold(f64::INFINITY, f64::min);
    if expected_min < 5.0 {
        return fisher(x1, n1, x2, n2, direction);
    }
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let z = if se == 0.0 {
        0.0
    } else {
        (x2 as f64 / n2 as f64 - x1 as f64 / n1 as f64) / se
    };
    let normal = Normal::standard();
    let p_value = match direction {
        Direction::Up => normal.sf(z),
        Direction::Both => 2.0 * normal.sf(z.abs()),
    };
    TestResult {
        statistic: z,
        df: 0,
        p_value: p_value.min(1.0),
    }
}

/// Fisher's exact test on the 2 × 2 table, by the hypergeometric law of the current side's
/// successes given both margins.
fn fisher(x1: u64, n1: u64, x2: u64, n2: u64, direction: Direction) -> TestResult {
    let Ok(law) = Hypergeometric::new(n1 + n2, x1 + x2, n2) else {
        return TestResult {
            statistic: 0.0,
            df: 0,
            p_value: 1.0,
        };
    };
    let upper = if x2 == 0 { 1.0 } else { law.sf(x2 - 1) };
    let lower = law.cdf(x2);
    let p_value = match direction {
        Direction::Up => upper,
        Direction::Both => (2.0 * upper.min(lower)).min(1.0),
    };
    TestResult {
        statistic: x2 as f64,
        df: 0,
        p_value,
    }
}

/// A control chart of a window's mean: the baseline cut into chunks of a window's size gives
/// the spread of a window mean; a mean more than three of those from the centre is out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanChart {
    /// The mean of the chunk means.
    pub centre: f64,
    /// The standard deviation of the chunk means.
    pub sigma: f64,
    /// The chunk size `sigma` was measured at.
    pub chunk: usize,
}

impl MeanChart {
    /// The chart of `baseline` in chunks of `chunk` values; `None` with fewer than two chunks.
    pub fn from_baseline(baseline: &[f64], chunk: usize) -> Option<Self> {
        let means: Vec<f64> = baseline
            .chunks_exact(chunk.max(1))
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        if means.len() < 2 {
            return None;
        }
        let centre = means.iter().sum::<f64>() / means.len() as f64;
        let variance =
            means.iter().map(|m| (m - centre).powi(2)).sum::<f64>() / (means.len() - 1) as f64;
        Some(Self {
            centre,
            sigma: variance.sqrt(),
            chunk: chunk.max(1),
        })
    }

    /// How many of the chart's sigmas `mean` (of `n` values) is from the centre; the sigma is
    /// scaled from the chunk size to `n`.
    pub fn sigmas(&self, mean: f64, n: usize) -> f64 {
        let sigma = self.sigma * (self.chunk as f64 / n.max(1) as f64).sqrt();
        if sigma == 0.0 {
            return if mean == self.centre {
                0.0
            } else {
                f64::INFINITY
            };
        }
        (mean - self.centre).abs() / sigma
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn psi_matches_the_known_vector() {
        // Shares (0.3, 0.4, 0.3) against (0.2, 0.4, 0.4): 0.1·ln(1.5) + 0.1·ln(4/3).
        let psi = psi(&[30, 40, 30], &[20, 40, 40]);
        assert!(close(psi, 0.069_314_7, 1e-6), "{psi}");
        assert_eq!(super::psi(&[5, 5], &[5, 5]), 0.0);
    }

    #[test]
    fn an_empty_bin_counts_as_a_tiny_share() {
        let got = psi(&[50, 50, 0], &[50, 40, 10]);
        let (e, a) = (PSI_EMPTY_SHARE, 0.1);
        let expected = (0.4 - 0.5) * (0.4f64 / 0.5).ln() + (a - e) * (a / e).ln();
        assert!(close(got, expected, 1e-12), "{got} vs {expected}");
    }

    #[test]
    fn js_distance_is_zero_for_equal_and_one_for_disjoint() {
        assert!(close(js_distance(&[1, 2, 3], &[2, 4, 6]), 0.0, 1e-12));
        assert!(close(js_distance(&[1, 0], &[0, 1]), 1.0, 1e-12));
        // (0.5, 0.5) against (1, 0): JSD = 1 - 0.75·log2(4/3)... computed by hand.
        let m = [0.75, 0.25];
        let kl_p = 0.5 * (0.5f64 / m[0]).log2() + 0.5 * (0.5f64 / m[1]).log2();
        let kl_q = (1.0f64 / m[0]).log2();
        let expected = ((kl_p + kl_q) / 2.0).sqrt();
        assert!(close(js_distance(&[1, 1], &[1, 0]), expected, 1e-12));
    }

    #[test]
    fn chi_square_matches_a_hand_computed_table() {
        // Baseline (30, 10), current (10, 10): totals 40 and 20, columns 40 and 20.
        // Expected (26.67, 13.33 / 13.33, 6.67): χ² = 3.75, df 1.
        let r = chi_square_homogeneity(&[30, 10], &[10, 10]);
        assert!(close(r.statistic, 3.75, 1e-9), "{r:?}");
        assert_eq!(r.df, 1);
        assert!(close(r.p_value, 0.052_808, 1e-5), "{r:?}");
        // Categories empty on both sides drop out; identical shares are no evidence.
        let same = chi_square_homogeneity(&[10, 0, 20], &[20, 0, 40]);
        assert_eq!((same.df, same.p_value), (1, 1.0));
    }

    #[test]
    fn chi_square_quantiles_match_tables() {
        assert!(close(chi_square_quantile(0.05, 9), 16.919, 1e-3));
        assert!(close(chi_square_quantile(0.05, 19), 30.144, 1e-3));
        assert!(close(chi_square_sf(16.919, 9), 0.05, 1e-4));
    }

    #[test]
    fn proportions_use_z_then_fisher_for_small_counts() {
        // 50 of 1000 against 80 of 1000: pooled 0.065, z = 0.03 / 0.011025 = 2.721.
        let r = proportion_test(50, 1000, 80, 1000, Direction::Both);
        assert!(close(r.statistic, 2.7211, 1e-3), "{r:?}");
        assert!(close(r.p_value, 0.006_51, 1e-4), "{r:?}");
        let up = proportion_test(50, 1000, 80, 1000, Direction::Up);
        assert!(close(up.p_value * 2.0, r.p_value, 1e-12));
        // A fall is no evidence of a rise.
        assert!(proportion_test(80, 1000, 50, 1000, Direction::Up).p_value > 0.99);
        // 1 of 10 against 5 of 10 (expected counts below 5): Fisher, one-sided
        // P(X ≥ 5) for X ~ Hypergeometric(20, 6, 10) = (C(6,5)C(14,5) + C(6,6)C(14,4)) / C(20,10).
        let fisher = proportion_test(1, 10, 5, 10, Direction::Up);
        let expected = (6.0 * 2002.0 + 1001.0) / 184_756.0;
        assert!(close(fisher.p_value, expected, 1e-9), "{fisher:?}");
    }

    #[test]
    fn a_mean_chart_scales_its_sigma_to_the_window() {
        let baseline: Vec<f64> = (0..400).map(|i| f64::from(i % 2)).collect();
        let chart = MeanChart::from_baseline(&baseline, 100).unwrap();
        assert_eq!(chart.centre, 0.5);
        assert_eq!(chart.sigma, 0.0);
        assert_eq!(chart.sigmas(0.5, 100), 0.0);
        assert!(chart.sigmas(0.6, 100).is_infinite());
        let noisy: Vec<f64> = (0..400).map(|i| f64::from((i / 100) % 2)).collect();
        let chart = MeanChart::from_baseline(&noisy, 100).unwrap();
        // Chunk means 0, 1, 0, 1: sd 0.57735; at 400 values a window's sd is half that.
        assert!(close(chart.sigmas(1.0, 100), 0.5 / 0.577_350, 1e-5));
        assert!(close(chart.sigmas(1.0, 400), 1.0 / 0.577_350, 1e-5));
    }
}
