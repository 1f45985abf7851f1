//! Nonce sequencing: nonces handed out in order, transactions signed in parallel, broadcast in
//! nonce order, and no nonce left stranded.
//!
//! ```text
//!  job A ── lease 7 ── sign ───────────────┐ turn 7 ── send ── sent(7)
//!  job B ── lease 8 ── sign ──┐ wait turn 8 ┴──────── turn 8 ── send ── sent(8)
//!  job C ── lease 9 ── sign ── guard refuses ── fail(9): leases ≥ 9 are void, next = 9
//!  job D ── lease 10 ─ sign ── wait turn 10 … Lost ── lease 9 ── re-sign ── turn 9 ── send
//! ```
//!
//! The rule that keeps the account free of gaps: a nonce is broadcast only after every lower
//! nonce was broadcast. So when the job holding nonce `n` cannot send (signing failed, the guard
//! refused, the node rejected it, the job was dropped), nothing at or above `n` has reached the
//! node yet. Its lease is then failed: every lease at or above `n` becomes void, the next nonce
//! handed out is `n` again, and the jobs holding void leases take new ones and re-sign (the
//! guard's journal allows re-signing the same vote with another account nonce). A dropped lease
//! fails itself, so even a panicking or cancelled job cannot leave a hole.
//!
//! When the node says the nonce is wrong ("nonce too low/high"), the job at its turn
//! resynchronises the sequencer with the chain's pending count: every open lease is void and
//! numbering restarts there. The convergence check of the mined-nonce poller does the same
//! through [`Sequencer::rebase`] when the chain's pending count fell below what was broadcast
//! and nothing this manager tracks sits at or above it (a destination reorg orphaned mined
//! transactions, or the node dropped them): see `converge.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Hands out nonces and orders broadcasts. Shared by all jobs of one account.
#[derive(Debug)]
pub(crate) struct Sequencer {
    state: Mutex<State>,
    /// Bumped on every change of `state`, to wake jobs waiting for their turn.
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    /// The next nonce to hand out.
    next: u64,
    /// The next nonce to broadcast: every nonce below it has been handed to the node.
    sent: u64,
    /// Open leases (handed out, not broadcast): nonce → ticket of the job holding it.
    owners: BTreeMap<u64, u64>,
    /// Last ticket issued.
    tickets: u64,
}

/// How waiting for a turn ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Every lower nonce was broadcast: send now.
    Go,
    /// The lease was voided by a failure below it or a resync: take a new one.
    Lost,
    /// Shutdown.
    Shutdown,
}

