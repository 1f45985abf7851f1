//! [`HeadStream`]: "tell me when the head moves", over a WebSocket `newHeads` subscription when
//! one is configured and live, by polling the latest header otherwise.
//!
//! ```text
//!   start ──► poll latest header ──► publish
//!     │
//!     ▼
//!   ws configured and retry time reached? ──no──► poll, sleep(poll_interval) ──┐
//!     │ yes                                                                   │
//!     ▼                                                                       │
//!   connect, check chain id, eth_subscribe(newHeads), poll once (catch up)    │
//!     │ each header ──► publish                                               │
//!     │ closed / error / silent while HTTP shows the chain moved              │
//!     ▼                                                                       │
//!   retry at now + backoff(failures) (capped), poll meanwhile ◄───────────────┘
//! ```
//!
//! Heads are published into a `watch` channel: a slow reader sees the newest head, never a
//! backlog. Every wait is also bounded by the shutdown token.

use super::client::ChainClient;
use super::sensitive_url::SensitiveUrl;
use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider, ProviderBuilder, WsConnect};
use alloy::transports::Authorization;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Where a head came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadSource {
    WebSocket,
    Polling,
}

/// The chain's head as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub number: u64,
    pub hash: B256,
    pub source: HeadSource,
}

/// Counters of a [`HeadStream`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadStats {
    /// True while a WebSocket subscription is live.
    pub ws_live: bool,
    pub ws_connects: u64,
    /// Subscriptions lost, and connection attempts that failed.
    pub ws_failures: u64,
    pub polls: u64,
    pub poll_errors: u64,
}

#[derive(Default)]
struct Shared {
    ws_live: AtomicBool,
    ws_connects: AtomicU64,
    ws_failures: AtomicU64,
    polls: AtomicU64,
    poll_errors: AtomicU64,
}

