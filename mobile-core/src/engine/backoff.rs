//! Retry delays that grow: exponential with jitter up to a cap, and the clock the reconnect
//! loop sleeps on (virtual in tests).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// First delay after a failure.
pub(crate) const FIRST: Duration = Duration::from_millis(500);
/// Longest delay between two attempts.
pub(crate) const CAP: Duration = Duration::from_secs(60);
/// How long a stream must stay up after catching up before a later failure starts again from
/// [`FIRST`].
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The delay after `failures` consecutive failures (1 = the first): `FIRST · 2^(failures-1)`,
/// capped at `cap`, then scaled by `0.5 + jitter / 2` (`jitter` in 0..=1), so retries from many
/// devices spread out and never come sooner than half the curve.
pub(crate) fn delay(failures: u32, cap: Duration, jitter: f64) -> Duration {
    let exp = FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap);
    exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A uniform random number in 0..=1 (0.5 if the OS has no randomness to give).
pub(crate) fn jitter() -> f64 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_or(0.5, |_| {
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    })
}

/// Consecutive failures of one loop, and the delay each one earns.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Counts a failure and returns the delay before the next attempt (never less than what the
    /// server asked for).
    pub(crate) fn fail(&mut self, asked: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        delay(self.failures, CAP, jitter()).max(asked.unwrap_or_default())
    }

    /// Starts again from the first delay (a stream stayed up, or the network came back).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures counted since the last reset.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

/// What the reconnect loop waits on; tests pass a virtual one that only counts.
pub(crate) trait Sleeper: Send + Sync {
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Real time (tokio's timer).
pub(crate) struct RealTime;

impl Sleeper for RealTime {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_never_fall_below_half() {
        assert_eq!(delay(1, CAP, 1.0), FIRST);
        assert_eq!(delay(2, CAP, 1.0), FIRST * 2);
        assert_eq!(delay(1, CAP, 0.0), FIRST / 2);
        assert_eq!(delay(30, CAP, 1.0), CAP);
        assert_eq!(delay(30, CAP, 0.0), CAP / 2);
        let mut prev = Duration::ZERO;
        for n in 1..20 {
            let d = delay(n, CAP, 1.0);
            assert!(d >= prev, "never shrinks while failing");
            prev = d;
        }
    }

    #[test]
    fn a_reset_starts_again_from_the_first_delay() {
        let mut b = Backoff::default();
        for _ in 0..8 {
            b.fail(None);
        }
        assert!(b.fail(None) >= CAP / 2);
        b.reset();
        assert!(b.fail(None) <= FIRST);
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn the_server_can_ask_for_longer() {
        let mut b = Backoff::default();
        assert_eq!(
            b.fail(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
