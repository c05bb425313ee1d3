//! Token-bucket rate limits keyed by account or peer address, on the injectable clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Allows `capacity` actions per `window` per key, refilling smoothly.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// Keys kept before idle, full buckets are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    /// `capacity` actions per `window` (at least one).
    pub fn new(capacity: u32, window: Duration) -> Self {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / window.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one action for `key` at `now`, or says how long until one is allowed.
    pub fn take(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| refill(*b, now, capacity, rate).tokens < capacity);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        let mut b = refill(*bucket, now, self.capacity, self.per_second);
        let verdict = self.verdict(b);
        if verdict.is_ok() {
            b.tokens -= 1.0;
        }
        *bucket = b;
        verdict
    }

    /// Whether a refilled bucket has an action left, or how long until it has.
    fn verdict(&self, b: Bucket) -> Result<(), Duration> {
        if b.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }

    /// Whether `key` has an action left at `now`, without taking it (see [`Self::spend`]), or
    /// how long until it has.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get(key) {
            None => Ok(()),
            Some(b) => self.verdict(refill(*b, now, self.capacity, self.per_second)),
        }
    }

    /// Counts one action for `key` that happened at `now` (checked before with
    /// [`Self::check`]); the bucket never goes below empty.
    pub fn spend(&self, key: &str, now: DateTime<Utc>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        let mut b = refill(*bucket, now, self.capacity, self.per_second);
        b.tokens = (b.tokens - 1.0).max(0.0);
        *bucket = b;
    }

    /// Gives back the action taken for `key` (it was refused and did nothing).
    pub fn give_back(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(self.capacity);
        }
    }
}

fn refill(b: Bucket, now: DateTime<Utc>, capacity: f64, per_second: f64) -> Bucket {
    let elapsed = (now - b.at).to_std().unwrap_or_default().as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * per_second).min(capacity),
        at: now.max(b.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_takes_nothing_and_spend_counts() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        let t = Utc::now();
        for _ in 0..5 {
            assert!(l.check("k", t).is_ok(), "checking alone never runs out");
        }
        l.spend("k", t);
        assert!(l.check("k", t).is_ok());
        l.spend("k", t);
        let wait = l.check("k", t).unwrap_err();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
        l.spend("k", t);
        assert!(
            l.check("k", t + chrono::Duration::seconds(30)).is_ok(),
            "never below empty: one refills in 30 s"
        );
        assert!(l.check("other", t).is_ok());
    }

    #[test]
    fn an_action_given_back_can_be_taken_again() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let rl = RateLimiter::new(2, Duration::from_secs(60));
        assert!(rl.take("a", t0).is_ok());
        assert!(rl.take("a", t0).is_ok());
        assert!(rl.take("a", t0).is_err());
        rl.give_back("a");
        assert!(rl.take("a", t0).is_ok());
        rl.give_back("a");
        rl.give_back("a");
        rl.give_back("a");
        assert!(rl.take("a", t0).is_ok());
        assert!(rl.take("a", t0).is_ok());
        assert!(rl.take("a", t0).is_err(), "never more than the capacity");
    }

    #[test]
    fn allows_the_burst_then_refuses_with_a_delay_then_refills() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let rl = RateLimiter::new(60, Duration::from_secs(60));
        for _ in 0..60 {
            assert!(rl.take("a", t0).is_ok());
        }
        let wait = rl.take("a", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(rl.take("b", t0).is_ok(), "keys are independent");
        assert!(rl.take("a", t0 + chrono::Duration::seconds(1)).is_ok());
        assert!(rl.take("a", t0 + chrono::Duration::seconds(1)).is_err());
    }

    #[test]
    fn a_clock_moving_backwards_does_not_mint_tokens() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let rl = RateLimiter::new(1, Duration::from_secs(60));
        assert!(rl.take("a", t0).is_ok());
        assert!(rl.take("a", t0 - chrono::Duration::hours(1)).is_err());
    }
}
