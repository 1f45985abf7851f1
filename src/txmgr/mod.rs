//! The tx manager: one per destination chain (the operator's account there). It turns vote
//! calldata into mined transactions.
//!
//! ```text
//! submit(calldata) ─> estimate_gas (from = operator) ── revert ──> WouldRevert (nothing sent)
//!        │ gas × 1.25 + 100k, fees per FeePolicy
//!        ▼
//!   nonce lease (in order) ─> Guard::sign_transaction (jobs sign in parallel)
//!        ▼
//!   wait for every lower nonce to be broadcast ─> eth_sendRawTransaction (nonce order)
//!        ▼
//!   tracker: once the mined nonce (one poller per manager) passes ours, the receipt of
//!            whichever hash we sent for it ─> Mined | Reverted(revert data)
//!            not mined after bump_after: replacement, fees + bump_percent (≤ max_bumps, ≤ cap),
//!            else re-send the same bytes; nonce taken by a tx we never sent: start over
//! ```
//!
//! Nonces: see [`nonce`] for how a failure between signing and broadcast is healed (later
//! leases are voided and re-signed; the failed nonce is reused), so no nonce is ever stranded.
//! The manager starts above what an earlier run left in the node's pool and tracks those
//! leftovers like its own (`leftovers.rs`), reconciles with the pending count whenever a node
//! answers "nonce too low/high", and on every mined-nonce poll converges to the chain
//! (`converge.rs`): after a reorg, a dropped pool or a new node it re-sends, fills holes, or
//! restarts numbering at the chain's nonce, and reports a sender that stopped being mined
//! while its chain goes on as wedged ([`TxStats::wedged`]).
//!
//! Balance: read at start, after mined or reverted transactions (at most once per
//! [`BALANCE_GAP`]) and every [`BALANCE_EVERY`]; below `min_balance` sets [`TxStats::low_balance`] and logs a warning with
//! `alarm = "low_balance"`.
//!
//! Tasks: each submission runs in its own task (so a caller dropping `submit` does not strand
//! a nonce or stop fee bumping); one balance task and one mined-nonce poller run per manager.
//! All of them end when the shutdown token fires; the two per-manager tasks also end once every
//! handle is dropped.

mod active;
mod build;
mod converge;
mod error;
mod fees;
mod leftovers;
mod nonce;
mod tracker;

pub use active::ActiveKey;
pub use build::{TxFields, UnsignedTx};
pub use converge::Wedged;
pub use error::TxError;
pub use fees::Fees;

use crate::chain::{BlockTag, ChainClient, ChainError};
use crate::config::FeePolicy;
use crate::metrics::ChainMetrics;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::rpc::types::TransactionRequest;
use bridge_signer::{Guard, Signer};
pub use error::SendRejection;
use nonce::{Sequencer, Turn};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The signer as the agent holds it: the guard around the configured backend.
pub type GuardedSigner = Guard<Arc<dyn Signer>>;

/// Gas limit = estimate + this percentage of it + [`GAS_EXTRA`]. A vote estimated before the
/// others arrive may become the one that executes the transfer, which costs more.
pub const GAS_MARGIN_PERCENT: u64 = 25;
/// Fixed gas added to every estimate (see [`GAS_MARGIN_PERCENT`]). Sized for the worst
/// execution a vote can trigger: the t-th vote mints an ERC-721 and stores its URI (~400k; the
/// demo saw 100 000 run out of gas there, reverting with empty data), and moves
/// `lowerHandleNonce` over every nonce already executed out of order, up to the bridge's
/// `MAX_HANDLE_NONCE_ADVANCE` = 200 at ~5k gas each (the throughput bench saw hundreds of votes
/// run out of gas on that sweep with 400k). Only the gas used is paid.
pub const GAS_EXTRA: u64 = 1_500_000;
/// Period of the background balance check.
pub const BALANCE_EVERY: Duration = Duration::from_secs(30);
/// Least time between two balance reads (mined transactions ask for one each).
pub const BALANCE_GAP: Duration = Duration::from_secs(5);
/// How long one base-fee read prices new transactions (the offer is twice the base fee, which
/// covers the rises of the few blocks this spans).
const BASE_FEE_FOR: Duration = Duration::from_secs(1);
/// Nonce resynchronisations one submission tolerates before giving up.
const MAX_RESYNCS: u32 = 5;
/// Times one submission starts over after its nonce was taken by a transaction it never sent.
const MAX_RESTARTS: u32 = 3;

