//! Log reading: [`LogRangeReader`] reads a fixed block range in windows sized to what the
//! provider accepts, and [`LogStream`] follows a filter as the head moves. Every log query of
//! the agent (watcher, recovery, auditor) goes through the range reader.
//!
//! ```text
//!  LogRangeReader [from, to]:
//!    window = chain's learned window (log_window.rs)
//!    eth_getLogs(next ..= min(to, next + window − 1))
//!      ok ─────────────► LogBatch { from, to, logs } (every block covered); next = to + 1
//!      capped ─────────► narrower window (stated limit / suggested range / half), same blocks
//!      capped, 1 block ─► ChainError::LogsOverflow (chain, block, provider's text): stop here
//!      other error ────► returned; the position stays, the caller retries or gives up
//!
//!   HeadStream ──head──► LogStream: next_from..=min(head, next_from + window - 1)
//!                                  └─► get_logs_range ─► LogRangeReader
//!                        ◄── LogBatch { from, to, logs }; next_from = to + 1
//! ```
//!
//! Neither confirmations nor reorgs are handled here: that is the watcher's job (it can
//! [`LogStream::rewind_to`] a block after a reorg).

use super::client::ChainClient;
use super::error::ChainError;
use super::heads::HeadStream;
use super::log_window::cap_hint;
use alloy::rpc::types::{Filter, Log};
use tracing::{debug, error};

/// Refusals in a row one batch accepts before giving up: each narrows the window at least by
/// half, so 64 cover any `u64` width even with other readers re-growing it meanwhile.
const MAX_REFUSALS_PER_BATCH: usize = 64;

/// Logs of blocks `from..=to` (every block of the range was covered, even if `logs` is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    pub from: u64,
    pub to: u64,
    pub logs: Vec<Log>,
}

/// Reads the logs of one filter over `from..=to`, in block order, one window per
/// [`LogRangeReader::next_batch`]. Made by [`ChainClient::log_range`].
///
/// The window is the chain's learned one: a provider's refusal ("query returned more than
/// 10000 results", "limited to a 100 range", …) narrows it and the same blocks are asked again;
/// successes grow it back. A batch is only returned whole: an error leaves the position where
/// it was, so nothing is reported read that was not.
#[derive(Debug)]
pub struct LogRangeReader {
    client: ChainClient,
    filter: Filter,
    next: u64,
    to: u64,
    done: bool,
}

impl LogRangeReader {
    /// The next window's logs, or `None` once `to` was read. After an error, the next call asks
    /// the same blocks again.
    pub async fn next_batch(&mut self) -> Option<Result<LogBatch, ChainError>> {
        if self.done || self.next > self.to {
            return None;
        }
        let window = self.client.log_window();
        let from = self.next;
        let mut refusals = 0;
        loop {
            let span = window.current().max(1);
            let end = self.to.min(from.saturating_add(span - 1));
            let asked = end - from + 1;
            let f = self.filter.clone().from_block(from).to_block(end);
            match self.client.get_logs(&f).await {
                Ok(logs) => {
                    window.passed(asked);
                    match end.checked_add(1) {
                        Some(n) => self.next = n,
                        None => self.done = true,
                    }
                    return Some(Ok(LogBatch {
                        from,
                        to: end,
                        logs,
                    }));
                }
                Err(ChainError::LogsCapped { message, .. }) if asked == 1 => {
                    window.overflowed();
                    let e = ChainError::LogsOverflow {
                        chain: self.client.name().to_owned(),
                        block: from,
                        message,
                    };
                    error!(alarm = "log_overflow", error = %e, "cannot read a block's logs");
                    return Some(Err(e));
                }
                Err(ChainError::LogsCapped { message, data, .. })
                    if refusals < MAX_REFUSALS_PER_BATCH =>
                {
                    refusals += 1;
                    let next = window.capped(from, asked, cap_hint(&message, data.as_deref()));
                    debug!(chain = %self.client.name(), from, asked, next, error = %message,
                        "provider refused the log window; narrowing it");
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl ChainClient {
    /// A reader of the logs matching `filter`'s addresses and topics in blocks `from..=to` (its
    /// own block range is replaced), in windows the provider accepts.
    pub fn log_range(&self, filter: &Filter, from: u64, to: u64) -> LogRangeReader {
        LogRangeReader {
            client: self.clone(),
            filter: filter.clone(),
            next: from,
            to,
            done: false,
        }
    }

    /// All logs of [`ChainClient::log_range`] in block order, or the first error (never part of
    /// the range as if it were all of it).
    pub async fn get_logs_range(
        &self,
        filter: &Filter,
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, ChainError> {
        let mut reader = self.log_range(filter, from, to);
        let mut logs = Vec::new();
        while let Some(batch) = reader.next_batch().await {
            logs.extend(batch?.logs);
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
