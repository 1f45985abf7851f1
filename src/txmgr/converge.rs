//! Convergence: on every mined-nonce poll the manager compares the chain's view of the account
//! with its own and repairs the difference, so the account never keeps a hole or a queue.
//!
//! ```text
//!  poll: latest (mined count) ─ went down? log it (destination reorg)
//!        sent frontier S (every nonce < S was broadcast) ─ latest ≥ S: all mined, done
//!        pending count p (the node's pool included) ─ p ≥ S: the node has everything, done
//!        p < S on two polls in a row (reorg orphaned, node dropped or never got them):
//!          for n in p..S, lowest first:
//!            a tracked tx at n      ─> re-send its last signed bytes ("already known" if the
//!                                      node has it after all; repairs at most every 3 s)
//!            a tracked tx above n   ─> fill n with a copy of the nearest one's vote (the
//!                                      guard's journal sees the same vote at another nonce)
//!            nothing tracked above  ─> rebase the sequencer to n: new work goes there
//!  wedged: the chain's next nonce unmined for `wedged_after` while blocks are produced
//! ```
//!
//! Why fill rather than renumber: a transaction queued above a hole stays in the node's pool
//! whatever this manager does (it cannot cancel it: the guard signs bridge calls only), so the
//! hole must be filled for it to be mined or replaced; renumbering it downwards would leave its
//! old copy queued above a new hole. A filled copy costs a vote that changes nothing (the bridge
//! keeps one vote per operator and nonce) or reverts as already executed.
//!
//! Mined votes a reorg orphaned were reported `Mined` already: whether the request still needs
//! a vote is recovery's call (it re-feeds unexecuted requests); here the account only gets its
//! nonces back in line, and new or re-sent transactions go at the chain's nonce.

use super::Inner;
use super::error::SendRejection;
use crate::chain::BlockTag;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

/// Polls in a row that must see the same hole before it is repaired (a send can be between
/// the two reads, or an endpoint behind another).
const HOLE_POLLS: u32 = 2;
/// Least time between two repairs: a node whose "pending" count ignores its pool looks like it
/// lost everything on every poll; it then gets the tracked transactions again at most this
/// often ("already known"), not on every poll.
const REPAIR_GAP: Duration = Duration::from_secs(3);

/// The lowest pending nonce of a sender that stopped being mined while its chain went on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wedged {
    /// The account's next nonce on chain: the transaction that is not being mined.
    pub nonce: u64,
    /// When that nonce was first seen unmined.
    pub since: SystemTime,
}

impl Wedged {
    /// [`Wedged::since`] in seconds since the Unix epoch.
    pub fn since_unix(&self) -> u64 {
        unix(self.since)
    }
}

/// The poller's memory between two polls.
#[derive(Debug, Default)]
pub(crate) struct Converger {
    /// The hole seen last poll and how many polls in a row saw it.
    hole: Option<(u64, u32)>,
    stall: Option<Stall>,
    /// No repair before this (see [`REPAIR_GAP`]).
    quiet_until: Option<Instant>,
}

#[derive(Debug)]
struct Stall {
    mined: u64,
    since: Instant,
    since_wall: SystemTime,
}

