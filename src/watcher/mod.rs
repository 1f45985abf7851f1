//! The watcher of one direction: follows request events on the source bridge, waits the
//! confirmation depth, refuses to go on over a reorg it cannot undo, and persists its cursor.
//!
//! ```text
//! head ─> safe = head − confirmations
//!   logs of next..=to = min(safe, next + window − 1) (range reader: provider-sized queries)
//!     ─> decode (malformed: skip, log, count)
//!   cursor.last (block, hash) still canonical?  no ─> WatchError::Reorg: halt this direction
//!     (block `to`'s parent hash answers it when to = last + 1; else the block is read)
//!   every log's block hash canonical?             no ─> WatchError::Reorg
//!   store: requests + cursor (one transaction) ─> Requests for the vote planner
//! ```
//!
//! Blocks above `safe` are never read, so a reorg within the confirmation depth cannot make the
//! agent vote on an orphaned request. A reorg below it is beyond what the operator configured
//! as final: the direction stops with a message instead of guessing.

use crate::chain::{ChainClient, ChainError};
use crate::contracts::Bridge;
use crate::direction::Direction;
use crate::metrics::{Counter, DirectionMetrics};
use crate::store::{Cursor, Store, StoreError};
use crate::votes::{Request, decode_request};
use alloy::primitives::{Address, B256};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one watcher needs to know.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    pub direction: Direction,
    /// The source chain's bridge.
    pub bridge: Address,
    /// First block to scan when the store has no cursor (the bridge's deployment block).
    pub start_block: u64,
    /// Blocks a request must be buried under before it is voted on (0: at once).
    pub confirmations: u64,
    /// Most blocks per `eth_getLogs`.
    pub window_blocks: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The source chain reorganised below the confirmation depth. Fatal for the direction.
    #[error(
        "{direction}: block {block} changed from {stored} to {canonical} after it was scanned with \
         {confirmations} confirmation(s): the source chain reorganised deeper than the configured \
         depth. This direction is stopped. Check the source chain's nodes; if the reorg is real, \
         raise `confirmations`, and resume only after deciding what to do with requests voted \
         from the orphaned blocks (see the store's requests table)"
    )]
    Reorg {
        direction: Direction,
        block: u64,
        stored: B256,
        canonical: B256,
        confirmations: u64,
    },
    /// A block the watcher needs is missing on the endpoint (it may be behind).
    #[error("{direction}: source block {block} is not available yet")]
    MissingBlock { direction: Direction, block: u64 },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WatchError {
    /// Whether the direction must stop (as opposed to retrying later).
    pub fn is_fatal(&self) -> bool {
        match self {
            WatchError::Reorg { .. } => true,
            // A database that is down (PostgreSQL restarting) comes back: the next head retries.
            WatchError::Store(e) => !e.is_transient(),
            _ => false,
        }
    }
}

/// Diagnostics of the scan itself (not exported; the metrics are handles, see
/// [`Watcher::count_into`]).
#[derive(Debug, Default)]
pub struct WatcherStats {
    pub windows: AtomicU64,
    /// Steps skipped because the source head was below the last scanned block.
    pub behind: AtomicU64,
}

pub struct Watcher {
    cfg: WatcherConfig,
    source: ChainClient,
    store: Arc<Store>,
    stats: Arc<WatcherStats>,
    /// `bridge_requests_seen_total` and `bridge_malformed_logs_total` of the direction.
    requests_seen: Counter,
    malformed_logs: Counter,
}

impl Watcher {
    pub fn new(cfg: WatcherConfig, source: ChainClient, store: Arc<Store>) -> Self {
        Self {
            cfg,
            source,
            store,
            stats: Arc::default(),
            requests_seen: Counter::default(),
            malformed_logs: Counter::default(),
        }
    }

    /// Counts decoded requests and malformed logs into the direction's handles.
    pub fn count_into(mut self, m: &DirectionMetrics) -> Self {
        self.requests_seen = m.requests_seen.clone();
        self.malformed_logs = m.malformed_logs.clone();
        self
    }

    pub fn stats(&self) -> Arc<WatcherStats> {
        Arc::clone(&self.stats)
    }

    /// Where the next scan starts.
    pub fn cursor(&self) -> Result<Cursor, StoreError> {
        Ok(self.store.cursor(self.cfg.direction)?.unwrap_or(Cursor {
            next_block: self.cfg.start_block,
            last: None,
        }))
    }

