//! The vote auditor of one direction: reads every operator's vote on the destination bridge and
//! compares it (this one's too: its key may be used elsewhere) with the handle this agent built
//! for the same request.
//!
//! ```text
//! our dialect:  dest Voted(voteType 0, nonce, operator, voteKey)
//! Kaia's (no Voted event): successful handle*Transfer txs to the bridge in the destination's
//!               blocks: nonce from the calldata, voteKey = keccak256(input), operator = sender
//!               (`handles.rs`)
//!   store: this agent's key for the request   ─> equal: honest │ different: FORGED
//!   not known yet: nonce ≥ source requestNonce ─> FORGED (no such request)
//!                  else                        ─> kept until the planner has built the key
//! FORGED ─> bridge_forged_votes_total{direction} + a warning naming the operator
//!           by this operator's own key: also the `conflicting_vote_on_chain` alarm
//! ```
//!
//! The planner does not read this operator's vote before a first vote (that would cost a call
//! per transfer); a vote its key cast elsewhere is reported here instead, and the agent's own
//! vote replaces it on chain (the bridge keeps one vote per operator and nonce).
//!
//! A forged vote cannot execute anything while fewer than t operators sign it; the point is to
//! tell the honest operators that some key is in other hands. The auditor's position is kept
//! in the store: a restart resumes there (at most [`MAX_LOOKBACK`] blocks back; a first run
//! starts at the destination head), so votes mined while the agent was down are audited too.
//!
//! It also records this operator's own successful votes in the store (the planner's memory):
//! a vote mined while the agent was stopping was never recorded by the planner, and on Kaia's
//! bridge nothing else would tell it apart from a vote never sent. Until it has read up to the
//! head it saw at start, the planner holds back re-votes there ([`OwnVotesSynced`]).
//!
//! The same votes show which seats vote at all: a seat that voted none of many executed
//! nonces in a row is reported (`silence.rs`; Kaia's forgotten deployer seat).

mod handles;
mod silence;

use crate::chain::{ChainClient, ChainError};
use crate::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use crate::dialect::Dialect;
use crate::direction::Direction;
use crate::metrics::{Counter, DirectionMetrics, Gauge};
use crate::seats::SilentSeats;
use crate::store::OwnVotesSynced;
use crate::store::{Store, StoreError};
use crate::txmgr::ActiveKey;
use alloy::primitives::{Address, B256};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Votes waiting for this agent's own key at most; beyond it the oldest are dropped (logged).
const MAX_PENDING: usize = 10_000;
/// Most destination blocks a restart reads back to resume from the last run's position.
const MAX_LOOKBACK: u64 = 2048;
/// How long one read of the operator list is trusted (for silent seats).
const OPERATORS_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct AuditorConfig {
    pub direction: Direction,
    pub source_bridge: Address,
    pub dest_bridge: Address,
    /// The destination bridge's dialect.
    pub dialect: Dialect,
    /// Most blocks per `eth_getLogs`.
    pub window_blocks: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One operator's vote as read from the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub nonce: u64,
    pub operator: Address,
    pub key: B256,
    /// The vote's transaction and block, when the node gave them.
    pub tx_hash: Option<B256>,
    pub block: Option<u64>,
}

pub struct Auditor {
    cfg: AuditorConfig,
    source: ChainClient,
    dest: ChainClient,
    store: Arc<Store>,
    /// The key that holds this operator's seat.
    own: ActiveKey,
    /// `bridge_forged_votes_seen_total` and `bridge_silent_seats` of the direction.
    forged_votes_seen: Counter,
    silent_seats: Gauge,
    /// The next destination block to read; `None` until the first check reads the head.
    next_block: Option<u64>,
    /// Votes (request nonce, operator, vote key) waiting for this agent's own key. Keyed by
    /// the vote key too: a vote replaced before it was judged is still judged.
    pending: BTreeSet<(u64, Address, B256)>,
    silence: silence::Silence,
    /// The destination's operator list and when it was read (for `silence`).
    operators: Option<(std::time::Instant, Vec<Address>)>,
    /// Where the silent seats are published for the planner's turns, if anywhere.
    silent_out: Option<SilentSeats>,
    /// The destination head at the first check: once read past it, every own vote mined
    /// before this run is in the store.
    start_head: Option<u64>,
    synced_out: Option<OwnVotesSynced>,
}

impl Auditor {
    pub fn new(
        cfg: AuditorConfig,
        source: ChainClient,
        dest: ChainClient,
        store: Arc<Store>,
        own: ActiveKey,
    ) -> Self {
        Self {
            cfg,
            source,
            dest,
            store,
            own,
            forged_votes_seen: Counter::default(),
            silent_seats: Gauge::default(),
            next_block: None,
            pending: BTreeSet::new(),
            silence: silence::Silence::default(),
            operators: None,
            silent_out: None,
            start_head: None,
            synced_out: None,
        }
    }

