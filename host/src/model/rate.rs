//! Per-provider rate limits (requests and tokens per minute), shared by every run on the
//! host: token buckets from `governor`. A caller waits for room within its deadline, or is
//! told at once that the wait would outlast it.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The buckets of one provider.
#[derive(Debug, Default)]
pub struct RateLimits {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl RateLimits {
    /// Buckets for the limits that are set.
    pub fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u32>) -> Self {
        let bucket = |n: Option<u32>| {
            n.and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_minute(n)))
        };
        Self {
            requests: bucket(requests_per_minute),
            tokens: bucket(tokens_per_minute),
        }
    }

    /// Takes one request and `tokens` tokens, waiting for them as long as `deadline` allows;
    /// the error says why it could not.
    pub async fn acquire(&self, tokens: u32, deadline: Instant) -> Result<(), String> {
        if let Some(bucket) = &self.requests {
            wait(bucket, NonZeroU32::MIN, deadline, "requests").await?;
        }
        if let (Some(bucket), Some(n)) = (&self.tokens, NonZeroU32::new(tokens)) {
            wait(bucket, n, deadline, "tokens").await?;
        }
        Ok(())
    }
}

async fn wait(bucket: &Bucket, n: NonZeroU32, deadline: Instant, what: &str) -> Result<(), String> {
    let clock = DefaultClock::default();
    loop {
        let wait = match bucket.check_n(n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(clock.now()),
            Err(_) => {
                return Err(format!(
                    "allows fewer {what} per minute than this call needs ({n})"
                ));
            }
        };
        // Wake a little after the bucket says, so the next check finds the room there.
        let wait = wait + Duration::from_millis(1);
        if Instant::now() + wait >= deadline {
            return Err(format!(
                "would make this call wait {} for {what}, past its deadline",
                humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
            ));
        }
        tokio::time::sleep(wait).await;
    }
}
