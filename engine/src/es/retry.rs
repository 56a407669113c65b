//! Retry policy (the Vector split's `retry`): exponential backoff with jitter between attempts
//! of the items that failed with 429 / 5xx or a transport error, a sleep that a shutdown
//! deadline can cut short, and the start-up requests (template, cluster probe) retried while
//! the cluster is not there yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::client::{BulkError, EsClient};

/// Backoff between attempts of the items that failed with 429 / 5xx or a transport error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// The backoff of start-up requests: 200 ms growing to 5 s.
pub const START_RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(5),
};

/// Backoff state of one batch.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(policy: RetryPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            seed: seed | 1,
        }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next wait: `initial * 2^attempt`, capped at `max`, then between 50% and 100% of
    /// that (full determinism is not wanted: many senders should not retry in step).
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let base = self
            .policy
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.policy.max);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        base.mul_f64(frac)
    }
}

/// Sleeps `d` in short steps; returns `false` early when `abandon` is set.
pub fn sleep_unless(d: Duration, abandon: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if abandon.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Sends one start-up request (`method path`, JSON `body`) until the cluster answers it with a
/// 2xx, waiting [`START_RETRY`]'s backoff (seeded with `seed`) between attempts. After each
/// failure `judge(error, attempts so far)` decides: `Ok(())` waits and tries again, `Err(e)`
/// ends with `Err(Some(e))`, the caller's error. `stop` cuts a wait short: `Err(None)`.
pub fn start_request<E>(
    client: &EsClient,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    stop: &AtomicBool,
    seed: u64,
    mut judge: impl FnMut(BulkError, u32) -> Result<(), E>,
) -> Result<(), Option<E>> {
    let mut backoff = Backoff::new(START_RETRY, seed);
    loop {
        match client.request_ok(method, path, body) {
            Ok(_) => return Ok(()),
            Err(err) => judge(err, backoff.attempts()).map_err(Some)?,
        }
        if !sleep_unless(backoff.next_delay(), stop) {
            return Err(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(
            RetryPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
            7,
        );
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800));
        for x in &d[4..] {
            assert!(*x <= Duration::from_secs(1) && *x >= Duration::from_millis(500));
        }
        assert_eq!(b.attempts(), 8);
    }

    #[test]
    fn abandon_cuts_sleep() {
        let flag = AtomicBool::new(true);
        let t = Instant::now();
        assert!(!sleep_unless(Duration::from_secs(5), &flag));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