/// One destination chain's settings.
#[derive(Debug, Clone)]
pub struct TxManagerConfig {
    /// The chain's name, for logs.
    pub chain: String,
    /// The bridge every transaction goes to.
    pub bridge: Address,
    pub fees: FeePolicy,
    /// Low-balance alarm threshold, in wei.
    pub min_balance: U256,
    /// Time between two receipt polls of a pending transaction.
    pub receipt_poll: Duration,
    /// Submissions in progress at most; further ones wait for a slot.
    pub max_in_flight: usize,
    /// The chain's next nonce unmined this long while blocks are produced: wedged.
    pub wedged_after: Duration,
    /// The chain's metric handles this manager counts into (sent, mined, replaced, repairs).
    /// Owned per chain, not per manager: the manager a key switch starts shares them, so no
    /// count is lost. `Default` gives a manager its own.
    pub metrics: Arc<ChainMetrics>,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// Mined and succeeded.
    Mined {
        tx_hash: B256,
        block: u64,
        gas_used: u64,
    },
    /// Mined and reverted (counted by the caller, who can tell a late vote from a fault).
    /// `revert` is the revert data of the call replayed at the receipt's
    /// block, when the node gives it (decode with `Bridge::BridgeErrors`).
    Reverted {
        tx_hash: B256,
        revert: Option<Bytes>,
    },
    /// The gas estimate reverted: nothing was signed or sent, no gas spent.
    WouldRevert { revert: Bytes },
}

/// Counters and gauges, for metrics and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxStats {
    /// Submissions broadcast (first send of each; the side's count, see
    /// [`TxManagerConfig::metrics`], as are `mined`, `replaced` and the repairs).
    pub sent: u64,
    pub mined: u64,
    pub reverted: u64,
    /// Fee-bump replacements broadcast.
    pub replaced: u64,
    /// Identical re-sends of a transaction not mined in time.
    pub resent: u64,
    /// Submissions that ended with [`TxError`].
    pub failed: u64,
    /// Submissions whose estimate reverted.
    pub would_revert: u64,
    /// Submissions in progress.
    pub pending: u64,
    /// Times the nonce was re-read from the chain after a node disagreed.
    pub resyncs: u64,
    /// The operator's balance at the last check, in wei.
    pub last_balance: Option<U256>,
    /// `last_balance < min_balance`.
    pub low_balance: bool,
    /// The next nonce this manager will use.
    pub nonce: u64,
    /// Times the account's mined nonce was seen going down (reorgs of this chain).
    pub nonce_went_down: u64,
    /// Convergence repairs: transactions the node lost re-sent, nonce gaps filled with a copy
    /// of the vote above, numbering restarted at the chain's nonce.
    pub repair_resent: u64,
    pub gap_fills: u64,
    pub rebases: u64,
    /// Transactions of an earlier run found in the node's pool at start and tracked.
    pub leftovers: u64,
    /// Set while the lowest pending transaction is not mined although the chain moves on.
    pub wedged: Option<Wedged>,
}

