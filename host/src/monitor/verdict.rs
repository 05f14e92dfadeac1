//! From a window's counts to a verdict, and from verdicts to an alert that opens and closes
//! without flapping.
//!
//! A window's [`Evidence`] is `Drift` only when the change is significant at the budgeted α
//! *and* material (over a floor per statistic). An alert opens on two windows in a row, but
//! not on two windows each barely over α: the first needs only to be `Suspect` (material, and
//! significant at the looser [`SUSPECT_ALPHA`]) when the two windows *pooled* are `Drift`.
//! Pooling doubles the sample the opening decision rests on, so a real shift opens the alert
//! on its second window far more often than two separate tests at α would, and a false alert
//! still needs the pooled windows to pass α. It closes after two windows in a row with no
//! material evidence.

use statrs::distribution::{ContinuousCDF, Normal};

use super::stats::{
    Direction, MeanChart, chi_square_homogeneity, chi_square_sf, js_distance, proportion_test, psi,
};
use super::threshold::psi_threshold;

/// Samples a window needs before it is judged, by default (`[monitor] min-samples`); below
/// it the verdict is `insufficient`.
pub const MIN_SAMPLES: u64 = 100;
/// The fewest samples any test here is made on, whatever a workflow asks: below it a window is
/// `insufficient`.
pub const MIN_TESTABLE: u64 = 20;
/// PSI under which a change is not material, however significant.
pub const PSI_FLOOR: f64 = 0.1;
/// Jensen–Shannon distance under which a categorical change is not material.
pub const JS_FLOOR: f64 = 0.1;
/// A rate's change is material from this many points (absolute)…
pub const RATE_FLOOR_POINTS: f64 = 0.02;
/// …and this ratio (relative), both.
pub const RATE_FLOOR_RATIO: f64 = 1.5;
/// A mean confidence's shift is material from this much.
pub const MEAN_SHIFT_FLOOR: f64 = 0.05;
/// The significance a window needs to be the first of two that open an alert.
pub const SUSPECT_ALPHA: f64 = 0.01;
/// Windows in a row without material evidence that close an open alert.
pub const CLEAN_WINDOWS_TO_CLOSE: u32 = 2;

/// What one window says about one feature, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    /// Too few samples to judge.
    Insufficient,
    /// No significant change.
    Clean,
    /// Significant but not material: reported as a warning, never an alert.
    Immaterial,
    /// Material, and significant at [`SUSPECT_ALPHA`] but not at α.
    Suspect,
    /// Material and significant at α.
    Drift,
}

impl Evidence {
    /// `Drift`.
    pub fn is_drift(self) -> bool {
        self == Self::Drift
    }

    /// Evidence that can start or hold an alert.
    pub fn is_material(self) -> bool {
        self >= Self::Suspect
    }

    fn from(p_value: f64, material: bool, alpha: f64) -> Self {
        match (p_value < alpha, p_value < SUSPECT_ALPHA, material) {
            (true, _, true) => Self::Drift,
            (true, _, false) => Self::Immaterial,
            (false, true, true) => Self::Suspect,
            _ => Self::Clean,
        }
    }
}

/// One feature's score in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Which statistic: `psi`, `js` (with a χ² test), `rate` or `mean`.
    pub stat: &'static str,
    /// Its value.
    pub score: f64,
    /// The value from which it is drift: significance at α or the materiality floor,
    /// whichever is higher.
    pub threshold: f64,
    /// The p-value of the test behind it.
    pub p_value: f64,
    /// The window's samples.
    pub n: u64,
    /// What the window says.
    pub evidence: Evidence,
}

fn insufficient(stat: &'static str, n: u64) -> Score {
    Score {
        stat,
        score: 0.0,
        threshold: 0.0,
        p_value: 1.0,
        n,
        evidence: Evidence::Insufficient,
    }
}

/// A numeric feature (or a confidence) on frozen bins: PSI against its threshold.
pub fn judge_numeric(baseline: &[u64], current: &[u64], alpha: f64) -> Score {
    let (m, n) = (current.iter().sum::<u64>(), baseline.iter().sum::<u64>());
    if m < MIN_TESTABLE || n == 0 {
        return insufficient("psi", m);
    }
    let bins = baseline
        .iter()
        .zip(current)
        .filter(|(b, c)| **b + **c > 0)
        .count();
    let score = psi(baseline, current);
    // PSI scaled by the harmonic sample size is about χ²(bins − 1) when nothing changed.
    let harmonic = 1.0 / (1.0 / m as f64 + 1.0 / n as f64);
    let p_value = chi_square_sf(score * harmonic, bins.saturating_sub(1).max(1) as u64);
    Score {
        stat: "psi",
        score,
        threshold: psi_threshold(alpha, bins, m, Some(n)).max(PSI_FLOOR),
        p_value,
        n: m,
        evidence: Evidence::from(p_value, score >= PSI_FLOOR, alpha),
    }
}

/// A categorical feature: χ² homogeneity for significance, Jensen–Shannon for materiality.
pub fn judge_categorical(baseline: &[u64], current: &[u64], alpha: f64) -> Score {
    let m = current.iter().sum::<u64>();
    if m < MIN_TESTABLE || baseline.iter().sum::<u64>() == 0 {
        return insufficient("js", m);
    }
    let test = chi_square_homogeneity(baseline, current);
    let score = js_distance(baseline, current);
    Score {
        stat: "js",
        score,
        threshold: JS_FLOOR,
        p_value: test.p_value,
        n: m,
        evidence: Evidence::from(test.p_value, score >= JS_FLOOR, alpha),
    }
}

