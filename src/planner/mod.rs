//! The vote planner of one direction: from a confirmed request to this operator's vote on the
//! destination bridge, sent only when it is still needed.
//!
//! ```text
//! Request ─> recorded unexecutable (store)?                  ─> Unexecutable, nothing sent
//!         ─> counterpart token (source bridge's registry, as Kaia's node reads it; cached) ─> handle calldata
//!         ─> never planned before (stored as seen, no vote key)?  record the key, skip the
//!            pre-check: nothing of ours can be on chain, and the estimate answers "executed"
//!         ─> else pre-check on the destination:
//!              executed (nonce < lowerHandleNonce or closedValueTransferVotes)
//!                                                          ─> Executed, nothing sent
//!              own vote recorded (store) and still standing ─> AlreadyVoted, nothing sent
//!                (its tx still canonical and successful, sent by the key holding the seat,
//!                 operator set unchanged: see `own_votes.rs`)
//!              no voteOf (Kaia) and the auditor still reads the blocks mined since the last
//!                run (a vote mined as the agent stopped is recorded there) ─> NotYet
//!              voteOf(0, nonce, me) == keccak(calldata)   ─> AlreadyVoted (our dialect only)
//!              voteOf(0, nonce, me) is another key        ─> alarm, then vote (replaces it)
//!         ─> tx manager ─> guard ─> signer ─> mined (recorded as own vote) / reverted:
//!              late (AlreadyExecuted, "removed vote", "closed vote") ─> Late, quiet
//!              not an operator ─> KeySwitched (re-sent with the new key) or NotSeated
//!              refused payout / mint failed ─> one alarm, recorded unexecutable
//!              anything else ─> alarm with the reason as text (`reverts.rs`)
//! A nonce found executed for the first time is checked against handledRequestTx(our request
//! tx): not handled means another request closed it (a reorg deeper than the confirmations),
//! and ours can never execute (one warning, recorded unexecutable).
//! ```

mod own_votes;
mod reverts;
mod standby;
mod tokens;

use crate::chain::{ChainClient, ChainError};
use crate::contracts::{Bridge, TokenType, VOTE_TYPE_VALUE_TRANSFER};
use crate::dialect::Dialect;
use crate::direction::Direction;
pub use crate::seats::{Seats, SilentSeats};
use crate::store::{OwnVotesSynced, RequestState, Store, StoreError, UnexecutableReason};
use crate::txmgr::ActiveKey;
use crate::txmgr::{TxError, TxOutcome};
use crate::votes::{Request, handle_calldata_for};
use alloy::primitives::{Address, B256, Bytes, keccak256};
pub use reverts::{RevertKind, classify as classify_revert};
pub use standby::Standby;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
pub use tokens::CounterpartTokens;

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// The destination had already executed it; no vote sent.
    Executed,
    /// This operator's identical vote is already on chain (read with `voteOf`, or recorded
    /// when it was mined and still standing); no vote sent.
    AlreadyVoted,
    /// The vote was mined.
    Voted { tx_hash: B256 },
    /// The vote arrived after execution (reverted or refused by gas estimation): fine.
    Late,
    /// Another task is planning this request right now (watcher and recovery met); skipped.
    InFlight,
    /// The request can never execute (recorded in the store); no vote sent.
    Unexecutable { reason: UnexecutableReason },
    /// Planned before, on a bridge without `voteOf`, with no own vote recorded, while the
    /// auditor is still reading the blocks mined since the last run (a vote mined as the agent
    /// stopped is found there): not voted now; recovery hands it back later.
    NotYet,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{direction} nonce {nonce}: token {token} is not registered in the source bridge (registeredTokens is zero); the vote waits for the owner to register it"
    )]
    UnknownToken {
        direction: Direction,
        nonce: u64,
        token: Address,
    },
    #[error("{direction} nonce {nonce}: vote reverted on chain (tx {tx_hash:?}): {reason}")]
    VoteReverted {
        direction: Direction,
        nonce: u64,
        tx_hash: Option<B256>,
        reason: String,
    },
    #[error("{direction} nonce {nonce}: sent by {old}, whose seat moved to a new key meanwhile")]
    KeySwitched {
        direction: Direction,
        nonce: u64,
        old: Address,
    },
    #[error(
        "{direction} nonce {nonce}: {operator} holds no seat on the destination bridge \
         (\"not an operator\"); this agent votes nothing there until the key is registered"
    )]
    NotSeated {
        direction: Direction,
        nonce: u64,
        operator: Address,
    },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct PlannerStats {
    pub voted: AtomicU64,
    pub skipped_executed: AtomicU64,
    pub skipped_voted: AtomicU64,
    pub late: AtomicU64,
    pub failed: AtomicU64,
    /// Votes by this operator's key that this agent never built, replaced by the right one.
    pub replaced_foreign: AtomicU64,
    /// Plans that found the request recorded (or newly found) unexecutable.
    pub unexecutable: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct PlannerConfig {
    pub direction: Direction,
    pub source_bridge: Address,
    pub dest_bridge: Address,
    /// What the destination bridge can tell and how it answers (see [`Dialect`]).
    pub dialect: Dialect,
    /// This operator's address on the destination chain at start (after a key switch, the
    /// active key's address counts).
    pub operator: Address,
    /// The destination's standby delay; zero turns [`Seats`] off (every operator votes on
    /// every request at once). The waiting itself is [`Standby`]'s.
    pub standby_delay: std::time::Duration,
}

/// Cheap to clone; one per direction.
#[derive(Clone)]
pub struct Planner {
    cfg: PlannerConfig,
    dest: ChainClient,
    store: Arc<Store>,
    /// The destination tx manager of the key that holds the seat (switched by a rotation).
    txm: ActiveKey,
    tokens: Arc<CounterpartTokens>,
    seats: Arc<Seats>,
    stats: Arc<PlannerStats>,
    /// Request nonces being planned now: one plan per request at a time.
    inflight: Arc<Mutex<HashSet<u64>>>,
    own_votes_synced: OwnVotesSynced,
}

/// Removes its nonce from the in-flight set when the plan ends, however it ends.
struct InFlightGuard {
    set: Arc<Mutex<HashSet<u64>>>,
    nonce: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.nonce);
    }
}