impl Sequencer {
    /// A sequencer whose first nonce is `next` (the chain's pending count).
    pub(crate) fn new(next: u64) -> Arc<Self> {
        Arc::new(Sequencer {
            state: Mutex::new(State {
                next,
                sent: next,
                owners: BTreeMap::new(),
                tickets: 0,
            }),
            changed: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent state (every update is a few
        // assignments), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The next nonce that will be handed out.
    pub(crate) fn next(&self) -> u64 {
        self.lock().next
    }

    /// The broadcast frontier: every nonce below it was handed to the node.
    pub(crate) fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// Restarts numbering at `chain_next` (the chain's pending count), voiding every open
    /// lease: their jobs re-sign at the new numbering. For when the chain lost nonces this
    /// manager had broadcast (reorg, dropped pool) and no tracked transaction sits at or above
    /// them; also for moving past nonces taken by transactions this manager never sent.
    pub(crate) fn rebase(&self, chain_next: u64) {
        let mut s = self.lock();
        s.owners.clear();
        s.next = chain_next;
        s.sent = chain_next;
        drop(s);
        self.wake();
    }

    /// Takes the next nonce.
    pub(crate) fn acquire(self: &Arc<Self>) -> Lease {
        let mut s = self.lock();
        s.tickets += 1;
        let (nonce, ticket) = (s.next, s.tickets);
        s.next += 1;
        s.owners.insert(nonce, ticket);
        Lease {
            seq: Arc::clone(self),
            nonce,
            ticket,
            open: true,
        }
    }
}

/// The right to broadcast one nonce, once every lower one was broadcast. Dropping an open lease
/// fails it (see the module docs).
#[derive(Debug)]
pub(crate) struct Lease {
    seq: Arc<Sequencer>,
    nonce: u64,
    ticket: u64,
    open: bool,
}

impl Lease {
    pub(crate) fn nonce(&self) -> u64 {
        self.nonce
    }

    fn holds(&self, s: &State) -> bool {
        s.owners.get(&self.nonce) == Some(&self.ticket)
    }

    /// Waits until every lower nonce has been broadcast, or the lease is void.
    pub(crate) async fn wait_turn(&self, shutdown: &CancellationToken) -> Turn {
        let mut rx = self.seq.changed.subscribe();
        loop {
            {
                let s = self.seq.lock();
                if !self.holds(&s) {
                    return Turn::Lost;
                }
                if s.sent == self.nonce {
                    return Turn::Go;
                }
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Turn::Shutdown;
                    }
                }
                _ = shutdown.cancelled() => return Turn::Shutdown,
            }
        }
    }

    /// The node has the transaction: the next nonce may go.
    pub(crate) fn sent(mut self) {
        self.open = false;
        let mut s = self.seq.lock();
        if self.holds(&s) {
            s.owners.remove(&self.nonce);
            s.sent = s.sent.max(self.nonce + 1);
        }
        drop(s);
        self.seq.wake();
    }

    /// This nonce will not be sent: void it and every lease above it, and hand it out again.
    pub(crate) fn fail(mut self) {
        self.release();
    }

    /// The node disagrees about nonces: restart numbering at `chain_next` (the pending count),
    /// voiding every open lease.
    pub(crate) fn resync(mut self, chain_next: u64) {
        self.open = false;
        self.seq.rebase(chain_next);
    }

    fn release(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let mut s = self.seq.lock();
        if self.holds(&s) {
            s.owners.split_off(&self.nonce);
            s.next = self.nonce;
        }
        drop(s);
        self.seq.wake();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn turn(l: &Lease) -> Turn {
        tokio::time::timeout(
            std::time::Duration::from_millis(50),
            l.wait_turn(&CancellationToken::new()),
        )
        .await
        .unwrap_or(Turn::Shutdown)
    }

    #[tokio::test]
    async fn broadcasts_go_in_nonce_order() {
        let seq = Sequencer::new(5);
        let (a, b) = (seq.acquire(), seq.acquire());
        assert_eq!((a.nonce(), b.nonce()), (5, 6));
        assert_eq!(turn(&b).await, Turn::Shutdown, "6 waits for 5");
        assert_eq!(turn(&a).await, Turn::Go);
        a.sent();
        assert_eq!(turn(&b).await, Turn::Go);
        b.sent();
        assert_eq!(seq.next(), 7);
    }

    #[tokio::test]
    async fn a_failed_nonce_is_reused_and_later_leases_are_void() {
        let seq = Sequencer::new(0);
        let (a, b, c) = (seq.acquire(), seq.acquire(), seq.acquire());
        a.sent();
        b.fail();
        assert_eq!(
            turn(&c).await,
            Turn::Lost,
            "2 cannot wait behind the hole at 1"
        );
        assert_eq!(seq.next(), 1);
        let c2 = seq.acquire();
        assert_eq!(c2.nonce(), 1);
        assert_eq!(turn(&c2).await, Turn::Go);
        c2.sent();
        drop(c); // void: its drop must not disturb anything
        assert_eq!(seq.next(), 2);
    }

    #[tokio::test]
    async fn a_dropped_lease_frees_its_nonce() {
        let seq = Sequencer::new(3);
        let a = seq.acquire();
        drop(a);
        let b = seq.acquire();
        assert_eq!(b.nonce(), 3);
        assert_eq!(turn(&b).await, Turn::Go);
    }

    #[tokio::test]
    async fn resync_restarts_numbering_at_the_chain() {
        let seq = Sequencer::new(0);
        let (a, b) = (seq.acquire(), seq.acquire());
        a.resync(4);
        assert_eq!(turn(&b).await, Turn::Lost);
        let c = seq.acquire();
        assert_eq!(c.nonce(), 4);
        assert_eq!(turn(&c).await, Turn::Go);
    }

    #[tokio::test]
    async fn rebase_down_after_a_reorg_voids_open_leases_and_numbers_from_the_chain() {
        // 0..3 were broadcast, then the chain lost 2 and 3 (orphaned by a reorg).
        let seq = Sequencer::new(0);
        for _ in 0..4 {
            let l = seq.acquire();
            assert_eq!(turn(&l).await, Turn::Go);
            l.sent();
        }
        let waiting = seq.acquire();
        assert_eq!(waiting.nonce(), 4);
        seq.rebase(2);
        assert_eq!(seq.sent(), 2);
        assert_eq!(
            turn(&waiting).await,
            Turn::Lost,
            "4 would be a queued tx now"
        );
        let again = seq.acquire();
        assert_eq!(again.nonce(), 2, "the first nonce the chain lacks");
        assert_eq!(turn(&again).await, Turn::Go);
        again.sent();
        drop(waiting);
        assert_eq!((seq.next(), seq.sent()), (3, 3));
    }

    #[tokio::test]
    async fn rebase_up_moves_past_nonces_taken_elsewhere() {
        let seq = Sequencer::new(5);
        seq.rebase(8);
        let l = seq.acquire();
        assert_eq!(l.nonce(), 8);
        assert_eq!(turn(&l).await, Turn::Go);
    }

    #[tokio::test]
    async fn a_send_that_raced_a_rebase_does_not_move_the_frontier() {
        let seq = Sequencer::new(10);
        let l = seq.acquire();
        assert_eq!(turn(&l).await, Turn::Go);
        // The poller rebases while this job is on the wire; its `sent` must not count.
        seq.rebase(7);
        l.sent();
        assert_eq!((seq.next(), seq.sent()), (7, 7));
        let next = seq.acquire();
        assert_eq!(next.nonce(), 7);
    }
}