/// Submits transactions from the operator's account on one chain. Cheap to clone (shared).
#[derive(Clone)]
pub struct TxManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxManager")
            .field("chain", &self.inner.cfg.chain)
            .field("address", &self.inner.address)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    cfg: TxManagerConfig,
    client: ChainClient,
    guard: Arc<GuardedSigner>,
    shutdown: CancellationToken,
    address: Address,
    seq: Arc<Sequencer>,
    slots: Semaphore,
    counters: Counters,
    balance: Mutex<Option<U256>>,
    low_balance: AtomicBool,
    balance_now: Arc<Notify>,
    /// The account's mined nonce, as last read by the poller (see [`tracker`]).
    mined: tokio::sync::watch::Sender<u64>,
    /// Wakes the nonce poller when a transaction becomes pending.
    pending_now: Arc<Notify>,
    /// The last first offer and when it was computed.
    last_offer: Mutex<Option<(Instant, Fees)>>,
    /// Transactions being tracked, by (nonce, tracker id): for the convergence check.
    in_flight: converge::Registry,
    flight_ids: AtomicU64,
    /// See [`TxStats::wedged`]; set and cleared by the convergence check.
    wedged: Mutex<Option<Wedged>>,
}

#[derive(Default)]
struct Counters {
    reverted: AtomicU64,
    resent: AtomicU64,
    failed: AtomicU64,
    would_revert: AtomicU64,
    pending: AtomicU64,
    resyncs: AtomicU64,
    leftovers: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A signed transaction ready to broadcast.
#[derive(Debug, Clone)]
pub(crate) struct SignedTx {
    pub hash: B256,
    pub raw: Bytes,
    pub fees: Fees,
}

/// What a job needs to (re-)sign its transaction.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub label: String,
    pub calldata: Bytes,
    pub gas: u64,
}

impl TxManager {
    /// Reads the operator's mined nonce (where the sequence starts: transactions of a previous
    /// run still in the pool are outbid, not queued behind) and balance, and starts the balance
    /// task.
    pub async fn start(
        cfg: TxManagerConfig,
        client: ChainClient,
        guard: Arc<GuardedSigner>,
        shutdown: CancellationToken,
    ) -> Result<Self, TxError> {
        let address = guard.signer().address();
        let chain_err = |what| {
            let chain = cfg.chain.clone();
            move |source| TxError::Chain {
                chain,
                what,
                source,
            }
        };
        let pending = client
            .transaction_count(address, BlockTag::Pending)
            .await
            .map_err(chain_err("reading the operator's pending nonce"))?;
        let latest = client
            .transaction_count(address, BlockTag::Latest)
            .await
            .map_err(chain_err("reading the operator's nonce"))?;
        // What an earlier run left in the pool (pending or queued): tracked like this run's own
        // and stepped over, never outbid (a leftover bumped several times would out-price
        // every replacement: "replacement transaction underpriced").
        let leftovers: Vec<leftovers::Leftover> = match leftovers::read(&client, address).await {
            Some(found) => found.into_iter().filter(|l| l.nonce >= latest).collect(),
            None => Vec::new(),
        };
        let first = leftovers.last().map_or(latest, |l| l.nonce + 1).max(latest);
        if pending > latest || !leftovers.is_empty() {
            warn!(
                chain = %cfg.chain, %address, latest, pending, in_pool = leftovers.len(), first,
                "transactions of an earlier run are in the node's pool; tracking them, new ones start above"
            );
        }
        info!(chain = %cfg.chain, %address, nonce = first, "tx manager started");
        let inner = Arc::new(Inner {
            slots: Semaphore::new(cfg.max_in_flight.max(1)),
            cfg,
            client,
            guard,
            shutdown,
            address,
            seq: Sequencer::new(first),
            counters: Counters::default(),
            balance: Mutex::new(None),
            low_balance: AtomicBool::new(false),
            balance_now: Arc::new(Notify::new()),
            mined: tokio::sync::watch::Sender::new(latest),
            pending_now: Arc::new(Notify::new()),
            last_offer: Mutex::new(None),
            in_flight: Mutex::new(std::collections::BTreeMap::new()),
            flight_ids: AtomicU64::new(0),
            wedged: Mutex::new(None),
        });
        inner.check_balance().await;
        tokio::spawn(tracker::balance_loop(
            Arc::downgrade(&inner),
            inner.shutdown.clone(),
            Arc::clone(&inner.balance_now),
        ));
        tokio::spawn(tracker::mined_nonce_loop(
            Arc::downgrade(&inner),
            inner.shutdown.clone(),
            Arc::clone(&inner.pending_now),
            inner.cfg.receipt_poll,
        ));
        for leftover in leftovers {
            if leftover.to == Some(inner.cfg.bridge) {
                inner.adopt(leftover);
            } else {
                // Not a vote (the same key used by hand, say): stepped over, left alone.
                warn!(chain = %inner.cfg.chain, nonce = leftover.nonce, tx = %leftover.signed.hash,
                    "a transaction of this account not to the bridge is in the node's pool; new ones start above it");
            }
        }
        Ok(TxManager { inner })
    }

