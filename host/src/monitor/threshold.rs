//! Where a drift threshold comes from: a budget of false alerts, not a bare significance level.
//!
//! A team can say "at most one false alert a month per step"; nobody can say what α means for
//! eight features judged every hour. The budget is a number of windows between false alerts;
//! spread over a step's features it gives each feature's α (Šidák's correction, as Alibi
//! Detect does), and α with the sample sizes gives PSI's threshold.

use super::stats::chi_square_quantile;

/// Windows between two false alerts of one step, by default: 30 days of hourly windows.
pub const DEFAULT_WINDOWS_BETWEEN_FALSE_ALERTS: f64 = 720.0;

/// How rarely a step may alert on noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FalseAlertBudget {
    /// Expected windows between two false alerts of one step.
    pub windows_between_false_alerts: f64,
}

impl Default for FalseAlertBudget {
    fn default() -> Self {
        Self {
            windows_between_false_alerts: DEFAULT_WINDOWS_BETWEEN_FALSE_ALERTS,
        }
    }
}

impl FalseAlertBudget {
    /// Each feature's significance level when a step judges `features` of them per window:
    /// α = 1 − (1 − 1/W)^(1/d), so that the chance any of them fires on noise is 1/W.
    pub fn alpha(&self, features: usize) -> f64 {
        let step = 1.0 / self.windows_between_false_alerts.max(1.0);
        1.0 - (1.0 - step).powf(1.0 / features.max(1) as f64)
    }
}

/// The PSI above which a window of `current` samples differs significantly, at level `alpha`,
/// from a baseline of `baseline` samples over `bins` bins: χ²(1 − α; bins − 1) · (1/M + 1/N).
/// Under no change, PSI times the harmonic sample size is about χ² with bins − 1 degrees of
/// freedom; the 1/N term is the baseline's own sampling noise, which a fixed-reference
/// threshold (χ²/M) leaves out and which dominates when a window is larger than its baseline.
pub fn psi_threshold(alpha: f64, bins: usize, current: u64, baseline: Option<u64>) -> f64 {
    let df = bins.saturating_sub(1).max(1) as u64;
    let inverse = |n: u64| 1.0 / n.max(1) as f64;
    chi_square_quantile(alpha, df) * (inverse(current) + baseline.map_or(0.0, inverse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn fixed_reference_thresholds_match_the_published_values() {
        // χ²/M at M = 400, B = 10, α = .05 and at M = 1000, B = 20.
        assert!(close(psi_threshold(0.05, 10, 400, None), 0.0423, 5e-5));
        assert!(close(psi_threshold(0.05, 20, 1000, None), 0.0301, 5e-5));
    }

    #[test]
    fn a_finite_baseline_adds_its_own_noise() {
        let fixed = psi_threshold(0.05, 10, 400, None);
        let finite = psi_threshold(0.05, 10, 400, Some(400));
        assert!(close(finite, 2.0 * fixed, 1e-12));
    }

    #[test]
    fn the_default_budget_gives_each_of_eight_features_a_small_alpha() {
        let alpha = FalseAlertBudget::default().alpha(8);
        assert!(close(alpha, 1.737e-4, 1e-6), "{alpha}");
        // Eleven bins (ten deciles and missing): about 34 · (1/M + 1/N).
        let per_sample = psi_threshold(alpha, 11, 1, None);
        assert!((33.0..36.0).contains(&per_sample), "{per_sample}");
        // One feature gets the whole budget.
        assert!(close(
            FalseAlertBudget::default().alpha(1),
            1.0 / 720.0,
            1e-12
        ));
    }
}
