//! [`ChainClient`]: calls with timeout and failover across one chain's endpoints.

use super::degraded::LimitWindow;
use super::endpoints::{Endpoint, EndpointStats, FaultKind, attempt_order};
use super::error::{Answer, ChainError, ClassifyError, Failure};
use super::heads::{self, HeadStream};
use super::log_window::{LogWindow, LogWindowStats};
use super::logs::LogStream;
use super::send_gate::SendGate;
use super::{ChainAccessConfig, SensitiveUrl};
use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{
    Block, BlockNumberOrTag, FeeHistory, Filter, Log, TransactionReceipt, TransactionRequest,
};
use alloy::transports::RpcError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Times one call is retried after rate limits (each after the wait the endpoint asked for),
/// within [`ChainAccessConfig::rate_limit_wait`].
const MAX_RATE_LIMIT_RETRIES: usize = 10;

/// The parts of a block header a watcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
    pub timestamp: u64,
    /// `None` before London / on chains without EIP-1559.
    pub base_fee_per_gas: Option<u64>,
}

impl BlockRef {
    fn from_block(b: &Block) -> Self {
        BlockRef {
            number: b.header.inner.number,
            hash: b.header.hash,
            parent_hash: b.header.inner.parent_hash,
            timestamp: b.header.inner.timestamp,
            base_fee_per_gas: b.header.inner.base_fee_per_gas,
        }
    }
}

/// Which state `eth_getTransactionCount` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTag {
    Latest,
    Pending,
}

/// Counters of one chain, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStats {
    pub chain: String,
    pub chain_id: u64,
    /// Calls that moved from one endpoint to the next.
    pub failovers: u64,
    /// Attempts refused with a rate limit, over every endpoint.
    pub rate_limited: u64,
    /// True while most recent attempts are rate-limited (see [`super::DEGRADED_WINDOW`]).
    pub degraded: bool,
    /// The learned `eth_getLogs` window and its refusals.
    pub logs: LogWindowStats,
    pub endpoints: Vec<EndpointStats>,
}

/// One chain, over several RPC endpoints. Cheap to clone (shared state).
///
/// Every call runs on the healthiest available endpoint with a timeout of
/// [`ChainAccessConfig::rpc_timeout`]; on a timeout or transport failure it moves to the next
/// endpoint. JSON-RPC error answers (reverts, "nonce too low") are returned as they are. A rate
/// limit moves that endpoint to the back of the order for the time it asked (other calls prefer
/// the other endpoints meanwhile), and the refused call tries the next endpoint; refused
/// everywhere, it waits for the first endpoint's pause to end and retries, at most
/// [`MAX_RATE_LIMIT_RETRIES`] times within [`ChainAccessConfig::rate_limit_wait`]. Other calls are
/// not held back by a refusal they did not get: with a provider limiting by rate, each refused
/// caller backs off by itself, and together they slow down.
#[derive(Clone)]
pub struct ChainClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ChainAccessConfig,
    endpoints: Vec<Endpoint>,
    failovers: AtomicU64,
    limits: LimitWindow,
    /// Where each call's outcome (answered or not) is reported, once the agent asked for it.
    reach: OnceLock<Arc<dyn ReachSink>>,
    /// Whether broadcasts may go out (`send_gate.rs`).
    sends: tokio::sync::watch::Sender<SendGate>,
    log_window: LogWindow,
}

/// Told after every call whether the chain answered (any endpoint, an error answer or a rate
/// limit included) or not (every endpoint failed without an answer). The metrics layer
/// implements it, so the chain layer names nothing above it.
pub trait ReachSink: Send + Sync + 'static {
    fn set_reachable(&self, reachable: bool);
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended.
enum Attempt<T> {
    /// A value or an error answer: the call is over.
    Done(Result<T, ChainError>),
    /// The endpoint failed (already scored): try the next one.
    Fault(ChainError),
}

