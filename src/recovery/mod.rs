//! Recovery of one direction, the talk's check, run at start and every interval.
//!
//! ```text
//! requestNonce (source) == lowerHandleNonce (destination)?  yes ─> nothing pending
//! the oldest pending nonce (lowerHandleNonce) was already requested and pending at the
//! previous check, and still is?                              no  ─> progress, or new requests
//!                                                                   only: wait
//! (stalled, or first check after start: then only requests this agent has not voted or seen
//!  executed, on nonces that are its turn)
//!   rescan source logs from the destination's recoveryBlockNumber to the last block the
//!   watcher scanned (later ones are the watcher's), in windows; every request with
//!   nonce ≥ lowerHandleNonce goes back to the planner (planned by the caller, in parallel),
//!   which sends a vote only if it is not executed and this operator has not voted it yet
//! ```
//!
//! The watcher's cursor makes the normal path cheap; recovery catches what it cannot see:
//! votes lost after the cursor moved (a dropped transaction, a crash between recording a
//! request and voting on it), and an operator set that moved on without this agent.

use crate::chain::{ChainClient, ChainError};
use crate::contracts::Bridge;
use crate::dialect::Dialect;
use crate::direction::Direction;
use crate::seats::Seats;
use crate::store::{RequestState, Store, StoreError};
use crate::votes::Request;
use crate::votes::decode_request;
use alloy::primitives::Address;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Why a check stopped; the next one starts over.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    pub direction: Direction,
    pub source_bridge: Address,
    pub dest_bridge: Address,
    /// The destination bridge's dialect.
    pub dialect: Dialect,
    pub confirmations: u64,
}

/// What one check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub request_nonce: u64,
    pub lower_handle_nonce: u64,
    /// Destination `upperHandleNonce` (the highest executed nonce): `bridge_upper_handle_nonce`.
    pub upper_handle_nonce: u64,
    /// Whether it rescanned (handle progress had stalled, or it was the first check).
    pub rescanned: bool,
    /// Requests handed back to the planner.
    pub refed: Vec<u64>,
    /// Request logs in the rescan that did not decode (skipped, each with a warning); the
    /// caller adds them to `bridge_malformed_logs_total`.
    pub malformed: u64,
}

pub struct Recovery {
    cfg: RecoveryConfig,
    source: ChainClient,
    dest: ChainClient,
    /// Where the watcher got to and what this agent voted or saw executed.
    store: Arc<Store>,
    /// The turns the planner follows (a first check leaves another seat's turn alone).
    seats: Arc<Seats>,
    /// `(requestNonce, lowerHandleNonce)` at the previous check.
    last: Mutex<Option<(u64, u64)>>,
}

impl Recovery {
    pub fn new(
        cfg: RecoveryConfig,
        source: ChainClient,
        dest: ChainClient,
        store: Arc<Store>,
        seats: Arc<Seats>,
    ) -> Self {
        Self {
            cfg,
            source,
            dest,
            store,
            seats,
            last: Mutex::new(None),
        }
    }

