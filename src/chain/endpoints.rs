//! Health scoring of one chain's RPC endpoints.
//!
//! Each endpoint has a score in `0..=100` (starts at 100). A success (or an error *answer*: the
//! endpoint works) adds [`SUCCESS_BONUS`]; a transport failure subtracts [`FAILURE_PENALTY`], a
//! timeout [`TIMEOUT_PENALTY`]. A failure also puts the endpoint in a cool-down that doubles with
//! each consecutive failure ([`Backoff`]); while cooling down it is tried only after every
//! available endpoint failed. Calls go to available endpoints by score (ties: config order).
//!
//! ```text
//!   order():  [available, by score desc] ++ [cooling down, by retry time]
//!   success:  score += 5, failures = 0, no cool-down
//!   failure:  score -= 25 (timeout 40), failures += 1, cool-down = backoff(failures)
//!   limited:  score unchanged, paused for Retry-After (else backoff(limits in a row)), ≤ 60 s
//! ```
//!
//! A rate limit is not a fault: the endpoint works, it asks to be called less often. It is
//! paused (tried after the others, like a cool-down; the refused call itself waits the pause out
//! before asking it again) but keeps its score, so it is not taken for dead and comes back first
//! once the pause is over. Each endpoint also has a request budget
//! ([`super::pacing::Pacer`]) that every attempt waits for.

use super::pacing::Pacer;
use super::sensitive_url::SensitiveUrl;
use alloy::providers::DynProvider;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const MAX_SCORE: u32 = 100;
pub const SUCCESS_BONUS: u32 = 5;
pub const FAILURE_PENALTY: u32 = 25;
pub const TIMEOUT_PENALTY: u32 = 40;
/// Longest pause after a rate limit, whatever `Retry-After` says: a provider asking for an hour
/// is asked again a minute later rather than leaving the chain without this endpoint.
pub const MAX_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// Capped exponential backoff: `initial * 2^(attempt-1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `attempt`-th consecutive failure (1-based; 0 gives zero).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (attempt - 1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Why an attempt failed, for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Timeout,
    Transport,
}

#[derive(Debug)]
struct Health {
    score: u32,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    /// Rate limits in a row (no answer in between): lengthens a pause without `Retry-After`.
    consecutive_limits: u32,
    /// Paused after a rate limit until then.
    limited_until: Option<Instant>,
}

impl Health {
    /// When the endpoint may be tried again (cool-down or rate-limit pause), if later than `now`.
    fn unavailable_until(&self, now: Instant) -> Option<Instant> {
        [self.retry_at, self.limited_until]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    successes: AtomicU64,
    rpc_errors: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    failovers: AtomicU64,
    rate_limited: AtomicU64,
    last_latency_us: AtomicU64,
}

/// One RPC endpoint: its provider, health and counters.
pub(crate) struct Endpoint {
    pub(crate) index: usize,
    pub(crate) url: SensitiveUrl,
    pub(crate) provider: DynProvider,
    health: Mutex<Health>,
    counters: Counters,
    pacer: Pacer,
}

/// A point-in-time view of one endpoint, for metrics and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// Position in the configured list.
    pub index: usize,
    /// The redacted URL.
    pub url: String,
    pub requests: u64,
    /// Calls that returned a value.
    pub successes: u64,
    /// Calls answered with a JSON-RPC error (revert, nonce too low, …): the endpoint works.
    pub rpc_errors: u64,
    /// Transport failures and invalid responses (timeouts not included).
    pub errors: u64,
    pub timeouts: u64,
    /// Calls that moved on from this endpoint to another after it failed.
    pub failovers: u64,
    /// Attempts the endpoint refused with a rate limit (HTTP 429, JSON-RPC -32005, …).
    pub rate_limited: u64,
    /// True while the endpoint is paused after a rate limit.
    pub rate_limit_paused: bool,
    pub score: u32,
    pub consecutive_failures: u32,
    /// True while the endpoint is in its failure cool-down.
    pub cooling_down: bool,
    pub last_latency: Duration,
}

impl Endpoint {
    pub(crate) fn new(index: usize, url: SensitiveUrl, provider: DynProvider) -> Self {
        Endpoint {
            index,
            url,
            provider,
            health: Mutex::new(Health {
                score: MAX_SCORE,
                consecutive_failures: 0,
                retry_at: None,
                consecutive_limits: 0,
                limited_until: None,
            }),
            counters: Counters::default(),
            pacer: Pacer::new(0),
        }
    }