    /// The operator's address on this chain.
    pub fn address(&self) -> Address {
        self.inner.address
    }

    /// The guard this manager signs with.
    pub fn guard(&self) -> &Arc<GuardedSigner> {
        &self.inner.guard
    }

    /// The chain's metric handles this manager counts into ([`TxManagerConfig::metrics`]).
    pub fn metrics(&self) -> &Arc<ChainMetrics> {
        &self.inner.cfg.metrics
    }

    /// Brings the numbering back to the chain before a vote that replaces one a reorg orphaned.
    /// When the node's pending count is below what this manager broadcast and nothing it tracks
    /// sits at or above that count, numbering restarts there, as the poller's convergence check
    /// would a moment later. Without it, the replacement vote could take the next nonce and
    /// leave a hole below it, which the poller fills with a second copy of the same vote.
    pub async fn realign(&self) -> Result<(), TxError> {
        let inner = &self.inner;
        // The reorg may be undone by the time the poller next reads the mined count: publish
        // (and count) the dip seen here, so the metric and the trackers see it once.
        let latest = inner
            .client
            .transaction_count(inner.address, BlockTag::Latest)
            .await
            .map_err(inner.chain_err("re-reading the nonce"))?;
        if latest < *inner.mined.borrow() {
            let prev = inner.mined.send_replace(latest);
            converge::went_down(inner, prev, latest);
        }
        let sent = inner.seq.sent();
        let pending = inner
            .client
            .transaction_count(inner.address, BlockTag::Pending)
            .await
            .map_err(inner.chain_err("re-reading the nonce"))?;
        // Counts read after a failover may be another deployment's: not a reason to renumber.
        if pending < sent && inner.client.sends_open() && inner.in_flight_from(pending).is_empty() {
            inner.cfg.metrics.nonce_repairs_rebase.inc();
            warn!(chain = %inner.cfg.chain, address = %inner.address, nonce = pending, was = sent,
                "transactions of this manager were reorganised away; new transactions start at the chain's nonce");
            inner.seq.rebase(pending);
        }
        Ok(())
    }

    /// Sends `calldata` to the bridge and resolves when it is mined, when its estimate
    /// reverts, or when it cannot be sent. Safe to call from many tasks at once.
    pub async fn submit(&self, calldata: Bytes, label: String) -> Result<TxOutcome, TxError> {
        let inner = Arc::clone(&self.inner);
        let chain = inner.cfg.chain.clone();
        let task_label = label.clone();
        let handle = tokio::spawn(async move {
            let result = inner.run(calldata, label).await;
            match &result {
                Ok(TxOutcome::WouldRevert { .. }) => inc(&inner.counters.would_revert),
                Ok(_) => {}
                Err(_) => inc(&inner.counters.failed),
            }
            result
        });
        handle.await.map_err(|e| TxError::Task {
            chain,
            label: task_label,
            message: e.to_string(),
        })?
    }

