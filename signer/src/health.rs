//! Health state and counters of a signing backend, kept in plain atomics so the agent's
//! `/readyz` and Prometheus exporter can read them without locks.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the sign-latency histogram buckets; `+Inf` is implicit.
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Whether a backend can sign right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// The last attempt succeeded.
    Usable,
    /// Transient failures (busy, throttled, timeout, session lost) since the last success.
    Degraded,
    /// A permanent failure (wrong PIN, key gone, bad signature): an operator must act.
    Unusable,
}

impl HealthState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Usable,
            1 => Self::Degraded,
            _ => Self::Unusable,
        }
    }

    /// Lower-case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::Degraded => "degraded",
            Self::Unusable => "unusable",
        }
    }
}

/// Live counters of one backend.
#[derive(Debug, Default)]
pub struct Health {
    state: AtomicU8,
    signatures: AtomicU64,
    transient_errors: AtomicU64,
    permanent_errors: AtomicU64,
    retries: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// A copy of the counters at one moment, for exporters and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot {
    /// Current state.
    pub state: HealthState,
    /// Signatures returned.
    pub signatures: u64,
    /// Attempts that failed transiently (each retry counts).
    pub transient_errors: u64,
    /// Calls that failed permanently.
    pub permanent_errors: u64,
    /// Retries made after transient failures.
    pub retries: u64,
    /// Cumulative histogram counts, one per [`LATENCY_BUCKETS_SECONDS`] bound.
    pub latency_buckets: Vec<u64>,
    /// Number of timed signatures (the histogram's `+Inf` bucket).
    pub latency_count: u64,
    /// Sum of latencies in seconds.
    pub latency_sum_seconds: f64,
}

impl Health {
    /// Current state.
    pub fn state(&self) -> HealthState {
        HealthState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// A signature came back valid after `latency`.
    pub fn record_success(&self, latency: Duration) {
        self.state.store(0, Ordering::Relaxed);
        self.signatures.fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS_SECONDS.iter().position(|&b| secs <= b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// One attempt failed with a transient error.
    pub fn record_transient(&self) {
        self.transient_errors.fetch_add(1, Ordering::Relaxed);
        // Degraded, unless already unusable.
        let _ = self
            .state
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// A retry is about to be made.
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The call failed permanently.
    pub fn record_permanent(&self) {
        self.permanent_errors.fetch_add(1, Ordering::Relaxed);
        self.state.store(2, Ordering::Relaxed);
    }

    /// A consistent-enough copy of all counters.
    pub fn snapshot(&self) -> HealthSnapshot {
        let mut cumulative = 0;
        let latency_buckets = self
            .latency_buckets
            .iter()
            .map(|b| {
                cumulative += b.load(Ordering::Relaxed);
                cumulative
            })
            .collect();
        HealthSnapshot {
            state: self.state(),
            signatures: self.signatures.load(Ordering::Relaxed),
            transient_errors: self.transient_errors.load(Ordering::Relaxed),
            permanent_errors: self.permanent_errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            latency_buckets,
            latency_count: self.latency_count.load(Ordering::Relaxed),
            latency_sum_seconds: self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_histogram() {
        let h = Health::default();
        assert_eq!(h.state(), HealthState::Usable);
        h.record_transient();
        assert_eq!(h.state(), HealthState::Degraded);
        h.record_success(Duration::from_millis(3));
        assert_eq!(h.state(), HealthState::Usable);
        h.record_permanent();
        h.record_transient();
        assert_eq!(h.state(), HealthState::Unusable);
        h.record_success(Duration::from_secs(10));
        let s = h.snapshot();
        assert_eq!(s.state, HealthState::Usable);
        assert_eq!(
            (s.signatures, s.transient_errors, s.permanent_errors),
            (2, 2, 1)
        );
        // 3 ms falls in the 5 ms bucket (index 2); 10 s only in +Inf.
        assert_eq!(s.latency_buckets[1], 0);
        assert_eq!(s.latency_buckets[2], 1);
        assert_eq!(*s.latency_buckets.last().unwrap(), 1);
        assert_eq!(s.latency_count, 2);
    }
}
