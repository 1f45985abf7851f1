//! Chain access: one [`ChainClient`] per chain over several RPC endpoints, with health-scored
//! failover, a timeout on every call, a chain-id check at start, and head/log following over a
//! WebSocket subscription with polling fallback.
//!
//! ```text
//!                 ┌──────────────── ChainClient ─────────────────┐
//!  caller ──call──► order endpoints by health ──► rpc[i] (timeout) ──► answer / revert ──► caller
//!                 │        ▲        │ transport error, timeout      │
//!                 │        │        └──► score down, cool-down ──► next endpoint
//!                 │  score up on answers                           │
//!                 │  rate limit (429, -32005): endpoint last in the │
//!                 │  order for Retry-After, no score change; call   │
//!                 │  refused everywhere ──► waits, retries (bounded)│
//!                 │  log cap ("more than 10000 results"): an answer │
//!                 └───────────────────────────────────────────────┘
//!  every attempt first waits for its endpoint's request budget (token bucket, optional)
//!
//!  HeadStream task:  ws eth_subscribe(newHeads) ──► Head ──► watch channel ──► watcher
//!                    (ws absent/broken: poll the latest header every poll_interval,
//!                     reconnect ws with capped exponential backoff)
//!  LogRangeReader:   eth_getLogs over [from, to] in windows the provider accepts (narrowed on
//!                    "too many results / range too wide", re-grown after successes; a cap is
//!                    an answer, never an endpoint fault) ──► LogBatch{from,to,logs}
//!  LogStream:        HeadStream + LogRangeReader ──► LogBatch{from,to,logs}
//! ```
//!
//! A watcher typically does:
//!
//! ```ignore
//! let client = ChainClient::connect(config).await?;          // fatal on chain-id mismatch
//! let mut heads = client.new_heads(&shutdown);                // ws or polling
//! while let Some(head) = heads.next().await {                 // None on shutdown
//!     let to = head.number.saturating_sub(confirmations);
//!     let logs = client.get_logs_range(&filter, cursor, to).await?;  // windowed
//!     // … check block hashes for reorgs, persist the cursor …
//! }
//! ```
//! or, without its own cursor logic, [`ChainClient::log_stream`].

mod access;
mod client;
mod degraded;
mod endpoints;
mod error;
mod heads;
mod log_window;
mod logs;
mod pacing;
mod send_gate;
mod sensitive_url;

pub use access::access_config;
pub use client::{BlockRef, BlockTag, ChainClient, ChainStats, ReachSink};
pub use degraded::{MIN_ATTEMPTS as DEGRADED_MIN_ATTEMPTS, WINDOW as DEGRADED_WINDOW};
pub use endpoints::{Backoff, EndpointStats, MAX_RATE_LIMIT_PAUSE};
pub use error::{Answer, ChainError, ClassifyError, Failure, is_rate_limit_answer};
pub use heads::{Head, HeadSource, HeadStats, HeadStream};
pub use log_window::LogWindowStats;
pub use logs::{LogBatch, LogRangeReader, LogStream};
pub use sensitive_url::SensitiveUrl;

use std::time::Duration;

/// What chain access needs to know about one chain. Plain data: the agent's config module maps
/// its TOML section onto it.
/// `Debug` prints URLs redacted ([`SensitiveUrl`]).
#[derive(Clone, Debug)]
pub struct ChainAccessConfig {
    /// A name for logs and errors, e.g. `parent` or `child`.
    pub name: String,
    /// The chain id every endpoint must serve.
    pub chain_id: u64,
    /// HTTP(S) JSON-RPC endpoints, in order of preference.
    pub rpc: Vec<SensitiveUrl>,
    /// Optional WebSocket endpoint for new-head notifications.
    pub ws: Option<SensitiveUrl>,
    /// Time limit of one attempt on one endpoint.
    pub rpc_timeout: Duration,
    /// Polling period of the head when no WebSocket subscription is live.
    pub poll_interval: Duration,
    /// Most blocks asked for in one `eth_getLogs`.
    pub log_window: u64,
    /// Cool-down of an endpoint after consecutive failures.
    pub endpoint_backoff: Backoff,
    /// Delay between WebSocket reconnection attempts.
    pub ws_backoff: Backoff,
    /// With no new head on the WebSocket for this long, the head is polled over HTTP; if the
    /// chain moved, the subscription is considered dead and reconnected.
    pub ws_stale_after: Duration,
    /// Request budget of each endpoint, in requests per second (token bucket, bursts up to one
    /// second's worth); 0: unlimited.
    pub requests_per_second: u32,
    /// Pause of an endpoint after a rate limit that did not say for how long (no `Retry-After`,
    /// e.g. JSON-RPC -32005), doubling with the limits in a row.
    pub rate_limit_backoff: Backoff,
    /// Longest a call waits in total for rate-limited endpoints to resume before it fails
    /// ([`ChainError::AllEndpointsFailed`] of [`ChainError::RateLimited`]).
    pub rate_limit_wait: Duration,
}

impl ChainAccessConfig {
    /// A config with the defaults: 5 s timeout, 2 s polling, 1000-block log windows, endpoint
    /// cool-down 1 s doubling to 60 s, ws reconnect 500 ms doubling to 30 s, ws stale after 30 s,
    /// no request budget, a rate limit without `Retry-After` pauses 250 ms doubling to 30 s,
    /// calls wait up to 2 min for rate-limited endpoints.
    pub fn new(name: impl Into<String>, chain_id: u64, rpc: Vec<SensitiveUrl>) -> Self {
        ChainAccessConfig {
            name: name.into(),
            chain_id,
            rpc,
            ws: None,
            rpc_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_secs(2),
            log_window: 1000,
            endpoint_backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            ws_backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            ws_stale_after: Duration::from_secs(30),
            requests_per_second: 0,
            rate_limit_backoff: Backoff {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(30),
            },
            rate_limit_wait: Duration::from_secs(120),
        }
    }

    pub fn with_ws(mut self, ws: Option<SensitiveUrl>) -> Self {
        self.ws = ws;
        self
    }
}