/// A rate (`hits` of `n`): the two-proportion test, material past both floors.
pub fn judge_rate(
    baseline: (u64, u64),
    current: (u64, u64),
    direction: Direction,
    alpha: f64,
) -> Score {
    let ((x1, n1), (x2, n2)) = (baseline, current);
    if n2 < MIN_TESTABLE || n1 == 0 {
        return insufficient("rate", n2);
    }
    let (r1, r2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let change = match direction {
        Direction::Up => r2 - r1,
        Direction::Both => (r2 - r1).abs(),
    };
    let (low, high) = if r2 >= r1 { (r1, r2) } else { (r2, r1) };
    let ratio_ok = match direction {
        Direction::Up if r2 < r1 => false,
        _ => low == 0.0 || high / low >= RATE_FLOOR_RATIO,
    };
    let test = proportion_test(x1, n1, x2, n2, direction);
    Score {
        stat: "rate",
        score: r2,
        threshold: r1 + RATE_FLOOR_POINTS,
        p_value: test.p_value,
        n: n2,
        evidence: Evidence::from(test.p_value, change >= RATE_FLOOR_POINTS && ratio_ok, alpha),
    }
}

/// A window's mean (of a confidence) against the baseline's control chart.
pub fn judge_mean(chart: &MeanChart, mean: f64, n: u64, alpha: f64) -> Score {
    if n < MIN_TESTABLE {
        return insufficient("mean", n);
    }
    let sigmas = chart.sigmas(mean, n as usize);
    let p_value = 2.0 * Normal::standard().sf(sigmas);
    Score {
        stat: "mean",
        score: mean,
        threshold: chart.centre - MEAN_SHIFT_FLOOR,
        p_value,
        n,
        evidence: Evidence::from(
            p_value,
            (mean - chart.centre).abs() >= MEAN_SHIFT_FLOOR,
            alpha,
        ),
    }
}

/// What a window did to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    Held,
    /// The alert opened (firing).
    Opened,
    /// The alert closed (resolved).
    Resolved,
}

/// One alert's state across windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alert {
    /// Firing.
    pub open: bool,
    /// The last judged window was material evidence.
    previous_material: bool,
    /// Judged windows in a row without material evidence, while open.
    clean: u32,
}

impl Alert {
    /// Takes the next window's evidence; `pooled` judges it together with the window before
    /// (their counts added), and is asked for only when the two could open the alert. An
    /// `insufficient` window changes nothing.
    pub fn observe(&mut self, window: Evidence, pooled: impl FnOnce() -> Evidence) -> Transition {
        if window == Evidence::Insufficient {
            return Transition::Held;
        }
        let material = window.is_material();
        let was_material = std::mem::replace(&mut self.previous_material, material);
        if self.open {
            self.clean = if material { 0 } else { self.clean + 1 };
            if self.clean >= CLEAN_WINDOWS_TO_CLOSE {
                self.open = false;
                self.clean = 0;
                return Transition::Resolved;
            }
            return Transition::Held;
        }
        if material && was_material && pooled().is_drift() {
            self.open = true;
            self.clean = 0;
            return Transition::Opened;
        }
        Transition::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significance_without_materiality_is_a_warning_and_the_reverse_is_clean() {
        assert_eq!(Evidence::from(1e-9, false, 1e-4), Evidence::Immaterial);
        assert_eq!(Evidence::from(0.5, true, 1e-4), Evidence::Clean);
        assert_eq!(Evidence::from(1e-3, true, 1e-4), Evidence::Suspect);
        assert_eq!(Evidence::from(1e-5, true, 1e-4), Evidence::Drift);
    }

    #[test]
    fn large_samples_need_a_material_change() {
        let alpha = 1.737e-4;
        // A baseline and windows of 100,000 samples over ten bins, the windows' PSI 0.02 and
        // 0.15: both are significant at that size, only the second is material.
        let baseline = vec![10_000u64; 10];
        let window = |shift: f64| -> Vec<u64> {
            (0..10)
                .map(|i| {
                    let tilt = if i < 5 { 1.0 - shift } else { 1.0 + shift };
                    (10_000.0 * tilt) as u64
                })
                .collect()
        };
        let small = window(0.141);
        let large = window(0.378);
        let (small, large) = (
            judge_numeric(&baseline, &small, alpha),
            judge_numeric(&baseline, &large, alpha),
        );
        assert!((small.score - 0.02).abs() < 0.001, "{small:?}");
        assert!((large.score - 0.15).abs() < 0.002, "{large:?}");
        assert_eq!(small.evidence, Evidence::Immaterial, "{small:?}");
        assert!(large.evidence.is_drift(), "{large:?}");
    }

    #[test]
    fn small_windows_are_insufficient() {
        let score = judge_numeric(&[10, 10], &[MIN_TESTABLE - 1, 0], 0.01);
        assert_eq!(score.evidence, Evidence::Insufficient);
    }

    #[test]
    fn an_alert_opens_on_two_material_windows_and_closes_on_two_clean_ones() {
        use Evidence::*;
        let mut alert = Alert::default();
        assert_eq!(alert.observe(Drift, || Drift), Transition::Held);
        assert_eq!(alert.observe(Insufficient, || Drift), Transition::Held);
        assert_eq!(alert.observe(Suspect, || Drift), Transition::Opened);
        assert_eq!(alert.observe(Clean, || Clean), Transition::Held);
        assert_eq!(alert.observe(Drift, || Drift), Transition::Held);
        assert_eq!(alert.observe(Immaterial, || Clean), Transition::Held);
        assert_eq!(alert.observe(Clean, || Clean), Transition::Resolved);
        // Two suspect windows whose pooled evidence falls short do not open it.
        let mut alert = Alert::default();
        alert.observe(Suspect, || Drift);
        assert_eq!(alert.observe(Suspect, || Suspect), Transition::Held);
        assert!(!alert.open);
    }
}
