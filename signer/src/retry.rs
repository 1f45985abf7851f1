//! Bounded exponential backoff for transient backend failures.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::Health;

/// Errors that know whether retrying may help.
pub trait Transient {
    /// True if the same call may succeed later without anyone acting.
    fn is_transient(&self) -> bool;
}

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (≥ 1).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled after each.
    #[serde(default = "default_initial_ms")]
    pub initial_backoff_ms: u64,
    /// Upper bound of one wait, in milliseconds.
    #[serde(default = "default_max_ms")]
    pub max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_initial_ms() -> u64 {
    50
}
fn default_max_ms() -> u64 {
    2_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            initial_backoff_ms: default_initial_ms(),
            max_backoff_ms: default_max_ms(),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64.checked_shl(retry.min(32)).unwrap_or(u64::MAX);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }

    /// Problems with this policy, as `(path, message)`.
    pub fn problems(&self, path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.max_attempts == 0 {
            out.push((format!("{path}.max_attempts"), "must be at least 1".into()));
        }
        if self.initial_backoff_ms > self.max_backoff_ms {
            out.push((
                format!("{path}.initial_backoff_ms"),
                "must not exceed max_backoff_ms".into(),
            ));
        }
        out
    }

    /// [`RetryPolicy::run`] for one signature: on success also records its latency, retries
    /// included, in `health`. Every backend's `sign_hash` goes through here.
    pub async fn sign<T, E, F, Fut>(&self, health: &Health, op: F) -> Result<T, E>
    where
        E: Transient + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let value = self.run(health, op).await?;
        health.record_success(started.elapsed());
        Ok(value)
    }

    /// Runs `op` until it succeeds, fails permanently, or the attempts are used up; counts
    /// each failure in `health`.
    pub async fn run<T, E, F, Fut>(&self, health: &Health, mut op: F) -> Result<T, E>
    where
        E: Transient + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < attempts => {
                    health.record_transient();
                    let wait = self.backoff(attempt - 1);
                    tracing::warn!(attempt, ?wait, error = %e, "transient signer error, retrying");
                    health.record_retry();
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    if e.is_transient() {
                        health.record_transient();
                        tracing::error!(attempt, error = %e, "signer still failing after all retries");
                    } else {
                        health.record_permanent();
                        tracing::error!(error = %e, "permanent signer error");
                    }
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct E(bool);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transient={}", self.0)
        }
    }
    impl Transient for E {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff_ms: 1,
            max_backoff_ms: 4,
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(50));
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(10), Duration::from_millis(2_000));
        assert_eq!(p.backoff(200), Duration::from_millis(2_000));
    }

    #[tokio::test]
    async fn transient_then_success() {
        let health = Health::default();
        let calls = AtomicU32::new(0);
        let out = fast()
            .run(&health, || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(E(true))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(health.snapshot().retries, 2);
    }

    #[tokio::test]
    async fn bounded_and_permanent_not_retried() {
        let health = Health::default();
        let calls = AtomicU32::new(0);
        let out: Result<(), E> = fast()
            .run(&health, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E(true))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        calls.store(0, Ordering::SeqCst);
        let out: Result<(), E> = fast()
            .run(&health, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E(false))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(health.state(), crate::HealthState::Unusable);
    }
}
