//! A token bucket for the generators: tokens (packets) accrue at `rate` per second up to
//! `capacity`; a sender checks it once per batch. Time is passed in, so tests drive it with
//! made-up instants.

use std::time::{Duration, Instant};

/// Tokens accrue at a fixed rate up to a capacity (the largest burst).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts with `initial` tokens (at most `capacity`) at `now`.
    ///
    /// # Panics
    /// If `rate_per_s` is not finite and positive or `capacity` < 1.
    pub fn new(rate_per_s: f64, capacity: f64, initial: f64, now: Instant) -> Self {
        assert!(
            rate_per_s.is_finite() && rate_per_s > 0.0,
            "token bucket rate must be positive"
        );
        assert!(capacity >= 1.0, "token bucket capacity must be >= 1");
        TokenBucket {
            rate_per_s,
            capacity,
            tokens: initial.clamp(0.0, capacity),
            last: now,
        }
    }

    /// The capacity a sender of `rate_per_s` in batches of `batch` wants: two batches, or
    /// 20 ms of traffic, so that a late wake-up (`sleep` overshoots by milliseconds on a busy
    /// machine) is made up instead of lost, with bursts of at most 20 ms of traffic.
    pub fn capacity_for(rate_per_s: f64, batch: usize) -> f64 {
        (2.0 * batch as f64).max(rate_per_s * 0.02).max(1.0)
    }

    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    fn refill(&mut self, now: Instant) {
        if let Some(dt) = now.checked_duration_since(self.last) {
            self.tokens = (self.tokens + dt.as_secs_f64() * self.rate_per_s).min(self.capacity);
            self.last = now;
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.floor() as u64
    }

    /// Takes up to `want` whole tokens at `now` and returns how many were taken (0 if less
    /// than one token is there).
    pub fn take(&mut self, want: u64, now: Instant) -> u64 {
        self.refill(now);
        let n = (self.tokens.floor() as u64).min(want);
        self.tokens -= n as f64;
        n
    }

    /// Gives back `n` tokens taken but not used (a short send), up to the capacity.
    pub fn put_back(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.capacity);
    }

    /// How long after `now` until `n` tokens (at most the capacity) are there.
    pub fn time_until(&mut self, n: u64, now: Instant) -> Duration {
        self.refill(now);
        let need = (n as f64).min(self.capacity) - self.tokens;
        if need <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(need / self.rate_per_s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accrues_at_the_rate_up_to_the_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 64.0, 0.0, t0);
        assert_eq!(b.take(10, t0), 0);
        // 10 ms at 1000/s: 10 tokens
        assert_eq!(b.take(100, t0 + Duration::from_millis(10)), 10);
        assert_eq!(b.take(100, t0 + Duration::from_millis(10)), 0);
        // a long pause fills only up to the capacity
        assert_eq!(b.take(1000, t0 + Duration::from_secs(10)), 64);
    }

    #[test]
    fn over_a_long_run_the_rate_is_kept() {
        // a sender checking every 0.7 ms for batches of up to 32 at 20 kpps for 2 s
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20_000.0, TokenBucket::capacity_for(20_000.0, 32), 0.0, t0);
        let mut sent = 0u64;
        for i in 1..=(2_000_000 / 700) {
            sent += b.take(32, t0 + Duration::from_micros(700 * i));
        }
        // 2 s at 20 kpps = 40000, less what is still in the bucket (< 1 batch)
        assert!((39_960..=40_000).contains(&sent), "sent {sent}");
    }

    #[test]
    fn a_late_wake_up_is_made_up() {
        let t0 = Instant::now();
        let cap = TokenBucket::capacity_for(8000.0, 32);
        let mut b = TokenBucket::new(8000.0, cap, 0.0, t0);
        // asleep 15 ms instead of 1: the 120 packets owed can still go
        assert_eq!(b.take(1000, t0 + Duration::from_millis(15)), 120);
    }

    #[test]
    fn time_until_and_put_back() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 10.0, 0.0, t0);
        assert_eq!(b.time_until(5, t0), Duration::from_millis(50));
        // more than the capacity is never asked for
        assert_eq!(b.time_until(50, t0), Duration::from_millis(100));
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(b.time_until(5, t1), Duration::ZERO);
        assert_eq!(b.take(5, t1), 5);
        b.put_back(3);
        assert_eq!(b.available(t1), 3);
        // a clock that goes backwards adds nothing
        assert_eq!(b.available(t0), 3);
    }
}