    /// Clears `flag` until the blocks mined since the last run are read (see
    /// the planner's `Planned::NotYet`).
    pub fn sync_own_votes_to(mut self, flag: OwnVotesSynced) -> Self {
        flag.set(false);
        self.synced_out = Some(flag);
        self
    }

    /// Publishes the silent seats to `seats` (the planner's turns leave them out).
    pub fn report_silent_to(mut self, seats: SilentSeats) -> Self {
        self.silent_out = Some(seats);
        self
    }

    /// Counts forged votes and publishes silent seats into the direction's handles.
    pub fn count_into(mut self, m: &DirectionMetrics) -> Self {
        self.forged_votes_seen = m.forged_votes_seen.clone();
        self.silent_seats = m.silent_seats.clone();
        self
    }

    /// Reads the votes mined since the last check (at most one window) and judges every vote
    /// that can be judged now. Returns how many forged votes it found.
    pub async fn check(&mut self) -> Result<u64, AuditError> {
        if !self.silence.started() {
            let request_nonce = self.request_nonce().await?;
            self.silence.start_at(request_nonce);
        }
        // Read before the votes: every vote for a nonce below it is in a block read below.
        let lower = self.lower_handle_nonce().await?;
        let head = self.dest.block_number().await?;
        let from = match self.next_block {
            Some(n) => n,
            None => {
                // Resume where the last run stopped (bounded), so votes mined while it was
                // down are audited, and its own last votes are recorded.
                let stored = self.store.audit_cursor(self.cfg.direction)?;
                self.start_head = Some(head);
                stored
                    .filter(|&n| n <= head + 1)
                    .map_or(head, |n| n.max(head.saturating_sub(MAX_LOOKBACK)))
            }
        };
        self.next_block = Some(from);
        let mut extra_forged = 0;
        let mut caught_up = true;
        if head >= from {
            let (votes, next) = if self.cfg.dialect.emits_voted() {
                let to = head.min(from.saturating_add(self.cfg.window_blocks.max(1) - 1));
                (self.voted_events(from, to).await?, to + 1)
            } else {
                let to = head.min(from + handles::MAX_BLOCKS - 1);
                let (votes, bad, next) =
                    handles::read(&self.dest, self.cfg.dest_bridge, from, to).await?;
                for b in bad {
                    extra_forged += 1;
                    tracing::warn!(alarm = "forged_vote", direction = %self.cfg.direction,
                        operator = %b.operator, tx = %b.tx_hash,
                        "an operator's successful handle call does not decode as any request's \
                         handle; its key may be in other hands: alert that operator and the \
                         bridge owner");
                }
                (votes, next)
            };
            for v in &votes {
                self.silence.saw(v.nonce, v.operator);
                self.pending.insert((v.nonce, v.operator, v.key));
            }
            // Before the cursor moves past them: this operator's votes are recorded.
            let ours = self.our_vote_hashes()?;
            for v in &votes {
                self.remember_own(v, &ours)?;
            }
            caught_up = next > head;
            self.next_block = Some(next);
            self.store.set_audit_cursor(self.cfg.direction, next)?;
        }
        if let (Some(flag), Some(start)) = (&self.synced_out, self.start_head)
            && self.next_block.is_some_and(|n| n > start)
            && !flag.get()
        {
            tracing::debug!(direction = %self.cfg.direction, "auditor caught up with the blocks mined since the last run");
            flag.set(true);
        }
        let forged = self.judge().await? + extra_forged;
        if extra_forged > 0 {
            self.forged_votes_seen.add(extra_forged);
        }
        if caught_up {
            self.judge_silence(lower).await?;
        }
        Ok(forged)
    }

    /// Records a successful vote of this operator's key for the handle this agent built as its
    /// own vote: the planner's memory, also for a vote mined while the agent was stopping
    /// (before the planner could record it).
    fn remember_own(&self, v: &Vote, ours: &HashMap<u64, B256>) -> Result<(), AuditError> {
        let (Some(tx_hash), Some(block)) = (v.tx_hash, v.block) else {
            return Ok(());
        };
        if v.operator != self.own.address() {
            return Ok(());
        }
        let dir = self.cfg.direction;
        if ours.get(&v.nonce) != Some(&v.key)
            || self
                .store
                .own_vote(dir, v.nonce)?
                .is_some_and(|o| o.tx_hash == tx_hash)
        {
            return Ok(());
        }
        self.store.record_own_vote(
            dir,
            &crate::store::OwnVote {
                nonce: v.nonce,
                vote_key: v.key,
                voter: v.operator,
                tx_hash,
                block_number: block,
                operators_hash: None,
            },
        )?;
        Ok(())
    }