    pub fn stats(&self) -> TxStats {
        let c = &self.inner.counters;
        let m = &self.inner.cfg.metrics;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TxStats {
            sent: m.txs_sent.get(),
            mined: m.txs_mined.get(),
            reverted: get(&c.reverted),
            replaced: m.txs_replaced.get(),
            resent: get(&c.resent),
            failed: get(&c.failed),
            would_revert: get(&c.would_revert),
            pending: get(&c.pending),
            resyncs: get(&c.resyncs),
            nonce_went_down: m.nonce_went_down.get(),
            repair_resent: m.nonce_repairs_resend.get(),
            gap_fills: m.nonce_repairs_gap_fill.get(),
            rebases: m.nonce_repairs_rebase.get(),
            leftovers: get(&c.leftovers),
            wedged: self.inner.wedged(),
            last_balance: *self.inner.balance.lock().unwrap_or_else(|e| e.into_inner()),
            low_balance: self.inner.low_balance.load(Ordering::Relaxed),
            nonce: self.inner.seq.next(),
        }
    }
}

impl Inner {
    pub(crate) fn registry(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<(u64, u64), tracker::InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn in_flight_count(&self) -> usize {
        self.registry().len()
    }

    /// The tracked transactions at or above `nonce`, lowest first.
    pub(crate) fn in_flight_from(&self, nonce: u64) -> Vec<(u64, tracker::InFlight)> {
        self.registry()
            .range((nonce, 0)..)
            .map(|((n, _), f)| (*n, f.clone()))
            .collect()
    }

    pub(crate) fn wedged(&self) -> Option<Wedged> {
        *self.wedged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks a vote an earlier run left in the pool until it is mined or replaced: bumped and
    /// re-sent like this run's own (the guard re-signs the same vote).
    fn adopt(self: &Arc<Self>, leftover: leftovers::Leftover) {
        inc(&self.counters.leftovers);
        inc(&self.counters.pending);
        self.pending_now.notify_one();
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let leftovers::Leftover {
                nonce, job, signed, ..
            } = leftover;
            info!(chain = %inner.cfg.chain, nonce, tx = %signed.hash, "tracking an earlier run's vote");
            let tracked = tracker::track(&inner, &job, nonce, signed).await;
            inner.counters.pending.fetch_sub(1, Ordering::Relaxed);
            match tracked {
                Ok(tracker::Tracked::Done(outcome)) => {
                    debug!(chain = %inner.cfg.chain, nonce, ?outcome, "an earlier run's transaction was mined")
                }
                Ok(tracker::Tracked::NonceTaken) => {
                    debug!(chain = %inner.cfg.chain, nonce, "an earlier run's transaction was replaced")
                }
                Err(e) => {
                    warn!(chain = %inner.cfg.chain, nonce, error = %e, "stopped tracking an earlier run's transaction")
                }
            }
        });
    }

    fn chain_err(&self, what: &'static str) -> impl FnOnce(ChainError) -> TxError + use<> {
        let chain = self.cfg.chain.clone();
        move |source| TxError::Chain {
            chain,
            what,
            source,
        }
    }

    fn shutdown_err(&self) -> TxError {
        TxError::Shutdown {
            chain: self.cfg.chain.clone(),
        }
    }

