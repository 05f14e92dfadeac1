//! Bounded retries: exponential backoff with full jitter, or the provider's `Retry-After`
//! when it gives one.

use std::time::Duration;

/// How often and how patiently a transient failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt (the ceiling of its jitter).
    pub base: Duration,
    /// The longest backoff.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `Retry-After` when the
    /// provider asked for it, else a uniformly random time up to `base · 2^(attempt-1)`
    /// (capped at `max`), so retries from many runs spread out instead of arriving together.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked;
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max);
        ceiling.mul_f64(jitter())
    }
}

/// A uniformly random number in [0, 1).
fn jitter() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_an_exponential_ceiling_and_retry_after_wins() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        let waits: Vec<Duration> = (0..200).map(|_| policy.delay(2, None)).collect();
        assert!(waits.iter().all(|w| *w < Duration::from_millis(200)));
        assert!(
            waits.iter().any(|w| *w > Duration::from_millis(100)),
            "jitter spreads"
        );
        assert!(
            waits.iter().any(|w| *w < Duration::from_millis(100)),
            "jitter spreads"
        );
        assert!(
            (0..200).all(|_| policy.delay(5, None) < Duration::from_millis(300)),
            "capped"
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}