impl Converger {
    /// One poll's check; `latest` is the mined count just read, `prev` the one published
    /// before it (by the last poll, or by [`super::TxManager::realign`]).
    pub(crate) async fn check(&mut self, inner: &Inner, prev: u64, latest: u64) {
        went_down(inner, prev, latest);
        self.watch_stall(inner, latest).await;
        let sent = inner.seq.sent();
        if latest >= sent {
            self.hole = None;
            return;
        }
        let pending = match inner
            .client
            .transaction_count(inner.address, BlockTag::Pending)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(chain = %inner.cfg.chain, error = %e, "pending nonce read failed");
                return;
            }
        };
        // After a failover the count may be another deployment's, and nothing may be sent
        // there before the bridge check passes: no repair until it did.
        if pending >= sent || !inner.client.sends_open() {
            self.hole = None;
            return;
        }
        let seen = match self.hole {
            Some((p, n)) if p == pending => n + 1,
            _ => 1,
        };
        self.hole = Some((pending, seen));
        if seen >= HOLE_POLLS && self.quiet_until.is_none_or(|t| Instant::now() >= t) {
            self.hole = None;
            repair(inner, pending, sent).await;
            self.quiet_until = Some(Instant::now() + REPAIR_GAP);
        }
    }

    /// Tracks how long the chain's next nonce has stayed unmined while something is pending,
    /// and sets or clears [`Inner::wedged`].
    async fn watch_stall(&mut self, inner: &Inner, latest: u64) {
        if inner.in_flight_count() == 0 {
            self.clear_stall(inner);
            return;
        }
        let moved = self.stall.as_ref().is_none_or(|s| s.mined != latest);
        if moved {
            self.clear_stall(inner);
            self.stall = Some(Stall {
                mined: latest,
                since: Instant::now(),
                since_wall: SystemTime::now(),
            });
            return;
        }
        let Some(stall) = &self.stall else { return };
        if stall.since.elapsed() < inner.cfg.wedged_after || inner.wedged().is_some() {
            return;
        }
        // Wedged only while the chain moves on: a block made after the stall began.
        let since_unix = unix(stall.since_wall);
        match inner.client.latest_block().await {
            Ok(head) if head.timestamp > since_unix => {
                let wedged = Wedged {
                    nonce: latest,
                    since: stall.since_wall,
                };
                warn!(alarm = "sender_wedged", chain = %inner.cfg.chain, address = %inner.address,
                    nonce = latest, unmined_for_secs = stall.since.elapsed().as_secs(), head = head.number,
                    "the operator's lowest pending transaction is not being mined while the chain moves on: \
                     check the fee cap (fees.max_fee_gwei) against the chain's base fee, and the node's pool");
                *inner.wedged.lock().unwrap_or_else(|e| e.into_inner()) = Some(wedged);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(chain = %inner.cfg.chain, error = %e, "head read failed"),
        }
    }

    /// Forgets the stall; logs when a wedged sender moves again.
    pub(crate) fn clear_stall(&mut self, inner: &Inner) {
        self.stall = None;
        let was = inner
            .wedged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = was {
            info!(chain = %inner.cfg.chain, nonce = w.nonce, "the operator's transactions are being mined again (no longer wedged)");
        }
    }
}

/// Seconds since the Unix epoch of `t` (0 before it).
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// One repair step for one nonce.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// A tracked transaction holds the nonce: re-send it (if the node lost it).
    Resend(u64),
    /// Nothing tracked holds the nonce but something tracked sits above: fill it with a copy
    /// of the vote at `copy_of` (the nearest above).
    Fill { nonce: u64, copy_of: u64 },
    /// Nothing tracked at or above: new transactions start here.
    Rebase(u64),
}

/// What to do for each nonce in `pending..sent`, lowest first, given the tracked nonces.
fn plan(pending: u64, sent: u64, tracked: &[u64]) -> Vec<Step> {
    let mut steps = Vec::new();
    for n in pending..sent {
        if tracked.contains(&n) {
            steps.push(Step::Resend(n));
        } else if let Some(&above) = tracked.iter().filter(|&&k| k > n).min() {
            steps.push(Step::Fill {
                nonce: n,
                copy_of: above,
            });
        } else {
            steps.push(Step::Rebase(n));
            break;
        }
    }
    steps
}

/// Makes every nonce in `pending..sent` present in the node's pool again, lowest first (see the
/// module docs and [`plan`]).
async fn repair(inner: &Inner, pending: u64, sent: u64) {
    let tracked = inner.in_flight_from(pending);
    let nonces: Vec<u64> = tracked.iter().map(|(n, _)| *n).collect();
    let at = |n: u64| tracked.iter().find(|(k, _)| *k == n).map(|(_, f)| f);
    warn!(chain = %inner.cfg.chain, address = %inner.address, pending, sent, tracked = tracked.len(),
        "the node lacks transactions this manager broadcast (reorg, dropped from its pool, or a new node); repairing");
    for step in plan(pending, sent, &nonces) {
        // A failover during the repair holds the rest until the bridge is verified again.
        if !inner.client.sends_open() {
            return;
        }
        match step {
            Step::Resend(n) => {
                let Some(here) = at(n) else { continue };
                match inner.client.send_raw_transaction(&here.last.raw).await {
                    Ok(_) => {
                        inner.cfg.metrics.nonce_repairs_resend.inc();
                        info!(chain = %inner.cfg.chain, label = %here.job.label, nonce = n, tx = %here.last.hash, "re-sent a transaction the node lost");
                    }
                    Err(e) => {
                        tracing::debug!(chain = %inner.cfg.chain, nonce = n, error = %e, "re-send answered")
                    }
                }
            }
            Step::Rebase(n) => {
                inner.cfg.metrics.nonce_repairs_rebase.inc();
                warn!(chain = %inner.cfg.chain, address = %inner.address, nonce = n, was = sent,
                    "nothing of this manager's is pending from here on; new transactions start at the chain's nonce");
                inner.seq.rebase(n);
                return;
            }
            Step::Fill { nonce, copy_of } => {
                let Some(above) = at(copy_of) else { continue };
                if !fill(inner, nonce, &above.job).await {
                    return;
                }
            }
        }
    }
}