impl ChainClient {
    /// Builds the providers and checks that every endpoint serves `config.chain_id`.
    ///
    /// A wrong chain id on any endpoint (HTTP or WebSocket) is fatal
    /// ([`ChainError::ChainIdMismatch`]); an unreachable endpoint is a warning as long as one
    /// HTTP endpoint answered ([`ChainError::NoEndpointReachable`] otherwise).
    pub async fn connect(config: ChainAccessConfig) -> Result<Self, ChainError> {
        if config.rpc.is_empty() {
            return Err(ChainError::NoEndpoints {
                chain: config.name.clone(),
            });
        }
        let mut endpoints = Vec::with_capacity(config.rpc.len());
        for (index, url) in config.rpc.iter().enumerate() {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ChainError::InvalidUrl {
                    chain: config.name.clone(),
                    endpoint: format!("rpc[{index}] {url}"),
                    reason: "an RPC endpoint must be http:// or https://".into(),
                });
            }
            let provider = ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect_http(url.expose().clone())
                .erased();
            endpoints.push(
                Endpoint::new(index, url.clone(), provider).with_budget(config.requests_per_second),
            );
        }
        if let Some(ws) = &config.ws
            && !matches!(ws.scheme(), "ws" | "wss")
        {
            return Err(ChainError::InvalidUrl {
                chain: config.name.clone(),
                endpoint: format!("ws {ws}"),
                reason: "the WebSocket endpoint must be ws:// or wss://".into(),
            });
        }
        let client = ChainClient {
            inner: Arc::new(Inner {
                log_window: LogWindow::new(config.log_window),
                config,
                endpoints,
                failovers: AtomicU64::new(0),
                limits: LimitWindow::new(Instant::now()),
                reach: OnceLock::new(),
                sends: tokio::sync::watch::Sender::new(SendGate::default()),
            }),
        };
        client.check_chain_ids().await?;
        if let Some(ws) = client.inner.config.ws.clone() {
            client.check_ws_chain_id(&ws).await?;
        }
        Ok(client)
    }

    async fn check_chain_ids(&self) -> Result<(), ChainError> {
        let cfg = &self.inner.config;
        let mut set = JoinSet::new();
        for index in 0..self.inner.endpoints.len() {
            let client = self.clone();
            set.spawn(async move { (index, client.chain_id_of(index).await) });
        }
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => {
                    return Err(ChainError::Local {
                        method: "eth_chainId",
                        message: format!("chain-id check task failed: {e}"),
                    });
                }
            }
        }
        results.sort_by_key(|r| r.0);

        let mut unreachable = Vec::new();
        let mut mismatch = None;
        for (index, result) in results {
            let ep = &self.inner.endpoints[index];
            match result {
                Ok(got) if got != cfg.chain_id => {
                    mismatch.get_or_insert(ChainError::ChainIdMismatch {
                        chain: cfg.name.clone(),
                        endpoint: ep.label(),
                        expected: cfg.chain_id,
                        got,
                    });
                }
                Ok(_) => {}
                Err(e) => unreachable.push(e),
            }
        }
        if let Some(m) = mismatch {
            return Err(m);
        }
        if unreachable.len() == self.inner.endpoints.len() {
            return Err(ChainError::NoEndpointReachable {
                chain: cfg.name.clone(),
                errors: unreachable,
            });
        }
        for e in &unreachable {
            warn!(chain = %cfg.name, error = %e, "RPC endpoint unreachable at start; continuing with the others");
        }
        info!(
            chain = %cfg.name,
            chain_id = cfg.chain_id,
            endpoints = self.inner.endpoints.len(),
            reachable = self.inner.endpoints.len() - unreachable.len(),
            "chain id checked"
        );
        Ok(())
    }

    /// `eth_chainId` of one endpoint, waiting out its rate limits (bounded like any call).
    async fn chain_id_of(&self, index: usize) -> Result<u64, ChainError> {
        let ep = &self.inner.endpoints[index];
        let deadline = Instant::now() + self.inner.config.rate_limit_wait;
        loop {
            match self
                .attempt(ep, "eth_chainId", ep.provider.get_chain_id())
                .await
            {
                Attempt::Done(result) => return result,
                Attempt::Fault(e) => match ep.paused_until(Instant::now()) {
                    Some(until) if e.is_rate_limited() && until < deadline => {
                        tokio::time::sleep_until(until.into()).await;
                    }
                    _ => return Err(e),
                },
            }
        }
    }

    async fn check_ws_chain_id(&self, ws: &SensitiveUrl) -> Result<(), ChainError> {
        let cfg = &self.inner.config;
        let endpoint = format!("ws {ws}");
        let result = match heads::connect_ws(ws, cfg.rpc_timeout).await {
            Ok(p) => tokio::time::timeout(cfg.rpc_timeout, p.get_chain_id())
                .await
                .map_err(|_| format!("eth_chainId timed out after {:?}", cfg.rpc_timeout))
                .and_then(|r| r.map_err(|e| ws.scrub(&e.to_string()))),
            Err(e) => Err(e),
        };
        match result {
            Ok(got) if got != cfg.chain_id => Err(ChainError::ChainIdMismatch {
                chain: cfg.name.clone(),
                endpoint,
                expected: cfg.chain_id,
                got,
            }),
            Ok(_) => Ok(()),
            Err(reason) => {
                warn!(chain = %cfg.name, endpoint = %endpoint, %reason, "WebSocket endpoint unreachable at start; polling until it comes up");
                Ok(())
            }
        }
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ChainAccessConfig {
        &self.inner.config
    }

    /// The chain's name, for logs.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The chain id, checked against every reachable endpoint at [`ChainClient::connect`].
    pub fn chain_id(&self) -> u64 {
        self.inner.config.chain_id
    }

    /// Runs `f` against the healthiest endpoint, failing over on transport errors and timeouts.
    ///
    /// The building block of every call here, public so callers can run `sol!` contract calls
    /// with the same failover:
    /// `client.run("Bridge.requestNonce", |p| async move { Bridge::new(addr, p).requestNonce().call().await })`.
    pub async fn run<T, E, F, Fut>(&self, method: &'static str, f: F) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: ClassifyError,
    {
        self.run_on(method, false, f).await
    }

    /// [`ChainClient::run`]; `gated`: every attempt first asks the send gate
    /// ([`ChainClient::sends_open`]), so a call that fails over stops at the new endpoint.
    async fn run_on<T, E, F, Fut>(
        &self,
        method: &'static str,
        gated: bool,
        f: F,
    ) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: ClassifyError,
    {
        let deadline = Instant::now() + self.inner.config.rate_limit_wait;
        let mut faults = Vec::new();
        // Endpoints that failed (not rate-limited) in this call: not tried again by it.
        let mut failed = Vec::new();
        // Endpoints that refused this call with a rate limit, and when this call may ask again.
        let mut refused: Vec<(usize, Instant)> = Vec::new();
        let mut attempts = 0usize;
        for round in 0..=MAX_RATE_LIMIT_RETRIES {
            let now = Instant::now();
            let order: Vec<&Endpoint> = attempt_order(&self.inner.endpoints, now)
                .into_iter()
                .filter(|ep| !failed.contains(&ep.index))
                .filter(|ep| !refused.iter().any(|(i, t)| *i == ep.index && *t > now))
                .collect();
            for (i, ep) in order.iter().enumerate() {
                if gated && !self.sends_open() {
                    return Err(ChainError::SendsHeld {
                        chain: self.name().to_owned(),
                        method,
                    });
                }
                attempts += 1;
                match self.attempt(ep, method, f(ep.provider.clone())).await {
                    Attempt::Done(result) => {
                        if attempts > 1 {
                            debug!(chain = %self.name(), method, endpoint = %ep.label(), attempts, "answered after failover or rate limit");
                        }
                        return result;
                    }
                    Attempt::Fault(e) => {
                        if i + 1 < order.len() {
                            ep.record_failover();
                            self.inner.failovers.fetch_add(1, Ordering::Relaxed);
                        }
                        refused.retain(|(index, _)| *index != ep.index);
                        match ep.paused_until(Instant::now()) {
                            Some(until) if e.is_rate_limited() => refused.push((ep.index, until)),
                            _ => failed.push(ep.index),
                        }
                        faults.push(e);
                    }
                }
            }
            // Every endpoint failed or refused this call: wait for the first to allow it again,
            // if that is in time.
            let Some(until) = refused.iter().map(|(_, t)| *t).min() else {
                // No endpoint answered, not even with a rate limit: the chain is out of reach.
                if !faults.iter().any(ChainError::is_rate_limited) {
                    self.report_reach(false);
                }
                break;
            };
            if until > deadline || round == MAX_RATE_LIMIT_RETRIES {
                break;
            }
            debug!(chain = %self.name(), method, wait = ?until.saturating_duration_since(Instant::now()), "rate-limited on every RPC endpoint; waiting to retry");
            tokio::time::sleep_until(until.into()).await;
        }
        Err(ChainError::AllEndpointsFailed {
            chain: self.name().to_owned(),
            method,
            errors: faults,
        })
    }

    /// From now on, every call's outcome sets `reach` (`bridge_chain_reachable`, `/readyz`).
    /// The first registration stays.
    pub fn report_reach_to(&self, reach: Arc<dyn ReachSink>) {
        let _ = self.inner.reach.set(reach);
    }

    fn report_reach(&self, reachable: bool) {
        if let Some(r) = self.inner.reach.get() {
            r.set_reachable(reachable);
        }
    }

    async fn attempt<T, E: ClassifyError>(
        &self,
        ep: &Endpoint,
        method: &'static str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Attempt<T> {
        let cfg = &self.inner.config;
        ep.pace().await;
        ep.record_request();
        let started = Instant::now();
        let limits = &self.inner.limits;
        let (fault, kind) = match tokio::time::timeout(cfg.rpc_timeout, fut).await {
            Ok(Ok(value)) => {
                ep.record_answer(started.elapsed(), false);
                limits.record(false, Instant::now());
                self.report_reach(true);
                return Attempt::Done(Ok(value));
            }
            Ok(Err(e)) => match e.classify() {
                Failure::Answer(answer) => {
                    let endpoint = ep.label();
                    let err = match answer {
                        Answer::Reverted { message, data } => ChainError::Reverted {
                            endpoint,
                            method,
                            message,
                            data,
                        },
                        Answer::Rpc {
                            code,
                            message,
                            data,
                        } => ChainError::Rpc {
                            endpoint,
                            method,
                            code,
                            message,
                            data,
                        },
                        Answer::Local(message) => {
                            return Attempt::Done(Err(ChainError::Local { method, message }));
                        }
                    };
                    ep.record_answer(started.elapsed(), true);
                    limits.record(false, Instant::now());
                    self.report_reach(true);
                    return Attempt::Done(Err(err));
                }
                Failure::Capped {
                    code,
                    message,
                    data,
                } => {
                    // The endpoint works; the query was too wide for it. Scored as an answer,
                    // so a capping provider is never cooled down or failed over from.
                    ep.record_answer(started.elapsed(), true);
                    limits.record(false, Instant::now());
                    self.report_reach(true);
                    return Attempt::Done(Err(ChainError::LogsCapped {
                        endpoint: ep.label(),
                        method,
                        code,
                        message: ep.clean(&message),
                        data,
                    }));
                }
                Failure::RateLimited {
                    message,
                    retry_after,
                } => {
                    let now = Instant::now();
                    limits.record(true, now);
                    // Refused, but answered: reachable (degraded is reported on its own).
                    self.report_reach(true);
                    let pause = ep.record_rate_limited(retry_after, &cfg.rate_limit_backoff, now);
                    let err = ChainError::RateLimited {
                        endpoint: ep.label(),
                        method,
                        message: ep.clean(&message),
                        retry_after,
                    };
                    debug!(chain = %cfg.name, error = %err, ?pause, "RPC endpoint rate-limited; pausing it");
                    return Attempt::Fault(err);
                }
                Failure::Endpoint(message) => (
                    ChainError::Transport {
                        endpoint: ep.label(),
                        method,
                        message: ep.clean(&message),
                    },
                    FaultKind::Transport,
                ),
                Failure::InvalidResponse(message) => (
                    ChainError::InvalidResponse {
                        endpoint: ep.label(),
                        method,
                        message: ep.clean(&message),
                    },
                    FaultKind::Transport,
                ),
            },
            Err(_) => (
                ChainError::Timeout {
                    endpoint: ep.label(),
                    method,
                    timeout: cfg.rpc_timeout,
                },
                FaultKind::Timeout,
            ),
        };
        limits.record(false, Instant::now());
        let was_healthy = ep.stats(started).consecutive_failures == 0;
        ep.record_fault(kind, &cfg.endpoint_backoff, Instant::now());
        if was_healthy {
            warn!(chain = %cfg.name, error = %fault, score = ep.score(), "RPC endpoint failed; cooling down");
        } else {
            debug!(chain = %cfg.name, error = %fault, score = ep.score(), "RPC endpoint still failing");
        }
        Attempt::Fault(fault)
    }

    /// A provider on the currently best endpoint, for `sol!` contract instances. It has no
    /// failover or timeout of its own: prefer [`ChainClient::run`] for calls that matter.
    pub fn provider(&self) -> DynProvider {
        attempt_order(&self.inner.endpoints, Instant::now())[0]
            .provider
            .clone()
    }

    /// Holds every broadcast of this client (and its clones) until a bridge check passes
    /// ([`ChainClient::open_sends`]); from then on each RPC failover holds them again until
    /// the next check passes (`send_gate.rs`). A client never held sends freely.
    pub fn hold_sends(&self) {
        self.inner.sends.send_replace(SendGate::Closed);
    }

    /// The bridge check that began when [`ChainStats::failovers`] was `failovers` passed:
    /// broadcasts may go out until the next failover.
    pub fn open_sends(&self, failovers: u64) {
        self.inner
            .sends
            .send_replace(SendGate::VerifiedAt(failovers));
    }

    /// Whether a broadcast may go out now (see [`ChainClient::hold_sends`]).
    pub fn sends_open(&self) -> bool {
        let failovers = self.inner.failovers.load(Ordering::Relaxed);
        self.inner.sends.borrow().open(failovers)
    }

    /// Resolves once broadcasts may go out (a failover only closes the gate: it opens on
    /// [`ChainClient::open_sends`], which wakes this).
    pub async fn sends_opened(&self) {
        let mut rx = self.inner.sends.subscribe();
        let failovers = &self.inner.failovers;
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = rx
            .wait_for(|g| g.open(failovers.load(Ordering::Relaxed)))
            .await;
    }

    /// Per-endpoint counters and scores.
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        self.inner.endpoints.iter().map(|e| e.stats(now)).collect()
    }

    /// True while most recent RPC attempts on this chain are rate-limited (over the last
    /// [`super::DEGRADED_WINDOW`] or two, at least [`super::DEGRADED_MIN_ATTEMPTS`] attempts).
    pub fn is_degraded(&self) -> bool {
        self.inner.limits.degraded(Instant::now())
    }

    /// Chain-level counters plus [`ChainClient::endpoint_stats`].
    pub fn stats(&self) -> ChainStats {
        ChainStats {
            chain: self.name().to_owned(),
            chain_id: self.chain_id(),
            failovers: self.inner.failovers.load(Ordering::Relaxed),
            rate_limited: self.inner.limits.total(),
            degraded: self.is_degraded(),
            logs: self.inner.log_window.stats(),
            endpoints: self.endpoint_stats(),
        }
    }

    /// New-head notifications (WebSocket subscription, or polling), until `shutdown` fires or
    /// the stream is dropped.
    pub fn new_heads(&self, shutdown: &CancellationToken) -> HeadStream {
        HeadStream::spawn(self.clone(), shutdown.child_token())
    }

    /// Logs matching `filter`'s addresses and topics from `from_block` on, in windows, as the
    /// head moves. Its block range is set by the stream.
    pub fn log_stream(
        &self,
        filter: Filter,
        from_block: u64,
        shutdown: &CancellationToken,
    ) -> LogStream {
        LogStream::new(self.clone(), filter, from_block, self.new_heads(shutdown))
    }

    // ---- JSON-RPC calls -------------------------------------------------------------------

    /// `eth_chainId` as an endpoint answers it now (see also [`ChainClient::chain_id`]).
    pub async fn fetch_chain_id(&self) -> Result<u64, ChainError> {
        self.run("eth_chainId", |p| async move { p.get_chain_id().await })
            .await
    }

    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.run(
            "eth_blockNumber",
            |p| async move { p.get_block_number().await },
        )
        .await
    }

    /// The header of block `number`, or `None` if the endpoint does not have it (yet).
    pub async fn block_by_number(&self, number: u64) -> Result<Option<BlockRef>, ChainError> {
        let block = self
            .run("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(number))
                    .await
            })
            .await?;
        Ok(block.as_ref().map(BlockRef::from_block))
    }

    /// The header of the latest block.
    pub async fn latest_block(&self) -> Result<BlockRef, ChainError> {
        let block = self
            .run("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Latest)
                    .await?
                    .ok_or(RpcError::NullResp)
            })
            .await?;
        Ok(BlockRef::from_block(&block))
    }

    /// The chain's learned `eth_getLogs` window, shared by every range reader of this client.
    pub(crate) fn log_window(&self) -> &LogWindow {
        &self.inner.log_window
    }

    /// `eth_getLogs` as given (one request). Only the range reader calls it, so every log query
    /// of the agent is sized to what the provider accepts: use [`ChainClient::log_range`] or
    /// [`ChainClient::get_logs_range`].
    pub(super) async fn get_logs(&self, filter: &Filter) -> Result<Vec<Log>, ChainError> {
        self.run("eth_getLogs", |p| {
            let filter = filter.clone();
            async move { p.get_logs(&filter).await }
        })
        .await
    }

    /// `eth_call` on the latest block. A revert is [`ChainError::Reverted`] with its data.
    pub async fn call(&self, tx: TransactionRequest) -> Result<Bytes, ChainError> {
        self.call_at(tx, BlockId::latest()).await
    }

    /// `eth_call` on a given block.
    pub async fn call_at(
        &self,
        tx: TransactionRequest,
        block: BlockId,
    ) -> Result<Bytes, ChainError> {
        self.run("eth_call", |p| {
            let tx = tx.clone();
            async move { p.call(tx).block(block).await }
        })
        .await
    }

    /// `eth_estimateGas`. A revert is [`ChainError::Reverted`] with its data.
    pub async fn estimate_gas(&self, tx: TransactionRequest) -> Result<u64, ChainError> {
        self.run("eth_estimateGas", |p| {
            let tx = tx.clone();
            async move { p.estimate_gas(tx).await }
        })
        .await
    }

    /// `eth_sendRawTransaction`; returns the tx hash.
    ///
    /// After a timeout the next endpoint gets the same bytes: the first may have taken the tx
    /// already, so an `already known` / `nonce too low` answer ([`ChainError::Rpc`]) can mean
    /// success. The caller knows the hash (keccak of the bytes) and checks the receipt.
    pub async fn send_raw_transaction(&self, raw: &[u8]) -> Result<B256, ChainError> {
        let raw = Bytes::copy_from_slice(raw);
        self.run_on("eth_sendRawTransaction", true, |p| {
            let raw = raw.clone();
            async move {
                p.raw_request::<_, B256>("eth_sendRawTransaction".into(), (raw,))
                    .await
            }
        })
        .await
    }

    pub async fn transaction_receipt(
        &self,
        hash: B256,
    ) -> Result<Option<TransactionReceipt>, ChainError> {
        self.run("eth_getTransactionReceipt", |p| async move {
            p.get_transaction_receipt(hash).await
        })
        .await
    }

    /// Where a node has the transaction `hash` (`eth_getTransactionByHash`): `None` when it
    /// does not know it, `Some(None)` when it holds it unmined (sent, or put back into its pool
    /// after a reorg), `Some(Some(block))` when it is mined.
    pub async fn transaction_block(&self, hash: B256) -> Result<Option<Option<u64>>, ChainError> {
        let tx = self
            .run("eth_getTransactionByHash", |p| async move {
                p.get_transaction_by_hash(hash).await
            })
            .await?;
        Ok(tx.map(|t| t.block_number))
    }

    /// `eth_getTransactionCount` (the account nonce) at the latest block or with pending txs.
    pub async fn transaction_count(
        &self,
        address: Address,
        tag: BlockTag,
    ) -> Result<u64, ChainError> {
        self.run("eth_getTransactionCount", |p| async move {
            let call = p.get_transaction_count(address);
            match tag {
                BlockTag::Latest => call.latest().await,
                BlockTag::Pending => call.pending().await,
            }
        })
        .await
    }

    pub async fn balance(&self, address: Address) -> Result<U256, ChainError> {
        self.run("eth_getBalance", |p| async move {
            p.get_balance(address).latest().await
        })
        .await
    }

    /// `eth_gasPrice` (legacy fee).
    pub async fn gas_price(&self) -> Result<u128, ChainError> {
        self.run("eth_gasPrice", |p| async move { p.get_gas_price().await })
            .await
    }

    /// `eth_maxPriorityFeePerGas` (EIP-1559 tip suggestion).
    pub async fn max_priority_fee(&self) -> Result<u128, ChainError> {
        self.run("eth_maxPriorityFeePerGas", |p| async move {
            p.get_max_priority_fee_per_gas().await
        })
        .await
    }

    /// `eth_feeHistory` over the last `block_count` blocks.
    pub async fn fee_history(
        &self,
        block_count: u64,
        reward_percentiles: &[f64],
    ) -> Result<FeeHistory, ChainError> {
        self.run("eth_feeHistory", |p| {
            let percentiles = reward_percentiles.to_vec();
            async move {
                p.get_fee_history(block_count, BlockNumberOrTag::Latest, &percentiles)
                    .await
            }
        })
        .await
    }

    /// The latest block's base fee; `None` on a chain without EIP-1559.
    pub async fn base_fee(&self) -> Result<Option<u64>, ChainError> {
        Ok(self.latest_block().await?.base_fee_per_gas)
    }
}