impl Planner {
    /// `txm`: a [`crate::txmgr::TxManager`], or the agent's [`ActiveKey`] a rotation switches.
    /// `source`: the request chain, whose bridge names each request's counterpart token.
    pub fn new(
        cfg: PlannerConfig,
        source: ChainClient,
        dest: ChainClient,
        store: Arc<Store>,
        txm: impl Into<ActiveKey>,
    ) -> Self {
        let tokens = Arc::new(CounterpartTokens::new(source, cfg.source_bridge));
        let txm: ActiveKey = txm.into();
        let seats = Arc::new(Seats::new(
            dest.clone(),
            cfg.dest_bridge,
            txm.clone(),
            !cfg.standby_delay.is_zero(),
        ));
        Self {
            cfg,
            dest,
            store,
            txm,
            tokens,
            seats,
            stats: Arc::default(),
            inflight: Arc::default(),
            own_votes_synced: OwnVotesSynced::default(),
        }
    }

    /// The key votes are sent with; the agent's key switch replaces it when the seat moves.
    pub fn active_key(&self) -> ActiveKey {
        self.txm.clone()
    }

    /// The flag the auditor clears until it has read this run's missed blocks.
    pub fn own_votes_synced(&self) -> OwnVotesSynced {
        self.own_votes_synced.clone()
    }

    /// The silent seats left out of the turns; the auditor of this direction keeps it current.
    pub fn silent_seats(&self) -> SilentSeats {
        self.seats.silent()
    }

    /// The turns this planner follows; recovery asks the same ones.
    pub fn seats(&self) -> Arc<Seats> {
        Arc::clone(&self.seats)
    }

    /// Whether `nonce` is another seat's turn to vote (see [`Seats`]).
    pub async fn stands_by(&self, nonce: u64) -> bool {
        self.seats.stands_by(nonce).await
    }

    /// Records the vote key of a request this operator stands by for: the auditor judges the
    /// other operators' votes against it, and the request counts as planned (a later plan
    /// pre-checks it on chain).
    pub async fn record_key(&self, req: &Request) -> Result<(), PlanError> {
        let key = keccak256(self.calldata(req).await?);
        Ok(self
            .store
            .set_vote_hash(self.cfg.direction, req.nonce, key)?)
    }

