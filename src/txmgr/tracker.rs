//! After the first broadcast: receipts, re-sends, fee-bump replacements; and the balance task.
//!
//! One poller per manager reads the account's mined nonce every `receipt_poll` while anything
//! is pending, and every tracker watches that one value: receipts are fetched only once the
//! mined nonce passes the tracker's own, so a pending transaction costs no call per poll
//! (before, each one polled its receipts and the nonce itself, which under load was most of
//! what the agent asked of its nodes). Whichever hash sent for the nonce has a receipt is the
//! outcome. A transaction not mined `bump_after` after its last send is replaced with fees
//! raised by `bump_percent` (same nonce, same calldata, re-signed: the guard's journal sees the
//! same vote), at most `max_bumps` times and never above the cap; after that it is re-sent as
//! is. If the account's mined nonce passes ours while no hash of ours has a receipt, another
//! transaction took the nonce and the job starts over.
//!
//! Each tracker registers its nonce and latest signed bytes with the manager while it runs, so
//! the poller's convergence check (`converge.rs`) can re-send what a node lost or fill a hole
//! below it with a copy of its vote.

use super::converge::Converger;
use super::{Inner, Job, SignedTx, TxError, TxOutcome, inc};
use crate::chain::BlockTag;
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::error::SendRejection;

/// Consecutive polls that must see the nonce used by a stranger before the job starts over
/// (a receipt can lag the nonce on a load-balanced endpoint).
const TAKEN_POLLS: u32 = 3;
/// How often an idle manager still compares its nonce with the chain's.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// A transaction being tracked: what the convergence check needs to re-send it, or to fill a
/// hole below it with a copy of its vote.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    pub job: Job,
    pub last: SignedTx,
}

/// Removes a tracker's registry entry however the tracker ends.
struct Registered<'a> {
    inner: &'a Inner,
    key: (u64, u64),
}

impl Registered<'_> {
    fn update(&self, last: &SignedTx) {
        if let Some(e) = self.inner.registry().get_mut(&self.key) {
            e.last = last.clone();
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.inner.registry().remove(&self.key);
    }
}

pub(crate) enum Tracked {
    Done(TxOutcome),
    /// The nonce was used by a transaction this job never sent.
    NonceTaken,
}

pub(crate) async fn track(
    inner: &Arc<Inner>,
    job: &Job,
    nonce: u64,
    first: SignedTx,
) -> Result<Tracked, TxError> {
    let policy = inner.cfg.fees;
    let mut hashes: Vec<B256> = vec![first.hash];
    let mut last = first;
    let mut last_sent = Instant::now();
    let mut bumps = 0u32;
    let mut taken_polls = 0u32;
    let mut mined_rx = inner.mined.subscribe();
    let key = (nonce, inner.flight_ids.fetch_add(1, Ordering::Relaxed));
    inner.registry().insert(
        key,
        InFlight {
            job: job.clone(),
            last: last.clone(),
        },
    );
    let registered = Registered { inner, key };
    loop {
        tokio::select! {
            changed = mined_rx.changed() => if changed.is_err() { return Err(inner.shutdown_err()) },
            _ = tokio::time::sleep_until((last_sent + policy.bump_after).into()) => {}
            _ = inner.shutdown.cancelled() => return Err(inner.shutdown_err()),
        }
        let mined = *mined_rx.borrow_and_update();
        if mined > nonce {
            if let Some(receipt) = find_receipt(inner, &hashes).await {
                return Ok(Tracked::Done(outcome(inner, job, receipt).await));
            }
            taken_polls += 1;
            if taken_polls >= TAKEN_POLLS {
                return Ok(Tracked::NonceTaken);
            }
            continue;
        }
        taken_polls = 0;
        if last_sent.elapsed() < policy.bump_after {
            continue;
        }
        last_sent = Instant::now();
        if !inner.client.sends_open() {
            // After a failover, nothing goes out before the bridge is verified again.
            debug!(chain = %inner.cfg.chain, label = %job.label, nonce, "re-send held until the bridge is verified");
            continue;
        }
        let bumped = (bumps < policy.max_bumps)
            .then(|| last.fees.bumped(&policy))
            .flatten();
        let Some(fees) = bumped else {
            // No room for a replacement: make sure the node still has the last one.
            match inner.client.send_raw_transaction(&last.raw).await {
                Ok(_) => inc(&inner.counters.resent),
                Err(e) => {
                    debug!(chain = %inner.cfg.chain, label = %job.label, nonce, error = %e, "re-send answered")
                }
            }
            continue;
        };
        bumps += 1;
        let replacement = inner.sign(job, nonce, fees).await?;
        match inner.client.send_raw_transaction(&replacement.raw).await {
            Ok(_) => {
                inner.cfg.metrics.txs_replaced.inc();
                info!(chain = %inner.cfg.chain, label = %job.label, nonce, bump = bumps,
                    old = %last.hash, new = %replacement.hash, max_fee_per_gas = fees.max_per_gas(),
                    "not mined in time; replaced with higher fees");
                hashes.push(replacement.hash);
                last = replacement;
                registered.update(&last);
            }
            Err(e) => match SendRejection::of(&e) {
                SendRejection::AlreadyKnown => {
                    hashes.push(replacement.hash);
                    last = replacement;
                    registered.update(&last);
                }
                SendRejection::Underpriced => {
                    // Raise from here next time, and keep tracking what is in the pool.
                    warn!(chain = %inner.cfg.chain, label = %job.label, nonce, error = %e, "replacement underpriced");
                    last.fees = fees;
                }
                _ => {
                    // "nonce too low": something was mined at this nonce; the receipt polls tell
                    // whether it was ours. Transport errors: try again at the next bump.
                    if e.is_transient() {
                        hashes.push(replacement.hash);
                        last = replacement;
                        registered.update(&last);
                    }
                    debug!(chain = %inner.cfg.chain, label = %job.label, nonce, error = %e, "replacement not taken");
                }
            },
        }
    }
}