    /// One check; returns the stalled requests to hand back to the planner (which votes only
    /// if needed). The caller plans them, so a long list does not hold up its loop.
    pub async fn check(&self) -> Result<(RecoveryReport, Vec<Request>), RecoveryError> {
        let (src, dst) = (self.cfg.source_bridge, self.cfg.dest_bridge);
        let request_nonce = self
            .source
            .run("Bridge.requestNonce", move |p| async move {
                Bridge::new(src, p).requestNonce().call().await
            })
            .await?;
        let lower = self
            .dest
            .run("Bridge.lowerHandleNonce", move |p| async move {
                Bridge::new(dst, p).lowerHandleNonce().call().await
            })
            .await?;
        let upper = self
            .dest
            .run("Bridge.upperHandleNonce", move |p| async move {
                Bridge::new(dst, p).upperHandleNonce().call().await
            })
            .await?;
        let mut report = RecoveryReport {
            request_nonce,
            lower_handle_nonce: lower,
            upper_handle_nonce: upper,
            ..Default::default()
        };
        let verdict = {
            let mut last = self.last.lock().await;
            let prev = last.replace((request_nonce, lower));
            judge(prev, request_nonce, lower)
        };
        let first = match verdict {
            Verdict::Nothing => return Ok((report, Vec::new())),
            Verdict::First => true,
            Verdict::Stalled => false,
        };
        report.rescanned = true;
        let from = self
            .dest
            .run("Bridge.recoveryBlockNumber", move |p| async move {
                Bridge::new(dst, p).recoveryBlockNumber().call().await
            })
            .await?;
        let head = self.source.block_number().await?;
        // Blocks from the watcher's cursor on are the watcher's to plan (it is catching up, or
        // about to): rescanning them too would vote the same requests twice over.
        let Some(scanned) = self.scanned_until()? else {
            return Ok((report, Vec::new()));
        };
        let to = head.saturating_sub(self.cfg.confirmations).min(scanned);
        tracing::info!(
            direction = %self.cfg.direction, request_nonce, lower_handle_nonce = lower, from, to,
            "handle progress stalled: rescanning pending requests"
        );
        let mut refeed = Vec::new();
        let filter = Filter::new().address(src).events([
            Bridge::RequestValueTransfer::SIGNATURE,
            Bridge::RequestValueTransferEncoded::SIGNATURE,
        ]);
        let mut logs = self.source.log_range(&filter, from, to);
        while let Some(batch) = logs.next_batch().await {
            for log in batch?.logs {
                let req = match decode_request(&log) {
                    Ok(req) => req,
                    Err(e) => {
                        // Never silently: a request nobody can vote on holds lowerHandleNonce
                        // back for good, and this is where the operator learns which one.
                        report.malformed += 1;
                        tracing::warn!(direction = %self.cfg.direction, error = %e,
                            "recovery rescan skips a request log that does not decode; if it is the stuck nonce, the bridge emitted something no agent can vote on");
                        continue;
                    }
                };
                if req.nonce < lower {
                    continue;
                }
                // The check at start looks for what an earlier run left undone, next to a
                // watcher catching up: it leaves alone what this agent already voted or saw
                // executed, and nonces that are another seat's turn (the watcher's standby
                // covers them). A stalled check later takes everything.
                if first && (self.done_before(req.nonce)? || self.seats.stands_by(req.nonce).await)
                {
                    continue;
                }
                // The planner checks execution itself; asking here too cost one RPC per request.
                report.refed.push(req.nonce);
                refeed.push(req);
            }
        }
        Ok((report, refeed))
    }

    /// The last source block the watcher has scanned (and planned or held every request of),
    /// or `None` before its first scan.
    fn scanned_until(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .store
            .cursor(self.cfg.direction)?
            .and_then(|c| c.last.map(|(block, _)| block)))
    }

    /// Whether the store says this agent voted `nonce`, or saw it executed.
    fn done_before(&self, nonce: u64) -> Result<bool, StoreError> {
        Ok(self
            .store
            .request(self.cfg.direction, nonce)?
            .is_some_and(|r| r.state != RequestState::Seen))
    }
}

/// What a check does, from the previous check's `(requestNonce, lowerHandleNonce)` and now's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Nothing pending, or handle progress since the previous check, or only requests that
    /// arrived since it: the seats whose turn it is are (still) on them.
    Nothing,
    /// The first check since start, with requests pending.
    First,
    /// The oldest pending nonce was already requested, and pending, at the previous check.
    Stalled,
}

fn judge(prev: Option<(u64, u64)>, request_nonce: u64, lower: u64) -> Verdict {
    if request_nonce <= lower {
        return Verdict::Nothing;
    }
    match prev {
        None => Verdict::First,
        // `lower < prev_request`: the nonce at `lower` existed then. A request that arrived
        // between two checks is not a stall (counting it as one made standby seats vote past
        // the threshold).
        Some((prev_request, prev_lower)) if prev_lower == lower && lower < prev_request => {
            Verdict::Stalled
        }
        Some(_) => Verdict::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::{Verdict, judge};

    #[test]
    fn a_stall_is_the_oldest_pending_nonce_pending_since_the_previous_check() {
        use Verdict::*;
        // (previous (requestNonce, lower), requestNonce now, lower now, verdict)
        let cases = [
            (None, 5, 5, Nothing),
            (None, 6, 5, First),
            (Some((5, 5)), 6, 5, Nothing), // nonce 5 arrived since: not a stall
            (Some((5, 5)), 9, 5, Nothing), // several arrived since: not a stall
            (Some((6, 5)), 6, 5, Stalled), // 5 was pending then and still is
            (Some((6, 5)), 8, 5, Stalled), // ... new requests do not hide it
            (Some((6, 5)), 8, 6, Nothing), // progress
            (Some((8, 6)), 8, 8, Nothing), // all done
            (Some((8, 7)), 8, 6, Nothing), // lower went back (destination reorg): judged next time
            (Some((8, 6)), 8, 6, Stalled),
        ];
        for (prev, rn, lower, want) in cases {
            assert_eq!(judge(prev, rn, lower), want, "{prev:?} → ({rn}, {lower})");
        }
    }
}
