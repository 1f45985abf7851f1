//! [`Pacer`]: a per-endpoint request budget (token bucket), so the agent stays under a
//! provider's rate limit instead of finding it by being refused.
//!
//! ```text
//!   budget r req/s, burst max(1, r):  tokens += elapsed × r (≤ burst)
//!   acquire():  tokens ≥ 1 → take one, go now
//!               else       → take one anyway (tokens < 0: a queue), wait −tokens / r
//! ```
//!
//! Taking the token before waiting makes the callers queue in arrival order without a lock held
//! across the wait: with k callers waiting, the k-th waits k / r.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A request budget of one endpoint; `None` rate: unlimited (no wait, no lock).
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Requests per second; 0 means unlimited.
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// A budget of `per_second` requests a second (0: unlimited), starting full.
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second);
        let burst = rate.max(1.0);
        Pacer {
            rate,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// How long the caller must wait before sending, having taken its token at `now`.
    pub(crate) fn reserve(&self, now: Instant) -> Duration {
        if self.rate == 0.0 {
            return Duration::ZERO;
        }
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = b.last.max(now);
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Waits for this call's turn in the budget.
    pub(crate) async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let p = Pacer::new(0);
        let now = Instant::now();
        assert!((0..1000).all(|_| p.reserve(now).is_zero()));
    }

    #[test]
    fn a_burst_queues_at_the_budget() {
        let p = Pacer::new(10);
        let now = Instant::now();
        let waits: Vec<u128> = (0..13).map(|_| p.reserve(now).as_millis()).collect();
        // The first 10 go at once (a full bucket), then one each 100 ms.
        assert!(waits[..10].iter().all(|&w| w == 0), "{waits:?}");
        assert_eq!(&waits[10..], &[100, 200, 300]);
        // A second later the queue has drained: 1 s refills 10, of which 3 were owed.
        let later = now + Duration::from_secs(1);
        let waits: Vec<u128> = (0..8).map(|_| p.reserve(later).as_millis()).collect();
        assert!(waits[..7].iter().all(|&w| w == 0), "{waits:?}");
        assert_eq!(waits[7], 100);
    }

    #[test]
    fn below_one_per_second_still_lets_one_through() {
        let p = Pacer::new(1);
        let now = Instant::now();
        assert!(p.reserve(now).is_zero());
        assert_eq!(p.reserve(now).as_millis(), 1000);
    }
}
