//! The vote auditor of one direction: reads the destination bridge's `Voted` events and compares
//! every operator's vote (this one's too: its key may be used elsewhere) with the handle this
//! agent built for the same request.
//!
//! ```text
//! dest Voted(voteType 0, nonce, operator, voteKey)
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
//! tell the honest operators that some key is in other hands. Votes mined before the agent
//! started are not audited: the auditor starts at the destination head.

use crate::chain::{ChainClient, ChainError};
use crate::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use crate::dialect::Dialect;
use crate::direction::Direction;
use crate::rotation::ActiveKey;
use crate::store::{Store, StoreError};
use alloy::primitives::{Address, B256};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Votes waiting for this agent's own key at most; beyond it the oldest are dropped (logged).
const MAX_PENDING: usize = 10_000;

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

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Votes that match no request as this agent sees it.
    pub forged: AtomicU64,
    /// Votes checked and found honest.
    pub matched: AtomicU64,
}

pub struct Auditor {
    cfg: AuditorConfig,
    source: ChainClient,
    dest: ChainClient,
    store: Arc<Store>,
    /// The key that holds this operator's seat.
    own: ActiveKey,
    stats: Arc<AuditStats>,
    /// The next destination block to read; `None` until the first check reads the head.
    next_block: Option<u64>,
    /// Votes (request nonce, operator, vote key) waiting for this agent's own key. Keyed by
    /// the vote key too: a vote replaced before it was judged is still judged.
    pending: BTreeSet<(u64, Address, B256)>,
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
            stats: Arc::default(),
            next_block: None,
            pending: BTreeSet::new(),
        }
    }

    pub fn stats(&self) -> Arc<AuditStats> {
        Arc::clone(&self.stats)
    }

    /// Reads the votes mined since the last check (at most one window) and judges every vote
    /// that can be judged now. Returns how many forged votes it found.
    pub async fn check(&mut self) -> Result<u64, AuditError> {
        let head = self.dest.block_number().await?;
        let from = *self.next_block.get_or_insert(head);
        if head >= from {
            let to = head.min(from.saturating_add(self.cfg.window_blocks.max(1) - 1));
            let filter = Filter::new()
                .address(self.cfg.dest_bridge)
                .from_block(from)
                .to_block(to)
                .event_signature(Bridge::Voted::SIGNATURE_HASH)
                .topic1(B256::with_last_byte(VOTE_TYPE_VALUE_TRANSFER));
            for log in self.dest.get_logs(&filter).await? {
                match log.log_decode::<Bridge::Voted>() {
                    Ok(v) => {
                        let v = &v.inner.data;
                        self.pending.insert((v.nonce, v.operator, v.voteKey));
                    }
                    Err(e) => {
                        tracing::warn!(direction = %self.cfg.direction, error = %e, "skipping a malformed Voted log")
                    }
                }
            }
            self.next_block = Some(to + 1);
        }
        self.judge().await
    }

    async fn judge(&mut self) -> Result<u64, AuditError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let src = self.cfg.source_bridge;
        let request_nonce = self
            .source
            .run("Bridge.requestNonce", move |p| async move {
                Bridge::new(src, p).requestNonce().call().await
            })
            .await?;
        let dir = self.cfg.direction;
        let mut forged = 0;
        let mut judged = Vec::new();
        for &(nonce, operator, seen) in &self.pending {
            let ours = self.store.request(dir, nonce)?.and_then(|r| r.vote_hash);
            let expected = match ours {
                Some(k) if k == seen => {
                    self.stats.matched.fetch_add(1, Ordering::Relaxed);
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
        self.stats.forged.fetch_add(forged, Ordering::Relaxed);
        Ok(forged)
    }
}