    /// The destination's `lowerHandleNonce`: every request below it is executed.
    pub async fn lower_handle_nonce(&self) -> Result<u64, PlanError> {
        let bridge = self.cfg.dest_bridge;
        Ok(self
            .dest
            .run("Bridge.lowerHandleNonce", move |p| async move {
                Bridge::new(bridge, p).lowerHandleNonce().call().await
            })
            .await?)
    }

    /// Requests of this direction recorded as never executable, per reason.
    pub fn unexecutable_counts(&self) -> Result<Vec<(UnexecutableReason, u64)>, StoreError> {
        self.store.unexecutable_counts(self.cfg.direction)
    }

    pub fn stats(&self) -> Arc<PlannerStats> {
        Arc::clone(&self.stats)
    }

    /// The handle calldata for `req`: byte-identical to every honest operator's.
    pub async fn calldata(&self, req: &Request) -> Result<Bytes, PlanError> {
        let token = match req.token_type {
            TokenType::Native => Address::ZERO,
            _ => self
                .tokens
                .counterpart(req.token)
                .await?
                .ok_or(PlanError::UnknownToken {
                    direction: self.cfg.direction,
                    nonce: req.nonce,
                    token: req.token,
                })?,
        };
        Ok(handle_calldata_for(req, token, self.cfg.dialect))
    }