    /// The same endpoint with a budget of `per_second` requests a second (0: unlimited).
    pub(crate) fn with_budget(mut self, per_second: u32) -> Self {
        self.pacer = Pacer::new(per_second);
        self
    }

    /// Waits for this attempt's turn in the endpoint's request budget.
    pub(crate) async fn pace(&self) {
        self.pacer.acquire().await;
    }

    /// The end of the endpoint's rate-limit pause, if it is paused at `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.health().limited_until.filter(|t| *t > now)
    }

    /// Removes this endpoint's URL from an error text: the secrets (see
    /// [`SensitiveUrl::scrub`]) and reqwest's "for url (…)", since the endpoint's label already
    /// names it.
    pub(crate) fn clean(&self, text: &str) -> String {
        self.url
            .scrub(text)
            .replace(&format!(" for url ({})", self.url), "")
    }

    /// How the endpoint is named in logs and errors: `rpc[0] http://host:port/`.
    pub(crate) fn label(&self) -> String {
        format!("rpc[{}] {}", self.index, self.url)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A panic while holding this lock cannot leave the numbers inconsistent; keep going.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record_request(&self) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The endpoint answered: a value (`rpc_error == false`) or an error answer.
    pub(crate) fn record_answer(&self, latency: Duration, rpc_error: bool) {
        let c = &self.counters;
        if rpc_error {
            c.rpc_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            c.successes.fetch_add(1, Ordering::Relaxed);
        }
        c.last_latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
        let mut h = self.health();
        h.score = (h.score + SUCCESS_BONUS).min(MAX_SCORE);
        h.consecutive_failures = 0;
        h.retry_at = None;
        h.consecutive_limits = 0;
    }

    /// The endpoint refused with a rate limit: pause it for `retry_after` (what it asked), or
    /// else `backoff` of the limits in a row, at most [`MAX_RATE_LIMIT_PAUSE`]. The score and
    /// the failure count stay as they are. Returns the pause.
    pub(crate) fn record_rate_limited(
        &self,
        retry_after: Option<Duration>,
        backoff: &Backoff,
        now: Instant,
    ) -> Duration {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut h = self.health();
        h.consecutive_limits = h.consecutive_limits.saturating_add(1);
        // `Retry-After: 0` would make a refused call ask again at once, in a loop: back off.
        let pause = retry_after
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| backoff.delay(h.consecutive_limits))
            .min(MAX_RATE_LIMIT_PAUSE);
        let until = now + pause;
        h.limited_until = Some(h.limited_until.map_or(until, |t| t.max(until)));
        pause
    }

    pub(crate) fn record_fault(&self, kind: FaultKind, backoff: &Backoff, now: Instant) {
        let c = &self.counters;
        let penalty = match kind {
            FaultKind::Timeout => {
                c.timeouts.fetch_add(1, Ordering::Relaxed);
                TIMEOUT_PENALTY
            }
            FaultKind::Transport => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                FAILURE_PENALTY
            }
        };
        let mut h = self.health();
        h.score = h.score.saturating_sub(penalty);
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.retry_at = Some(now + backoff.delay(h.consecutive_failures));
    }

    pub(crate) fn record_failover(&self) {
        self.counters.failovers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn score(&self) -> u32 {
        self.health().score
    }

    pub(crate) fn stats(&self, now: Instant) -> EndpointStats {
        let c = &self.counters;
        let h = self.health();
        EndpointStats {
            index: self.index,
            url: self.url.to_string(),
            requests: c.requests.load(Ordering::Relaxed),
            successes: c.successes.load(Ordering::Relaxed),
            rpc_errors: c.rpc_errors.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            failovers: c.failovers.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            rate_limit_paused: h.limited_until.is_some_and(|t| t > now),
            score: h.score,
            consecutive_failures: h.consecutive_failures,
            cooling_down: h.retry_at.is_some_and(|t| t > now),
            last_latency: Duration::from_micros(c.last_latency_us.load(Ordering::Relaxed)),
        }
    }
}

