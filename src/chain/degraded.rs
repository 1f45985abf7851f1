//! [`LimitWindow`]: is a chain *degraded*, i.e. are most of its RPC attempts being rate-limited
//! right now? Counted over the last one to two windows of [`WINDOW`], so the answer follows
//! the provider within a minute and clears by itself when the limiting stops (or the agent goes
//! quiet: an empty window is not degraded).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Length of one counting window.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Fewer attempts than this in the counted windows say nothing either way.
pub const MIN_ATTEMPTS: u64 = 4;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    attempts: u64,
    limited: u64,
}

#[derive(Debug)]
struct State {
    started: Instant,
    current: Counts,
    previous: Counts,
}

/// Attempts and rate-limited attempts of one chain, in two adjacent windows.
#[derive(Debug)]
pub(crate) struct LimitWindow {
    state: Mutex<State>,
    /// Rate-limited attempts since start.
    total: AtomicU64,
}

impl LimitWindow {
    pub(crate) fn new(now: Instant) -> Self {
        LimitWindow {
            state: Mutex::new(State {
                started: now,
                current: Counts::default(),
                previous: Counts::default(),
            }),
            total: AtomicU64::new(0),
        }
    }

    fn rolled(&self, now: Instant) -> std::sync::MutexGuard<'_, State> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let age = now.saturating_duration_since(s.started);
        if age >= WINDOW * 2 {
            // Quiet for a whole window: nothing to carry over.
            s.previous = Counts::default();
            s.current = Counts::default();
            s.started = now;
        } else if age >= WINDOW {
            s.previous = s.current;
            s.current = Counts::default();
            s.started += WINDOW;
        }
        s
    }

    /// One attempt on one endpoint ended (`limited`: with a rate limit).
    pub(crate) fn record(&self, limited: bool, now: Instant) {
        if limited {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        let mut s = self.rolled(now);
        s.current.attempts += 1;
        s.current.limited += u64::from(limited);
    }

    /// Rate-limited attempts since start.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// (rate-limited attempts, attempts) in the counted windows.
    pub(crate) fn counts(&self, now: Instant) -> (u64, u64) {
        let s = self.rolled(now);
        (
            s.current.limited + s.previous.limited,
            s.current.attempts + s.previous.attempts,
        )
    }

    /// More than half of at least [`MIN_ATTEMPTS`] recent attempts were rate-limited.
    pub(crate) fn degraded(&self, now: Instant) -> bool {
        let (limited, attempts) = self.counts(now);
        attempts >= MIN_ATTEMPTS && limited * 2 > attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_attempts_limited_is_degraded_and_it_clears() {
        let t0 = Instant::now();
        let w = LimitWindow::new(t0);
        // One in five limited: not degraded.
        for i in 0..10 {
            w.record(i % 5 == 4, t0);
        }
        assert!(!w.degraded(t0));
        // Then most limited.
        for _ in 0..20 {
            w.record(true, t0 + Duration::from_secs(1));
        }
        assert!(w.degraded(t0 + Duration::from_secs(1)));
        // Next window, answers again: the previous window still counts, then no longer.
        let t1 = t0 + WINDOW + Duration::from_secs(1);
        for _ in 0..30 {
            w.record(false, t1);
        }
        assert!(
            !w.degraded(t1),
            "22 limited of 60 is not most: {:?}",
            w.counts(t1)
        );
        // Quiet for two windows: nothing counted, not degraded.
        let t2 = t1 + WINDOW * 2;
        assert_eq!(w.counts(t2), (0, 0));
        assert!(!w.degraded(t2));
    }

    #[test]
    fn too_few_attempts_say_nothing() {
        let t0 = Instant::now();
        let w = LimitWindow::new(t0);
        for _ in 0..(MIN_ATTEMPTS - 1) {
            w.record(true, t0);
        }
        assert!(!w.degraded(t0));
        w.record(true, t0);
        assert!(w.degraded(t0));
    }
}