    /// `Voted` events of value transfers in `from..=to` (our dialect).
    async fn voted_events(&self, from: u64, to: u64) -> Result<Vec<Vote>, AuditError> {
        let filter = Filter::new()
            .address(self.cfg.dest_bridge)
            .event_signature(Bridge::Voted::SIGNATURE_HASH)
            .topic1(B256::with_last_byte(VOTE_TYPE_VALUE_TRANSFER));
        let mut votes = Vec::new();
        for log in self.dest.get_logs_range(&filter, from, to).await? {
            match log.log_decode::<Bridge::Voted>() {
                Ok(v) => {
                    votes.push(Vote {
                        nonce: v.inner.data.nonce,
                        operator: v.inner.data.operator,
                        key: v.inner.data.voteKey,
                        tx_hash: v.transaction_hash,
                        block: v.block_number,
                    });
                }
                Err(e) => {
                    tracing::warn!(direction = %self.cfg.direction, error = %e, "skipping a malformed Voted log")
                }
            }
        }
        Ok(votes)
    }

    /// Seats that voted none of the last many executed nonces (see `silence.rs`).
    async fn judge_silence(&mut self, lower: u64) -> Result<(), AuditError> {
        let stale = self
            .operators
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > OPERATORS_REFRESH);
        if stale {
            let bridge = self.cfg.dest_bridge;
            let ops = self
                .dest
                .run("Bridge.getOperatorList", move |p| async move {
                    Bridge::new(bridge, p).getOperatorList().call().await
                })
                .await?;
            self.operators = Some((std::time::Instant::now(), ops));
        }
        let ops = self
            .operators
            .as_ref()
            .map(|(_, o)| o.clone())
            .unwrap_or_default();
        let (newly, silent) = self.silence.judge(lower, &ops);
        for (operator, misses) in newly {
            tracing::warn!(alarm = "silent_seat", direction = %self.cfg.direction, %operator,
                missed_in_a_row = misses, lower_handle_nonce = lower,
                "a destination seat has voted none of the last executed nonces: if it is a \
                 forgotten seat (Kaia's constructor seats the deployer), deregister it; if it \
                 is an operator, its agent is down or not seated with this key");
        }
        self.silent_seats.set(silent);
        if let Some(out) = &self.silent_out {
            out.set(self.silence.silent());
        }
        Ok(())
    }

    async fn request_nonce(&self) -> Result<u64, AuditError> {
        let src = self.cfg.source_bridge;
        Ok(self
            .source
            .run("Bridge.requestNonce", move |p| async move {
                Bridge::new(src, p).requestNonce().call().await
            })
            .await?)
    }

    async fn lower_handle_nonce(&self) -> Result<u64, AuditError> {
        let dst = self.cfg.dest_bridge;
        Ok(self
            .dest
            .run("Bridge.lowerHandleNonce", move |p| async move {
                Bridge::new(dst, p).lowerHandleNonce().call().await
            })
            .await?)
    }

    /// The vote this agent built for each nonce a pending vote is for, where it built one.
    fn our_vote_hashes(&self) -> Result<HashMap<u64, B256>, AuditError> {
        let nonces = self.pending.iter().map(|&(nonce, _, _)| nonce);
        Ok(self.store.vote_hashes(self.cfg.direction, nonces)?)
    }

    async fn judge(&mut self) -> Result<u64, AuditError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let request_nonce = self.request_nonce().await?;
        let dir = self.cfg.direction;
        let ours = self.our_vote_hashes()?;
        let mut forged = 0;
        let mut judged = Vec::new();
        for &(nonce, operator, seen) in &self.pending {
            let expected = match ours.get(&nonce).copied() {
                Some(k) if k == seen => {
                    judged.push((nonce, operator, seen));
                    continue;
                }
                Some(k) => k.to_string(),
                None if nonce >= request_nonce => {
                    format!("no request: the source's requestNonce is {request_nonce}")
                }
                None => continue,
            };
            forged += 1;
            judged.push((nonce, operator, seen));
            if operator == self.own.address() {
                tracing::error!(alarm = "conflicting_vote_on_chain", direction = %dir, nonce,
                    on_chain = %seen, %expected,
                    "this operator's key voted a handle this agent never built; the agent's own \
                     vote replaces it. The key may be in other hands: rotate it");
            }
            tracing::warn!(alarm = "forged_vote", direction = %dir, nonce, %operator,
                vote_key = %seen, %expected,
                "an operator voted a handle that matches no request as this agent sees it; \
                 its key may be in other hands: alert that operator and the bridge owner");
        }
        for k in judged {
            self.pending.remove(&k);
        }
        while self.pending.len() > MAX_PENDING {
            if let Some((nonce, operator, _)) = self.pending.pop_first() {
                tracing::debug!(direction = %dir, nonce, %operator, "vote dropped unaudited: too many waiting");
            }
        }
        self.forged_votes_seen.add(forged);
        Ok(forged)
    }
}