/// The order in which to try `endpoints` now: available ones by score (ties: config order),
/// then the cooling-down or rate-limit-paused ones by the time they may be retried.
pub(crate) fn attempt_order(endpoints: &[Endpoint], now: Instant) -> Vec<&Endpoint> {
    let mut available: Vec<(u32, usize, &Endpoint)> = Vec::new();
    let mut cooling: Vec<(Instant, usize, &Endpoint)> = Vec::new();
    for ep in endpoints {
        let h = ep.health();
        match h.unavailable_until(now) {
            Some(t) => cooling.push((t, ep.index, ep)),
            None => available.push((h.score, ep.index, ep)),
        }
    }
    available.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    cooling.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    available
        .into_iter()
        .map(|(_, _, e)| e)
        .chain(cooling.into_iter().map(|(_, _, e)| e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::providers::{Provider, ProviderBuilder};

    fn ep(index: usize) -> Endpoint {
        let url: url::Url = format!("http://127.0.0.1:{}", 1000 + index)
            .parse()
            .unwrap();
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url.clone())
            .erased();
        Endpoint::new(index, url.into(), provider)
    }

    const B: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
    };

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = (0..7).map(|n| B.delay(n).as_secs()).collect();
        assert_eq!(got, vec![0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(B.delay(u32::MAX), B.max);
    }

    #[test]
    fn order_follows_score_then_cooldown() {
        let eps = vec![ep(0), ep(1), ep(2)];
        let now = Instant::now();
        let idx = |v: Vec<&Endpoint>| v.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(idx(attempt_order(&eps, now)), vec![0, 1, 2]);

        eps[0].record_fault(FaultKind::Timeout, &B, now);
        assert_eq!(eps[0].score(), MAX_SCORE - TIMEOUT_PENALTY);
        // Cooling down: last, even though it is first in the config.
        assert_eq!(idx(attempt_order(&eps, now)), vec![1, 2, 0]);
        // After the cool-down it is available again, but ranks below the healthy ones.
        let later = now + Duration::from_secs(2);
        assert_eq!(idx(attempt_order(&eps, later)), vec![1, 2, 0]);

        eps[1].record_fault(FaultKind::Transport, &B, now);
        eps[1].record_answer(Duration::from_millis(1), false);
        assert_eq!(eps[1].score(), MAX_SCORE - FAILURE_PENALTY + SUCCESS_BONUS);
        assert_eq!(idx(attempt_order(&eps, later)), vec![2, 1, 0]);

        let s = eps[0].stats(now);
        assert_eq!((s.timeouts, s.errors, s.consecutive_failures), (1, 0, 1));
        assert!(s.cooling_down);
        assert!(!eps[0].stats(later).cooling_down);
    }

    #[test]
    fn consecutive_failures_lengthen_the_cooldown() {
        let e = ep(0);
        let now = Instant::now();
        for _ in 0..3 {
            e.record_fault(FaultKind::Transport, &B, now);
        }
        // Third failure: 4 s cool-down.
        assert!(e.stats(now + Duration::from_millis(3900)).cooling_down);
        assert!(!e.stats(now + Duration::from_millis(4100)).cooling_down);
        assert_eq!(e.score(), 25);
        e.record_fault(FaultKind::Timeout, &B, now);
        assert_eq!(e.score(), 0);
    }

    #[test]
    fn a_rate_limit_pauses_without_scoring_the_endpoint_down() {
        let eps = vec![ep(0), ep(1)];
        let now = Instant::now();
        let idx = |v: Vec<&Endpoint>| v.iter().map(|e| e.index).collect::<Vec<_>>();
        // Retry-After is honoured: 3 s, not the backoff's 1 s.
        let pause = eps[0].record_rate_limited(Some(Duration::from_secs(3)), &B, now);
        assert_eq!(pause, Duration::from_secs(3));
        let s = eps[0].stats(now);
        assert_eq!(
            (s.score, s.consecutive_failures, s.rate_limited),
            (MAX_SCORE, 0, 1)
        );
        assert!(s.rate_limit_paused && !s.cooling_down);
        assert_eq!(idx(attempt_order(&eps, now)), vec![1, 0]);
        assert_eq!(eps[0].paused_until(now), Some(now + pause));
        // Back first (full score) once the pause is over.
        let later = now + Duration::from_millis(3100);
        assert_eq!(idx(attempt_order(&eps, later)), vec![0, 1]);
        assert_eq!(eps[0].paused_until(later), None);
        // Without Retry-After: the backoff of the limits in a row (2nd: 2 s), capped.
        assert_eq!(
            eps[0].record_rate_limited(None, &B, later),
            Duration::from_secs(2)
        );
        let huge = Some(Duration::from_secs(3600));
        assert_eq!(
            eps[0].record_rate_limited(huge, &B, later),
            MAX_RATE_LIMIT_PAUSE
        );
        // An answer resets the run of limits.
        eps[0].record_answer(Duration::from_millis(1), false);
        assert_eq!(
            eps[0].record_rate_limited(None, &B, later),
            Duration::from_secs(1)
        );
    }
}