async fn find_receipt(inner: &Inner, hashes: &[B256]) -> Option<TransactionReceipt> {
    for hash in hashes.iter().rev() {
        match inner.client.transaction_receipt(*hash).await {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                debug!(chain = %inner.cfg.chain, tx = %hash, error = %e, "receipt poll failed")
            }
        }
    }
    None
}

async fn outcome(inner: &Inner, job: &Job, receipt: TransactionReceipt) -> TxOutcome {
    inner.balance_now.notify_one();
    let tx_hash = receipt.transaction_hash;
    let block = receipt.block_number.unwrap_or_default();
    if receipt.status() {
        inner.cfg.metrics.txs_mined.inc();
        info!(chain = %inner.cfg.chain, label = %job.label, tx = %tx_hash, block, gas_used = receipt.gas_used, "mined");
        return TxOutcome::Mined {
            tx_hash,
            block,
            gas_used: receipt.gas_used,
        };
    }
    inc(&inner.counters.reverted);
    let revert = replay(inner, job, block).await;
    // Not a warning by itself: a vote mined just after another executed the transfer reverts
    // with AlreadyExecuted, which is fine. The caller decides and raises the alarm otherwise.
    debug!(chain = %inner.cfg.chain, label = %job.label, tx = %tx_hash, block,
        revert = %revert.as_ref().map(|r| r.to_string()).unwrap_or_else(|| "unknown".into()),
        "mined but reverted");
    TxOutcome::Reverted { tx_hash, revert }
}

/// The revert data of the call replayed on the state at the end of `block` (which includes
/// whatever made it revert, e.g. another operator's executing vote earlier in that block).
async fn replay(inner: &Inner, job: &Job, block: u64) -> Option<Bytes> {
    let call = TransactionRequest::default()
        .with_from(inner.address)
        .with_to(inner.cfg.bridge)
        .with_input(job.calldata.clone())
        .with_gas_limit(job.gas);
    match inner.client.call_at(call, BlockId::number(block)).await {
        Err(e) => e.revert_data().cloned(),
        Ok(_) => None,
    }
}

/// Reads the account's mined nonce every `receipt_poll` while a transaction is pending,
/// publishes it to the trackers and runs the convergence check (`converge.rs`); idle otherwise.
/// Ends on shutdown or when the manager is gone.
pub(crate) async fn mined_nonce_loop(
    inner: Weak<Inner>,
    shutdown: CancellationToken,
    work: Arc<Notify>,
    poll: Duration,
) {
    let mut converger = Converger::default();
    loop {
        let idle = match inner.upgrade() {
            None => true,
            Some(i) => {
                let idle = i.counters.pending.load(Ordering::Relaxed) == 0;
                if idle {
                    converger.clear_stall(&i);
                }
                idle
            }
        };
        if idle {
            // Also wakes now and then: a reorg that orphaned this account's last transactions
            // is then seen (and numbering moved back) before the next vote, not after it.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = work.notified() => {}
                _ = tokio::time::sleep(IDLE_CHECK) => {}
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        match inner
            .client
            .transaction_count(inner.address, BlockTag::Latest)
            .await
        {
            // Sent even when unchanged: each poll is a tick for the trackers' taken-nonce count.
            Ok(mined) => {
                let prev = inner.mined.send_replace(mined);
                converger.check(&inner, prev, mined).await;
            }
            Err(e) => debug!(chain = %inner.cfg.chain, error = %e, "nonce poll failed"),
        }
    }
}

/// Checks the balance every [`super::BALANCE_EVERY`] and when poked, at most once per
/// [`super::BALANCE_GAP`] (a burst of mined votes costs one read); ends on shutdown or when the
/// manager is gone.
pub(crate) async fn balance_loop(
    inner: Weak<Inner>,
    shutdown: CancellationToken,
    now: Arc<Notify>,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(super::BALANCE_EVERY) => {}
            _ = now.notified() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.check_balance().await;
        drop(inner);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(super::BALANCE_GAP) => {}
        }
    }
}
