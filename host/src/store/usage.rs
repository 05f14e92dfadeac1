//! The daily usage rollup: per UTC day, workflow version, step and model, what model calls
//! cost, in calls, cache hits, failures, tokens, dollars and latency. It is written in the
//! same transaction as each call (so it always agrees with the journal) and read by the
//! dashboard's costs page, which then never scans the calls themselves. A payload purge
//! keeps it, as it keeps the calls' costs.
//!
//! Latency is kept as counts in [`LATENCY_BUCKETS`] power-of-two buckets of milliseconds,
//! so percentiles over any range of days are one sum away, to within a factor of two.

use serde::Serialize;

use super::ModelCallRecord;

/// Latency buckets: bucket `k` counts calls under `2^k` ms (bucket 0: under 1 ms), and the
/// last counts every slower call.
pub const LATENCY_BUCKETS: usize = 16;

/// One row of the rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The workflow.
    pub workflow: String,
    /// Its version.
    pub version: String,
    /// The step that called.
    pub step_id: String,
    /// The provider's model, or the alias when no model was reached (not configured).
    pub model: String,
    /// Calls made (a fallback alias is a call of its own).
    pub calls: i64,
    /// Of them, answered from the response cache.
    pub cached: i64,
    /// Of them, failed (outage, budget, deadline, garbage, …).
    pub failed: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Cost in millionths of a US dollar.
    pub cost_micros: i64,
    /// Latency, summed, in microseconds.
    pub latency_us: i64,
    /// Calls per latency bucket (see [`LATENCY_BUCKETS`]).
    pub latency_buckets: Vec<i64>,
}

/// What one call adds to its row.
pub(crate) struct UsageBump {
    pub day: String,
    pub model: String,
    pub cached: i64,
    pub failed: i64,
    pub bucket: usize,
}

/// The UTC day of `at_ms`, `YYYY-MM-DD`: the same day budgets use.
pub fn utc_day(at_ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_string()
}

/// The bucket of a latency in microseconds.
pub fn latency_bucket(latency_us: u64) -> usize {
    let ms = latency_us / 1000;
    let bucket = if ms == 0 {
        0
    } else {
        (u64::BITS - ms.leading_zeros()) as usize
    };
    bucket.min(LATENCY_BUCKETS - 1)
}

/// The upper bound, in milliseconds, of bucket `k` (`None` for the last, which is open).
pub fn bucket_bound_ms(k: usize) -> Option<u64> {
    (k < LATENCY_BUCKETS - 1).then(|| 1u64 << k)
}

/// The bucket holding the `q` quantile (0 < q ≤ 1) of the counts, if any call was counted.
pub fn quantile_bucket(buckets: &[i64], q: f64) -> Option<usize> {
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    buckets.iter().position(|count| {
        seen += count;
        seen >= rank
    })
}

/// The statement that adds one call to its row, with placeholders written by `param` (1 to
/// 13: day, workflow, version, step, model, 1, cached, failed, prompt and completion tokens,
/// cost, latency, bucket).
pub(crate) fn upsert_sql(param: fn(usize) -> String) -> String {
    let buckets: Vec<String> = (0..LATENCY_BUCKETS).map(|k| format!("lat_{k}")).collect();
    let hit = |k: usize| format!("CASE WHEN {} = {k} THEN 1 ELSE 0 END", param(13));
    let values: Vec<String> = (1..=12)
        .map(param)
        .chain((0..LATENCY_BUCKETS).map(hit))
        .collect();
    let sums = [
        "calls",
        "cached",
        "failed",
        "prompt_tokens",
        "completion_tokens",
        "cost_micros",
        "latency_us",
    ]
    .iter()
    .map(|c| c.to_string())
    .chain(buckets.iter().cloned())
    .map(|c| format!("{c} = usage_daily.{c} + excluded.{c}"))
    .collect::<Vec<_>>();
    format!(
        "INSERT INTO usage_daily (day, workflow, version, step_id, model, calls, cached, failed, \
         prompt_tokens, completion_tokens, cost_micros, latency_us, {}) VALUES ({}) \
         ON CONFLICT (day, workflow, version, step_id, model) DO UPDATE SET {}",
        buckets.join(", "),
        values.join(", "),
        sums.join(", ")
    )
}

/// The query of the rows from `param(1)` (a day) on, newest day first.
pub(crate) fn select_sql(param: fn(usize) -> String) -> String {
    let buckets: Vec<String> = (0..LATENCY_BUCKETS).map(|k| format!("lat_{k}")).collect();
    format!(
        "SELECT day, workflow, version, step_id, model, calls, cached, failed, prompt_tokens, \
         completion_tokens, cost_micros, latency_us, {} FROM usage_daily WHERE day >= {} \
         ORDER BY day DESC, workflow, version, step_id, model",
        buckets.join(", "),
        param(1)
    )
}

impl UsageBump {
    pub(crate) fn of(call: &ModelCallRecord) -> Self {
        Self {
            day: utc_day(call.at_ms),
            model: call.model.clone().unwrap_or_else(|| call.alias.clone()),
            cached: i64::from(call.outcome == "cached"),
            failed: i64::from(call.outcome != "ok" && call.outcome != "cached"),
            bucket: latency_bucket(call.latency_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_power_of_two_buckets_of_milliseconds() {
        for (us, bucket) in [
            (0, 0),
            (999, 0),
            (1_000, 1),
            (1_999, 1),
            (2_000, 2),
            (3_999, 2),
            (4_000, 3),
            (16_383_999, 14),
            (16_384_000, 15),
            (u64::MAX, 15),
        ] {
            assert_eq!(latency_bucket(us), bucket, "{us} µs");
        }
        // A call in bucket k took less than its bound and at least the previous one.
        for k in 1..LATENCY_BUCKETS - 1 {
            let bound = bucket_bound_ms(k).unwrap();
            assert_eq!(latency_bucket(bound * 1000 - 1), k);
            assert_eq!(latency_bucket(bucket_bound_ms(k - 1).unwrap() * 1000), k);
        }
        assert_eq!(bucket_bound_ms(LATENCY_BUCKETS - 1), None);
    }

    #[test]
    fn quantiles_are_read_from_the_counts() {
        let mut buckets = vec![0; LATENCY_BUCKETS];
        buckets[3] = 50;
        buckets[5] = 45;
        buckets[9] = 5;
        assert_eq!(quantile_bucket(&buckets, 0.5), Some(3));
        assert_eq!(quantile_bucket(&buckets, 0.51), Some(5));
        assert_eq!(quantile_bucket(&buckets, 0.95), Some(5));
        assert_eq!(quantile_bucket(&buckets, 0.96), Some(9));
        assert_eq!(quantile_bucket(&[0; LATENCY_BUCKETS], 0.5), None);
    }

    #[test]
    fn the_day_is_the_utc_day_of_the_call() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_796_601_599_999), "2026-12-06");
        assert_eq!(utc_day(1_796_601_600_000), "2026-12-07");
    }
}
