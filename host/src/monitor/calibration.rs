//! What reviewers' verdicts on sampled cases say about a step: its accuracy per confidence
//! bucket, its estimated accuracy with a 95% interval, and the confidence threshold that would
//! reach a target accuracy, with the review load it would cause.
//!
//! Sampled cases are not a uniform sample (strata and boosts oversample some), so each verdict
//! counts with the weight 1/π of its inclusion probability π (Horvitz–Thompson): the estimate
//! is of all the step's cases, not of the sample.

/// A reviewer's verdict on one sampled case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The step's confidence in what it answered.
    pub confidence: f64,
    /// Approved (right) or edited / rejected (wrong).
    pub right: bool,
    /// The probability the case had of being sampled.
    pub probability: f64,
}

impl Verdict {
    fn weight(&self) -> f64 {
        1.0 / self.probability.clamp(1e-9, 1.0)
    }
}

/// An accuracy estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The weighted share of right answers.
    pub accuracy: f64,
    /// The 95% interval's lower end…
    pub low: f64,
    /// …and upper end (Wilson's, at the weights' effective sample size).
    pub high: f64,
    /// The verdicts it rests on.
    pub n: usize,
}

/// The weighted accuracy of `verdicts`, `None` without any.
pub fn estimate<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Option<Estimate> {
    let (mut total, mut right, mut squares, mut n) = (0.0, 0.0, 0.0, 0);
    for v in verdicts {
        let w = v.weight();
        total += w;
        squares += w * w;
        if v.right {
            right += w;
        }
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let p = right / total;
    // Kish's effective sample size: unequal weights carry less information than n equal ones.
    let effective = total * total / squares;
    let z = 1.959_964;
    let centre = (p + z * z / (2.0 * effective)) / (1.0 + z * z / effective);
    let half = z / (1.0 + z * z / effective)
        * (p * (1.0 - p) / effective + z * z / (4.0 * effective * effective)).sqrt();
    Some(Estimate {
        accuracy: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
        n,
    })
}

/// One confidence decile of the reliability curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The decile's lower edge (0.0, 0.1, … 0.9).
    pub from: f64,
    /// The weighted share of the step's cases in it.
    pub share: f64,
    /// The weighted mean confidence in it.
    pub confidence: f64,
    /// Its estimated accuracy.
    pub accuracy: Estimate,
}

/// Accuracy per confidence decile (buckets without verdicts left out).
pub fn reliability(verdicts: &[Verdict]) -> Vec<Bucket> {
    let total: f64 = verdicts.iter().map(Verdict::weight).sum();
    (0..10)
        .filter_map(|tenth| {
            let inside: Vec<&Verdict> = verdicts
                .iter()
                .filter(|v| {
                    ((v.confidence.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9) == tenth
                })
                .collect();
            let accuracy = estimate(inside.iter().copied())?;
            let weight: f64 = inside.iter().map(|v| v.weight()).sum();
            let confidence = inside
                .iter()
                .map(|v| v.weight() * v.confidence)
                .sum::<f64>()
                / weight;
            Some(Bucket {
                from: tenth as f64 / 10.0,
                share: weight / total,
                confidence,
                accuracy,
            })
        })
        .collect()
}

/// The expected calibration error: the share-weighted gap between confidence and accuracy.
pub fn expected_calibration_error(buckets: &[Bucket]) -> f64 {
    buckets
        .iter()
        .map(|b| b.share * (b.confidence - b.accuracy.accuracy).abs())
        .sum()
}

/// A confidence threshold to send the cases under it to review.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    /// Cases with a confidence under this go to review.
    pub threshold: f64,
    /// The estimated accuracy of the cases at or above it (those that pass unreviewed).
    pub accuracy: Estimate,
    /// The share of the step's cases that would go to review.
    pub review_share: f64,
}

/// The smallest threshold, on a grid of hundredths, whose passing cases reach `target`
/// accuracy; `None` when none does. Only a suggestion: nothing applies it.
pub fn suggest_threshold(verdicts: &[Verdict], target: f64) -> Option<Suggestion> {
    let total: f64 = verdicts.iter().map(Verdict::weight).sum();
    (0..100).find_map(|hundredth| {
        let threshold = f64::from(hundredth) / 100.0;
        let passing: Vec<&Verdict> = verdicts
            .iter()
            .filter(|v| v.confidence >= threshold)
            .collect();
        let accuracy = estimate(passing.iter().copied())?;
        if accuracy.accuracy < target {
            return None;
        }
        let passed: f64 = passing.iter().map(|v| v.weight()).sum();
        Some(Suggestion {
            threshold,
            accuracy,
            review_share: 1.0 - passed / total,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Confidences uniform on [0.5, 1), each right with probability equal to its confidence;
    /// low-confidence cases sampled five times as often as high ones (as strata would).
    fn synthetic(n: usize, seed: u64) -> Vec<Verdict> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| {
                let confidence = 0.5 + 0.5 * rng.f64();
                Verdict {
                    confidence,
                    right: rng.f64() < confidence,
                    probability: if confidence < 0.75 { 0.5 } else { 0.1 },
                }
            })
            .collect()
    }

    /// Draws a sample the way `probability` says, from a population of calibrated cases.
    fn sampled(population: usize, seed: u64) -> Vec<Verdict> {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        synthetic(population, seed)
            .into_iter()
            .filter(|v| rng.f64() < v.probability)
            .collect()
    }

    #[test]
    fn a_calibrated_step_is_estimated_within_three_points() {
        // The population's accuracy is the mean confidence: 0.75.
        let mut covered = 0;
        for seed in 0..40 {
            let verdicts = sampled(20_000, seed);
            let e = estimate(&verdicts).unwrap();
            assert!((e.accuracy - 0.75).abs() <= 0.03, "seed {seed}: {e:?}");
            // The interval is about the population actually drawn.
            let population = synthetic(20_000, seed);
            let truth = population.iter().filter(|v| v.right).count() as f64 / 20_000.0;
            if e.low <= truth && truth <= e.high {
                covered += 1;
            }
        }
        // A 95% interval misses about one time in twenty.
        assert!(covered >= 34, "the interval covered {covered} of 40");
        // Unweighted, the oversampled low-confidence cases would pull the estimate down.
        let verdicts = sampled(20_000, 1);
        let plain = verdicts.iter().filter(|v| v.right).count() as f64 / verdicts.len() as f64;
        assert!(plain < 0.70, "{plain}");
    }

    #[test]
    fn the_reliability_curve_follows_the_confidence() {
        let verdicts = sampled(50_000, 3);
        let buckets = reliability(&verdicts);
        assert_eq!(buckets.len(), 5);
        for b in &buckets {
            assert!((b.accuracy.accuracy - b.confidence).abs() < 0.03, "{b:?}");
            assert!((b.share - 0.2).abs() < 0.02, "{b:?}");
        }
        assert!(expected_calibration_error(&buckets) < 0.02);
    }

    #[test]
    fn the_suggested_threshold_is_the_analytic_one() {
        // Above t the accuracy is the mean of U[t, 1): (t + 1) / 2, so 0.9 needs t = 0.8, and
        // the cases under it, (0.8 − 0.5) / 0.5 = 60% of all, would go to review.
        let verdicts = sampled(100_000, 5);
        let s = suggest_threshold(&verdicts, 0.9).unwrap();
        assert!((s.threshold - 0.8).abs() <= 0.02, "{s:?}");
        assert!((s.review_share - 0.6).abs() <= 0.04, "{s:?}");
        assert!(suggest_threshold(&verdicts, 0.999).is_none());
    }
}