    /// Votes on `req` unless the destination shows it needs no vote from this operator.
    pub async fn plan(&self, req: &Request) -> Result<Planned, PlanError> {
        if !self
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(req.nonce)
        {
            return Ok(Planned::InFlight);
        }
        let _done = InFlightGuard {
            set: Arc::clone(&self.inflight),
            nonce: req.nonce,
        };
        let mut result = self.plan_inner(req).await;
        if let Err(PlanError::KeySwitched { old, .. }) = &result {
            tracing::info!(direction = %self.cfg.direction, nonce = req.nonce, %old, new = %self.txm.address(),
                "the seat moved to the new key during this vote; voting again with the new key");
            result = self.plan_inner(req).await;
        }
        let counter = match &result {
            Ok(Planned::Voted { .. }) => &self.stats.voted,
            Ok(Planned::Executed) => &self.stats.skipped_executed,
            Ok(Planned::AlreadyVoted) => &self.stats.skipped_voted,
            Ok(Planned::Late) => &self.stats.late,
            Ok(Planned::Unexecutable { .. }) => &self.stats.unexecutable,
            Ok(Planned::InFlight | Planned::NotYet) => return result,
            Err(_) => &self.stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn plan_inner(&self, req: &Request) -> Result<Planned, PlanError> {
        let dir = self.cfg.direction;
        if let Some((reason, _)) = self.store.unexecutable(dir, req.nonce)? {
            return Ok(Planned::Unexecutable { reason });
        }
        let calldata = self.calldata(req).await?;
        let key = keccak256(&calldata);
        let fresh = self
            .store
            .request(dir, req.nonce)?
            .is_some_and(|r| r.state == RequestState::Seen && r.vote_hash.is_none());
        if fresh {
            // Recorded before signing, so a crash from here on leaves a request that the next
            // plan pre-checks. A vote by this operator's key that this agent did not build is
            // the auditor's to report.
            self.store.set_vote_hash(dir, req.nonce, key)?;
        } else if let Some(skip) = self.pre_check(req, key).await? {
            return Ok(skip);
        }
        self.vote(req, calldata, key).await
    }

    /// For a request planned before: whether a vote is still needed (`None`) or why not.
    async fn pre_check(&self, req: &Request, key: B256) -> Result<Option<Planned>, PlanError> {
        let (dir, nonce) = (self.cfg.direction, req.nonce);
        if self.executed(nonce).await? {
            return self.found_executed(req, key).await.map(Some);
        }
        if self.own_vote_stands(nonce, key).await? {
            return Ok(Some(Planned::AlreadyVoted));
        }
        if !self.cfg.dialect.has_vote_view() {
            // Nothing on chain to ask: the store must already know every vote of ours.
            if !self.own_votes_synced.get() {
                return Ok(Some(Planned::NotYet));
            }
            return Ok(None);
        }
        match self.vote_on_chain(nonce).await {
            Some(v) if v == key => {
                self.store
                    .set_state(dir, nonce, RequestState::Voted, Some(key))?;
                return Ok(Some(Planned::AlreadyVoted));
            }
            Some(v) if v != B256::ZERO => {
                // Only this operator's key can have cast it, and not through this agent: the
                // key is being used elsewhere. The vote is replaced with the right one (the
                // bridge keeps one vote per operator and nonce), so the seat still counts for
                // the real transfer, and the operator is told loudly.
                tracing::error!(alarm = "conflicting_vote_on_chain", direction = %dir,
                    nonce, on_chain = %v, ours = %key,
                    "this operator's key voted a handle this agent never built; replacing it \
                     with the right vote. The key may be in other hands: rotate it");
                self.stats.replaced_foreign.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(None)
    }

    /// The destination closed `req`'s nonce (found by a pre-check or a late vote): records it
    /// executed, and, the first time, checks that it was this request that closed it.
    async fn found_executed(&self, req: &Request, key: B256) -> Result<Planned, PlanError> {
        let dir = self.cfg.direction;
        let before = self.store.request(dir, req.nonce)?.map(|r| r.state);
        // The key is kept even without a vote: the auditor compares others' votes with it.
        self.store
            .set_state(dir, req.nonce, RequestState::Executed, Some(key))?;
        if before != Some(RequestState::Executed)
            && let Some(reason) = self.closed_by_other(req).await?
        {
            return Ok(Planned::Unexecutable { reason });
        }
        Ok(Planned::Executed)
    }

    /// Whether `req`'s nonce was closed by a handle for another request: the bridge marks the
    /// request tx of every handle it executes (`handledRequestTx`); ours is not marked. That
    /// happens when the source reorganised deeper than the confirmation depth after the old
    /// request's nonce executed: the canonical request reuses the nonce and never executes.
    async fn closed_by_other(
        &self,
        req: &Request,
    ) -> Result<Option<UnexecutableReason>, PlanError> {
        let (bridge, tx) = (self.cfg.dest_bridge, req.tx_hash);
        let handled = self
            .dest
            .run("Bridge.handledRequestTx", move |p| async move {
                Bridge::new(bridge, p).handledRequestTx(tx).call().await
            })
            .await;
        match handled {
            Ok(true) => Ok(None),
            Ok(false) => {
                let reason = UnexecutableReason::ClosedByOtherRequest;
                let detail = format!(
                    "nonce {} closed by another request's handle; request tx {} never executes",
                    req.nonce, req.tx_hash
                );
                if self
                    .store
                    .record_unexecutable(self.cfg.direction, req.nonce, reason, &detail)?
                {
                    tracing::warn!(alarm = "request_unexecutable", reason = reason.as_str(),
                        direction = %self.cfg.direction, nonce = req.nonce,
                        request_tx = %req.tx_hash, request_block = req.block_number,
                        from = %req.from, to = %req.to, value_or_id = %req.value_or_id,
                        runbook = "SECURITY.md, \"A request that can never execute\"",
                        "the destination executed this nonce for a different request (the source \
                         reorganised deeper than the confirmation depth): this request can never \
                         execute and its value stays locked on the source");
                }
                Ok(Some(reason))
            }
            Err(e) => {
                tracing::debug!(direction = %self.cfg.direction, nonce = req.nonce, error = %e,
                    "cannot read handledRequestTx; not checking which request closed the nonce");
                Ok(None)
            }
        }
    }

    /// Sends this operator's vote and sorts out how it ended.
    async fn vote(&self, req: &Request, calldata: Bytes, key: B256) -> Result<Planned, PlanError> {
        let dir = self.cfg.direction;
        let label = format!("{dir} nonce {}", req.nonce);
        let txm = self.txm.current();
        // Read before sending: the set the vote counts against (cached; no call on most votes).
        let operators_hash = self.seats.operators_hash().await;
        let outcome = txm.submit(calldata, label).await?;
        let (tx_hash, revert) = match outcome {
            TxOutcome::Mined { tx_hash, block, .. } => {
                self.store
                    .set_state(dir, req.nonce, RequestState::Voted, Some(key))?;
                self.store.record_own_vote(
                    dir,
                    &crate::store::OwnVote {
                        nonce: req.nonce,
                        vote_key: key,
                        voter: txm.address(),
                        tx_hash,
                        block_number: block,
                        operators_hash,
                    },
                )?;
                tracing::info!(direction = %dir, nonce = req.nonce, tx = %tx_hash, "vote mined");
                return Ok(Planned::Voted { tx_hash });
            }
            TxOutcome::Reverted { tx_hash, revert } => (Some(tx_hash), revert),
            TxOutcome::WouldRevert { revert } => (None, Some(revert)),
        };
        let mut kind = reverts::classify(revert.as_deref().map(|b| b.as_ref()));
        if tx_hash.is_some() {
            // A mined revert the node gave no data for is late if the request executed (the
            // executing vote landed first); anything else that is not late is an alarm.
            if revert.is_none()
                && matches!(kind, RevertKind::Other(_))
                && self.executed(req.nonce).await.unwrap_or(false)
            {
                kind = RevertKind::Late;
            }
            let m = txm.metrics();
            if kind == RevertKind::Late {
                m.txs_reverted_already_executed.inc();
            } else {
                m.txs_reverted.inc();
            }
        }
        match kind {
            RevertKind::Late => {
                tracing::debug!(direction = %dir, nonce = req.nonce, "vote arrived after execution");
                self.found_executed(req, key).await.map(|p| match p {
                    Planned::Executed => Planned::Late,
                    other => other,
                })
            }
            RevertKind::NotOperator if self.txm.address() != txm.address() => {
                Err(PlanError::KeySwitched {
                    direction: dir,
                    nonce: req.nonce,
                    old: txm.address(),
                })
            }
            RevertKind::NotOperator => Err(PlanError::NotSeated {
                direction: dir,
                nonce: req.nonce,
                operator: txm.address(),
            }),
            RevertKind::Unexecutable { reason, text } => {
                let detail = format!("vote reverted: {text}");
                if self
                    .store
                    .record_unexecutable(dir, req.nonce, reason, &detail)?
                {
                    tracing::error!(alarm = "request_unexecutable", reason = reason.as_str(),
                        direction = %dir, nonce = req.nonce, tx = ?tx_hash, revert = %text,
                        request_tx = %req.tx_hash, from = %req.from, to = %req.to,
                        value_or_id = %req.value_or_id,
                        runbook = "SECURITY.md, \"A request that can never execute\"",
                        "the destination refuses to execute this request; no more votes are sent \
                         for it and its nonce blocks lowerHandleNonce");
                }
                Ok(Planned::Unexecutable { reason })
            }
            RevertKind::Other(reason) => {
                tracing::error!(alarm = "vote_reverted", direction = %dir, nonce = req.nonce, tx = ?tx_hash, %reason, "vote reverted");
                Err(PlanError::VoteReverted {
                    direction: dir,
                    nonce: req.nonce,
                    tx_hash,
                    reason,
                })
            }
        }
    }

    /// Whether the destination executed `nonce`: below `lowerHandleNonce`, or closed. Kaia's
    /// bridge deletes the closed flag once `lowerHandleNonce` passes the nonce, so the flag
    /// alone would call an old executed nonce pending.
    pub async fn executed(&self, nonce: u64) -> Result<bool, PlanError> {
        if nonce < self.lower_handle_nonce().await? {
            return Ok(true);
        }
        let bridge = self.cfg.dest_bridge;
        Ok(self
            .dest
            .run("Bridge.closedValueTransferVotes", move |p| async move {
                Bridge::new(bridge, p)
                    .closedValueTransferVotes(nonce)
                    .call()
                    .await
            })
            .await?)
    }

    /// This operator's vote key for `nonce` on chain, or `None` when the bridge has no such
    /// view (Kaia's contracts) or it cannot be read now.
    async fn vote_on_chain(&self, nonce: u64) -> Option<B256> {
        let (bridge, me) = (self.cfg.dest_bridge, self.txm.address());
        self.dest
            .run("Bridge.voteOf", move |p| async move {
                Bridge::new(bridge, p)
                    .voteOf(VOTE_TYPE_VALUE_TRANSFER, nonce, me)
                    .call()
                    .await
            })
            .await
            .ok()
    }
}