    async fn run(self: &Arc<Self>, calldata: Bytes, label: String) -> Result<TxOutcome, TxError> {
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.map_err(|_| self.shutdown_err())?,
            _ = self.shutdown.cancelled() => return Err(self.shutdown_err()),
        };
        let mut restarts = 0;
        loop {
            let estimate = TransactionRequest::default()
                .with_from(self.address)
                .with_to(self.cfg.bridge)
                .with_input(calldata.clone());
            let gas = match self.client.estimate_gas(estimate).await {
                Ok(gas) => gas
                    .saturating_add(gas.saturating_mul(GAS_MARGIN_PERCENT) / 100)
                    .saturating_add(GAS_EXTRA),
                Err(e) => match e.revert_data() {
                    Some(data) => {
                        debug!(chain = %self.cfg.chain, %label, revert = %data, "estimate reverted; not sending");
                        return Ok(TxOutcome::WouldRevert {
                            revert: data.clone(),
                        });
                    }
                    None => return Err(self.chain_err("estimating gas")(e)),
                },
            };
            let fees = self.initial_fees().await?;
            let job = Job {
                label: label.clone(),
                calldata: calldata.clone(),
                gas,
            };
            let (nonce, first) = self.broadcast(&job, fees).await?;
            self.cfg.metrics.txs_sent.inc();
            inc(&self.counters.pending);
            self.pending_now.notify_one();
            let tracked = tracker::track(self, &job, nonce, first).await;
            self.counters.pending.fetch_sub(1, Ordering::Relaxed);
            match tracked? {
                tracker::Tracked::Done(outcome) => return Ok(outcome),
                tracker::Tracked::NonceTaken if restarts < MAX_RESTARTS => {
                    restarts += 1;
                    warn!(chain = %self.cfg.chain, label = %job.label, nonce,
                        "nonce taken by a transaction this manager did not send; starting over");
                }
                tracker::Tracked::NonceTaken => {
                    return Err(TxError::NonceChurn {
                        chain: self.cfg.chain.clone(),
                        label: job.label,
                        attempts: restarts,
                    });
                }
            }
        }
    }

    /// The first offer for a new transaction, read at most once per [`BASE_FEE_FOR`].
    async fn initial_fees(&self) -> Result<Fees, TxError> {
        let cached = *self.last_offer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, fees)) = cached
            && at.elapsed() < BASE_FEE_FOR
        {
            return Ok(fees);
        }
        let fees = Fees::initial(&self.cfg.fees, &self.client)
            .await
            .map_err(self.chain_err("reading fees"))?;
        *self.last_offer.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), fees));
        Ok(fees)
    }

    /// Leases a nonce, signs, waits for the turn and sends. Returns the nonce and the tx.
    ///
    /// At its turn the job owns the account's next nonce: a node's "underpriced" answer then
    /// means a transaction this manager does not track (an earlier run's) holds the nonce in
    /// the pool, so the job outbids it with bumped fees (at most `max_bumps` times, capped);
    /// "nonce too low/high" resynchronises the sequencer with the chain's pending count.
    async fn broadcast(&self, job: &Job, fees: Fees) -> Result<(u64, SignedTx), TxError> {
        let mut resyncs = 0;
        'lease: loop {
            let lease = self.seq.acquire();
            let nonce = lease.nonce();
            // On error the lease drops here: later leases are voided and this nonce reused.
            let mut signed = self.sign(job, nonce, fees).await?;
            match lease.wait_turn(&self.shutdown).await {
                Turn::Go => {}
                Turn::Lost => {
                    debug!(chain = %self.cfg.chain, label = %job.label, nonce, "nonce lease voided below; re-signing");
                    continue;
                }
                Turn::Shutdown => return Err(self.shutdown_err()),
            }
            let mut outbids = 0;
            loop {
                self.sends_opened().await?;
                let err = match self.client.send_raw_transaction(&signed.raw).await {
                    Ok(_) => {
                        lease.sent();
                        info!(chain = %self.cfg.chain, label = %job.label, nonce, tx = %signed.hash, "sent");
                        return Ok((nonce, signed));
                    }
                    // A failover closed the gate (before or within this call): the same bytes
                    // go once the bridge is verified again; the turn is kept meanwhile.
                    Err(ChainError::SendsHeld { .. }) => continue,
                    Err(e) => e,
                };
                let rejection = SendRejection::of(&err);
                match rejection {
                    SendRejection::AlreadyKnown => {
                        lease.sent();
                        return Ok((nonce, signed));
                    }
                    _ if err.is_transient() => {
                        // It may have reached a node: count it as sent; the tracker re-sends it.
                        warn!(chain = %self.cfg.chain, label = %job.label, nonce, error = %err, "send failed on every endpoint; the tracker will re-send");
                        lease.sent();
                        return Ok((nonce, signed));
                    }
                    SendRejection::NonceTooLow if self.is_known(signed.hash).await => {
                        // An earlier attempt of this send got through (failover re-send).
                        lease.sent();
                        return Ok((nonce, signed));
                    }
                    SendRejection::Underpriced => {
                        let bumped = (outbids < self.cfg.fees.max_bumps)
                            .then(|| signed.fees.bumped(&self.cfg.fees))
                            .flatten();
                        let Some(bumped) = bumped else {
                            lease.fail();
                            return Err(self.rejected(job, err));
                        };
                        outbids += 1;
                        warn!(chain = %self.cfg.chain, label = %job.label, nonce, error = %err,
                            "a transaction this manager does not track holds the nonce; outbidding it");
                        signed = self.sign(job, nonce, bumped).await?;
                    }
                    SendRejection::NonceTooLow | SendRejection::NonceTooHigh => {
                        resyncs += 1;
                        if resyncs > MAX_RESYNCS {
                            return Err(TxError::NonceChurn {
                                chain: self.cfg.chain.clone(),
                                label: job.label.clone(),
                                attempts: resyncs - 1,
                            });
                        }
                        let chain_next = self
                            .client
                            .transaction_count(self.address, BlockTag::Pending)
                            .await
                            .map_err(self.chain_err("re-reading the nonce"))?;
                        warn!(chain = %self.cfg.chain, label = %job.label, nonce, chain_next, error = %err, "node disagrees about the nonce; resynchronising");
                        inc(&self.counters.resyncs);
                        lease.resync(chain_next);
                        continue 'lease;
                    }
                    SendRejection::Other => {
                        lease.fail();
                        return Err(self.rejected(job, err));
                    }
                }
            }
        }
    }

    /// Waits until the chain's sends are open: after an RPC failover, until the bridge check
    /// passed on the endpoint now answering (`chain/send_gate.rs`); nothing waits otherwise.
    async fn sends_opened(&self) -> Result<(), TxError> {
        if self.client.sends_open() {
            return Ok(());
        }
        info!(chain = %self.cfg.chain, "holding broadcasts until the bridge is verified again (RPC failover)");
        tokio::select! {
            _ = self.client.sends_opened() => Ok(()),
            _ = self.shutdown.cancelled() => Err(self.shutdown_err()),
        }
    }

    fn rejected(&self, job: &Job, source: ChainError) -> TxError {
        TxError::Rejected {
            chain: self.cfg.chain.clone(),
            label: job.label.clone(),
            source,
        }
    }

    /// Whether a node knows the transaction `hash` (pending or mined).
    async fn is_known(&self, hash: B256) -> bool {
        matches!(self.client.transaction_block(hash).await, Ok(Some(_)))
    }

    /// Builds and signs the transaction of `job` at `nonce` through the guard.
    pub(crate) async fn sign(
        &self,
        job: &Job,
        nonce: u64,
        fees: Fees,
    ) -> Result<SignedTx, TxError> {
        let mut tx = TxFields {
            chain_id: self.client.chain_id(),
            nonce,
            gas_limit: job.gas,
            fees,
            to: self.cfg.bridge,
            value: U256::ZERO,
            input: job.calldata.clone(),
        }
        .unsigned();
        let signature = self
            .guard
            .sign_transaction(tx.signable())
            .await
            .map_err(|e| TxError::from_guard(&self.cfg.chain, &job.label, e))?;
        let envelope = tx.into_signed(signature);
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718().into(),
            fees,
        })
    }

    /// Reads the balance; sets or clears the low-balance flag.
    pub(crate) async fn check_balance(&self) {
        match self.client.balance(self.address).await {
            Ok(balance) => {
                *self.balance.lock().unwrap_or_else(|e| e.into_inner()) = Some(balance);
                let low = balance < self.cfg.min_balance;
                self.low_balance.store(low, Ordering::Relaxed);
                if low {
                    warn!(
                        alarm = "low_balance",
                        chain = %self.cfg.chain,
                        address = %self.address,
                        balance = %balance,
                        min_balance = %self.cfg.min_balance,
                        "operator balance below min_balance: top up this account, or votes will stop"
                    );
                }
            }
            Err(e) => {
                warn!(chain = %self.cfg.chain, error = %e, "cannot read the operator balance");
            }
        }
    }
}