    /// Scans at most one window below `head − confirmations`, records it, and returns the
    /// requests found (possibly none). Returns `Ok(None)` when there is nothing confirmed to scan.
    pub async fn step(&self, head: u64) -> Result<Option<Vec<Request>>, WatchError> {
        let dir = self.cfg.direction;
        let cursor = self.cursor()?;
        if let Some((block, _)) = cursor.last
            && head < block
        {
            // The endpoint is behind what was already scanned (a lagging node after failover,
            // or a reorg to a shorter chain): nothing to decide until it reaches the block
            // again, when the hash check below tells which.
            self.stats.behind.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(direction = %dir, head, scanned = block,
                "source head is below the last scanned block; waiting for the chain to reach it");
            return Ok(None);
        }
        let safe = match head.checked_sub(self.cfg.confirmations) {
            Some(s) if s >= cursor.next_block => s,
            _ => {
                // Checked on every step, new blocks or not: a reorg must halt as soon as seen.
                self.check_last(cursor).await?;
                return Ok(None);
            }
        };
        let from = cursor.next_block;
        let to = safe.min(from.saturating_add(self.cfg.window_blocks.max(1) - 1));
        let filter = Filter::new().address(self.cfg.bridge).events([
            Bridge::RequestValueTransfer::SIGNATURE,
            Bridge::RequestValueTransferEncoded::SIGNATURE,
        ]);
        // Whole or not at all: the cursor moves past `to` only with every block's logs read.
        let logs = self.source.get_logs_range(&filter, from, to).await?;
        let to_block = self.block(to).await?;
        match cursor.last {
            // The window's last block names its parent: the scanned block, when one step
            // follows the last one (the usual case), so one read checks both.
            Some((block, stored)) if block + 1 == to => {
                if to_block.parent_hash != stored {
                    let canonical = self.canonical_hash(block).await?;
                    if canonical != stored {
                        return Err(self.reorg(block, stored, canonical));
                    }
                }
            }
            _ => self.check_last(cursor).await?,
        }
        let mut hashes: BTreeMap<u64, B256> = BTreeMap::new();
        hashes.insert(to, to_block.hash);
        let mut found = Vec::new();
        let mut rows = Vec::new();
        for log in &logs {
            let req = match decode_request(log) {
                Ok(r) => r,
                Err(e) => {
                    self.malformed_logs.inc();
                    tracing::warn!(direction = %dir, error = %e, "skipping a malformed request log");
                    continue;
                }
            };
            let canonical = match hashes.get(&req.block_number) {
                Some(h) => *h,
                None => {
                    let h = self.canonical_hash(req.block_number).await?;
                    hashes.insert(req.block_number, h);
                    h
                }
            };
            let log_hash = log.block_hash.unwrap_or_default();
            if log_hash != canonical {
                return Err(self.reorg(req.block_number, log_hash, canonical));
            }
            rows.push((req.nonce, req.tx_hash, req.block_number, log_hash));
            found.push(req);
        }
        let next = Cursor {
            next_block: to + 1,
            last: Some((to, hashes[&to])),
        };
        self.store.record_window(dir, &rows, next)?;
        self.stats.windows.fetch_add(1, Ordering::Relaxed);
        self.requests_seen.add(found.len() as u64);
        if !found.is_empty() {
            tracing::info!(direction = %dir, from, to, requests = found.len(), "requests confirmed");
        }
        Ok(Some(found))
    }

    /// Steps until caught up with `head` (one window at a time), returning all requests found.
    pub async fn catch_up(&self, head: u64) -> Result<Vec<Request>, WatchError> {
        let mut all = Vec::new();
        while let Some(found) = self.step(head).await? {
            all.extend(found);
        }
        Ok(all)
    }

    /// Whether the last scanned block is still canonical.
    async fn check_last(&self, cursor: Cursor) -> Result<(), WatchError> {
        if let Some((block, stored)) = cursor.last {
            let canonical = self.canonical_hash(block).await?;
            if canonical != stored {
                return Err(self.reorg(block, stored, canonical));
            }
        }
        Ok(())
    }

    async fn canonical_hash(&self, block: u64) -> Result<B256, WatchError> {
        Ok(self.block(block).await?.hash)
    }

    async fn block(&self, block: u64) -> Result<crate::chain::BlockRef, WatchError> {
        self.source
            .block_by_number(block)
            .await?
            .ok_or(WatchError::MissingBlock {
                direction: self.cfg.direction,
                block,
            })
    }

    fn reorg(&self, block: u64, stored: B256, canonical: B256) -> WatchError {
        let e = WatchError::Reorg {
            direction: self.cfg.direction,
            block,
            stored,
            canonical,
            confirmations: self.cfg.confirmations,
        };
        tracing::error!(alarm = "reorg_halt", error = %e, "direction halted");
        e
    }
}
