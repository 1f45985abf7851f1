//! Log fetching in bounded block windows, and [`LogStream`], which follows a filter as the head
//! moves.
//!
//! ```text
//!   HeadStream ──head──► LogStream: next_from..=min(head, next_from + window - 1)
//!                                  └─► get_logs_range ──► eth_getLogs per window
//!                                        (window halved when a node says "too many")
//!                        ◄── LogBatch { from, to, logs }; next_from = to + 1
//! ```
//!
//! Neither confirmations nor reorgs are handled here: that is the watcher's job (it can
//! [`LogStream::rewind_to`] a block after a reorg).

use super::client::ChainClient;
use super::error::{ChainError, is_range_too_large};
use super::heads::HeadStream;
use alloy::rpc::types::{Filter, Log};
use tracing::debug;

/// Logs of blocks `from..=to` (every block of the range was covered, even if `logs` is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    pub from: u64,
    pub to: u64,
    pub logs: Vec<Log>,
}

impl ChainClient {
    /// Logs matching `filter`'s addresses and topics in blocks `from..=to` (its own block range
    /// is replaced), fetched in windows of at most [`crate::chain::ChainAccessConfig::log_window`]
    /// blocks. When a node answers that a window spans too many blocks or results, the window is
    /// halved and the same blocks asked again.
    pub async fn get_logs_range(
        &self,
        filter: &Filter,
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, ChainError> {
        let mut logs = Vec::new();
        let mut window = self.config().log_window.max(1);
        let mut start = from;
        // Each turn either advances `start` or halves `window`: the loop ends.
        while start <= to {
            let end = to.min(start.saturating_add(window - 1));
            let f = filter.clone().from_block(start).to_block(end);
            match self.get_logs(&f).await {
                Ok(batch) => {
                    logs.extend(batch);
                    if end == u64::MAX {
                        break;
                    }
                    start = end + 1;
                }
                Err(e) if window > 1 && e.messages().iter().any(|m| is_range_too_large(m)) => {
                    window /= 2;
                    debug!(chain = %self.name(), window, error = %e, "log window too large; halving");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(logs)
    }
}

/// Logs for one filter, in block order, from a start block on, as the head moves. See
/// [`ChainClient::log_stream`].
#[derive(Debug)]
pub struct LogStream {
    client: ChainClient,
    filter: Filter,
    next_from: u64,
    heads: HeadStream,
    pause_before_retry: bool,
}

impl LogStream {
    pub(crate) fn new(client: ChainClient, filter: Filter, from: u64, heads: HeadStream) -> Self {
        LogStream {
            client,
            filter,
            next_from: from,
            heads,
            pause_before_retry: false,
        }
    }

    /// The next window of logs: waits until the head reaches the next block. An error leaves
    /// the position unchanged; the next call waits one poll interval and asks again. `None` on
    /// shutdown.
    pub async fn next(&mut self) -> Option<Result<LogBatch, ChainError>> {
        let cancel = self.heads.cancel_token().clone();
        if std::mem::take(&mut self.pause_before_retry) {
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(self.client.config().poll_interval) => {}
            }
        }
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if let Some(head) = self.heads.latest()
                && self.next_from <= head.number
            {
                let window = self.client.config().log_window.max(1);
                let (from, to) = (
                    self.next_from,
                    head.number.min(self.next_from.saturating_add(window - 1)),
                );
                let result = tokio::select! {
                    _ = cancel.cancelled() => return None,
                    r = self.client.get_logs_range(&self.filter, from, to) => r,
                };
                return Some(match result {
                    Ok(logs) => {
                        self.next_from = to.saturating_add(1);
                        Ok(LogBatch { from, to, logs })
                    }
                    Err(e) => {
                        self.pause_before_retry = true;
                        Err(e)
                    }
                });
            }
            self.heads.next().await?;
        }
    }

    /// The first block the next batch will cover.
    pub fn next_block(&self) -> u64 {
        self.next_from
    }

    /// Makes the next batch start at `block` (after a reorg, or to skip ahead).
    pub fn rewind_to(&mut self, block: u64) {
        self.next_from = block;
    }

    /// The head stream underneath, e.g. for its [`HeadStream::stats`].
    pub fn heads(&self) -> &HeadStream {
        &self.heads
    }
}