/// Sends a copy of `job`'s vote at `nonce`; false when it could not (retry at the next poll).
async fn fill(inner: &Inner, nonce: u64, job: &super::Job) -> bool {
    let fees = match inner.initial_fees().await {
        Ok(f) => f,
        Err(e) => {
            warn!(chain = %inner.cfg.chain, nonce, error = %e, "cannot price a gap filler; retrying at the next poll");
            return false;
        }
    };
    let filler = match inner.sign(job, nonce, fees).await {
        Ok(s) => s,
        Err(e) => {
            warn!(chain = %inner.cfg.chain, nonce, error = %e, "cannot sign a gap filler; retrying at the next poll");
            return false;
        }
    };
    match inner.client.send_raw_transaction(&filler.raw).await {
        Ok(_) => {
            inner.cfg.metrics.nonce_repairs_gap_fill.inc();
            warn!(chain = %inner.cfg.chain, label = %job.label, nonce, tx = %filler.hash,
                "filled a nonce gap below queued transactions with a copy of the next vote");
            true
        }
        Err(e) => match SendRejection::of(&e) {
            // Something holds the nonce in the pool already: the gap is not there.
            SendRejection::AlreadyKnown | SendRejection::Underpriced => true,
            _ => {
                warn!(chain = %inner.cfg.chain, nonce, error = %e, "gap filler not taken; retrying at the next poll");
                false
            }
        },
    }
}

/// Counts and reports a mined count that went down from `prev` to `latest` (a destination
/// reorg). Every reader publishes what it read in `Inner::mined`, so one dip counts once.
pub(crate) fn went_down(inner: &Inner, prev: u64, latest: u64) {
    if latest < prev {
        inner.cfg.metrics.nonce_went_down.inc();
        warn!(chain = %inner.cfg.chain, address = %inner.address, from = prev, to = latest,
            "the account's mined nonce went down (the chain reorganised); re-aligning nonces");
    }
}

/// Registry entries of the transactions being tracked, shared by the trackers and the poller.
pub(crate) type Registry = Mutex<std::collections::BTreeMap<(u64, u64), super::tracker::InFlight>>;

#[cfg(test)]
mod tests {
    use super::Step::*;
    use super::*;

    /// What happened, pending count, sent frontier, tracked nonces, the steps wanted.
    type Case = (&'static str, u64, u64, &'static [u64], Vec<Step>);

    #[test]
    fn each_difference_gets_its_repair() {
        let cases: &[Case] = &[
            (
                "the node dropped every pending tx",
                5,
                8,
                &[5, 6, 7],
                vec![Resend(5), Resend(6), Resend(7)],
            ),
            (
                "one dropped in the middle",
                6,
                8,
                &[5, 6, 7],
                vec![Resend(6), Resend(7)],
            ),
            (
                "a reorg orphaned mined txs, nothing pending",
                3,
                6,
                &[],
                vec![Rebase(3)],
            ),
            (
                "a reorg orphaned mined txs below a queued one",
                5,
                8,
                &[7],
                vec![
                    Fill {
                        nonce: 5,
                        copy_of: 7,
                    },
                    Fill {
                        nonce: 6,
                        copy_of: 7,
                    },
                    Resend(7),
                ],
            ),
            (
                "a hole between tracked txs",
                6,
                9,
                &[5, 8],
                vec![
                    Fill {
                        nonce: 6,
                        copy_of: 8,
                    },
                    Fill {
                        nonce: 7,
                        copy_of: 8,
                    },
                    Resend(8),
                ],
            ),
            (
                "the top lost and nothing tracked there",
                6,
                8,
                &[5],
                vec![Rebase(6)],
            ),
            ("nothing missing", 8, 8, &[5, 6, 7], vec![]),
        ];
        for (what, pending, sent, tracked, want) in cases {
            assert_eq!(&plan(*pending, *sent, tracked), want, "{what}");
        }
    }
}