/// New-head notifications of one chain; see the module docs. Dropping it stops its task.
pub struct HeadStream {
    rx: watch::Receiver<Option<Head>>,
    seen: Option<(u64, B256)>,
    cancel: CancellationToken,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HeadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadStream")
            .field("latest", &*self.rx.borrow())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HeadStream {
    pub(crate) fn spawn(client: ChainClient, cancel: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(None);
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(follow(client, tx, shared.clone(), cancel.clone()));
        HeadStream {
            rx,
            seen: None,
            cancel,
            shared,
            task: Some(task),
        }
    }

    /// Waits for a head different (number or hash) from the last one returned. `None` once the
    /// shutdown token fired or the stream's task ended.
    pub async fn next(&mut self) -> Option<Head> {
        loop {
            if self.cancel.is_cancelled() {
                return None;
            }
            let current = *self.rx.borrow_and_update();
            if let Some(head) = current
                && self.seen != Some((head.number, head.hash))
            {
                self.seen = Some((head.number, head.hash));
                return Some(head);
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// The newest head known, without waiting.
    pub fn latest(&self) -> Option<Head> {
        *self.rx.borrow()
    }

    /// Where heads come from right now.
    pub fn source(&self) -> HeadSource {
        if self.shared.ws_live.load(Ordering::Relaxed) {
            HeadSource::WebSocket
        } else {
            HeadSource::Polling
        }
    }

    pub fn stats(&self) -> HeadStats {
        let s = &self.shared;
        HeadStats {
            ws_live: s.ws_live.load(Ordering::Relaxed),
            ws_connects: s.ws_connects.load(Ordering::Relaxed),
            ws_failures: s.ws_failures.load(Ordering::Relaxed),
            polls: s.polls.load(Ordering::Relaxed),
            poll_errors: s.poll_errors.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Stops the task and waits for it to end.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for HeadStream {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Connects a WebSocket provider. alloy's own reconnection is limited to one quick attempt, so
/// a lost connection ends the subscription and [`follow`] takes over (polling, backoff).
pub(crate) async fn connect_ws(
    url: &SensitiveUrl,
    timeout: Duration,
) -> Result<DynProvider, String> {
    let full = url.expose();
    // Credentials in the URL become a basic-auth header (the WebSocket handshake ignores them).
    let auth = (!full.username().is_empty())
        .then(|| Authorization::basic(full.username(), full.password().unwrap_or_default()));
    let connect = WsConnect::new(full.as_str())
        .with_auth_opt(auth)
        .with_max_retries(1)
        .with_retry_interval(Duration::from_millis(100));
    match tokio::time::timeout(
        timeout,
        ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_ws(connect),
    )
    .await
    {
        Ok(Ok(p)) => Ok(p.erased()),
        Ok(Err(e)) => Err(url.scrub(&e.to_string())),
        Err(_) => Err(format!("connect timed out after {timeout:?}")),
    }
}

/// How a WebSocket session ended.
enum WsEnd {
    Cancelled,
    Failed { reason: String, delivered: bool },
}

async fn follow(
    client: ChainClient,
    tx: watch::Sender<Option<Head>>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let cfg = client.config().clone();
    let mut ws_failures: u32 = 0;
    let mut ws_retry_at = Instant::now();
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = poll_head(&client, &tx, &shared) => {}
    }
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(url) = &cfg.ws
            && Instant::now() >= ws_retry_at
        {
            let end = run_ws(&client, url, &tx, &shared, &cancel).await;
            shared.ws_live.store(false, Ordering::Relaxed);
            match end {
                WsEnd::Cancelled => break,
                WsEnd::Failed { reason, delivered } => {
                    shared.ws_failures.fetch_add(1, Ordering::Relaxed);
                    if delivered {
                        // The connection worked for a while: start the backoff over.
                        ws_failures = 0;
                    }
                    ws_failures = ws_failures.saturating_add(1);
                    let delay = cfg.ws_backoff.delay(ws_failures);
                    warn!(chain = %cfg.name, ws = %url, %reason, retry_in = ?delay, "WebSocket head subscription down; polling");
                    ws_retry_at = Instant::now() + delay;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = poll_head(&client, &tx, &shared) => {}
        }
        let mut wake = Instant::now() + cfg.poll_interval;
        if cfg.ws.is_some() {
            wake = wake.min(ws_retry_at);
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sleep_until(wake) => {}
        }
    }
    debug!(chain = %cfg.name, "head stream stopped");
}

async fn run_ws(
    client: &ChainClient,
    url: &SensitiveUrl,
    tx: &watch::Sender<Option<Head>>,
    shared: &Shared,
    cancel: &CancellationToken,
) -> WsEnd {
    let cfg = client.config();
    let failed = |reason: String| WsEnd::Failed {
        reason,
        delivered: false,
    };
    let setup = async {
        let provider = connect_ws(url, cfg.rpc_timeout).await?;
        let id = tokio::time::timeout(cfg.rpc_timeout, provider.get_chain_id())
            .await
            .map_err(|_| "eth_chainId timed out".to_owned())?
            .map_err(|e| url.scrub(&e.to_string()))?;
        if id != cfg.chain_id {
            error!(chain = %cfg.name, ws = %url, expected = cfg.chain_id, got = id, "WebSocket endpoint serves the wrong chain; not using it");
            return Err(format!("chain id {id}, expected {}", cfg.chain_id));
        }
        let sub = tokio::time::timeout(cfg.rpc_timeout, provider.subscribe_blocks())
            .await
            .map_err(|_| "eth_subscribe timed out".to_owned())?
            .map_err(|e| url.scrub(&e.to_string()))?;
        Ok::<_, String>((provider, sub))
    };
    let (_provider, mut sub) = tokio::select! {
        _ = cancel.cancelled() => return WsEnd::Cancelled,
        r = setup => match r {
            Ok(v) => v,
            Err(reason) => return failed(reason),
        },
    };
    // Blocks mined between the last poll and the subscription; from here on the subscription
    // alone publishes.
    tokio::select! {
        _ = cancel.cancelled() => return WsEnd::Cancelled,
        _ = poll_head(client, tx, shared) => {}
    }
    shared.ws_connects.fetch_add(1, Ordering::Relaxed);
    shared.ws_live.store(true, Ordering::Relaxed);
    info!(chain = %cfg.name, ws = %url, "following new heads over WebSocket");

    let mut delivered = false;
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return WsEnd::Cancelled,
            item = sub.recv() => match item {
                Ok(header) => {
                    delivered = true;
                    last_seen = Instant::now();
                    publish(tx, Head { number: header.number, hash: header.hash, source: HeadSource::WebSocket }, true);
                }
                Err(RecvError::Lagged(n)) => debug!(chain = %cfg.name, skipped = n, "head subscription lagged"),
                Err(RecvError::Closed) => return WsEnd::Failed { reason: "subscription closed (connection lost)".into(), delivered },
            },
            _ = sleep_until(last_seen + cfg.ws_stale_after) => {
                // Silence: an idle chain, or a dead subscription? Ask over HTTP.
                let known = tx.borrow().map(|h| h.number);
                let polled = tokio::select! {
                    _ = cancel.cancelled() => return WsEnd::Cancelled,
                    r = client.latest_block() => r,
                };
                last_seen = Instant::now();
                if let Ok(b) = polled
                    && known.is_none_or(|k| b.number > k)
                {
                    publish(tx, Head { number: b.number, hash: b.hash, source: HeadSource::Polling }, false);
                    return WsEnd::Failed {
                        reason: format!("no head for {:?} while the chain advanced to block {}", cfg.ws_stale_after, b.number),
                        delivered,
                    };
                }
            }
        }
    }
}

async fn poll_head(client: &ChainClient, tx: &watch::Sender<Option<Head>>, shared: &Shared) {
    shared.polls.fetch_add(1, Ordering::Relaxed);
    match client.latest_block().await {
        Ok(b) => publish(
            tx,
            Head {
                number: b.number,
                hash: b.hash,
                source: HeadSource::Polling,
            },
            false,
        ),
        Err(e) => {
            shared.poll_errors.fetch_add(1, Ordering::Relaxed);
            debug!(chain = %client.name(), error = %e, "head poll failed");
        }
    }
}

/// Publishes `head` if it differs from the current one. A polled head lower than the current
/// one is ignored (a lagging endpoint, most likely); the subscription's heads are taken as
/// they come, since the node sends them in order, reorgs included.
fn publish(tx: &watch::Sender<Option<Head>>, head: Head, authoritative: bool) {
    tx.send_if_modified(|current| match current {
        Some(c) if (c.number, c.hash) == (head.number, head.hash) => false,
        Some(c) if !authoritative && head.number < c.number => false,
        _ => {
            *current = Some(head);
            true
        }
    });
}
