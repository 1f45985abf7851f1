//! Whose turn it is to vote on a request nonce: asked by the planner (vote now or hold) and by
//! recovery (leave another seat's turn alone at start); the auditor reports silent seats here.
//!
//! With N operators and threshold t < N, the t seats starting at `nonce mod N` in the
//! destination bridge's operator list vote at once; the other N − t hold the request (see
//! `planner::Standby`) and vote only if handle progress gets stuck on it. Every agent reads
//! the same list, so the turns agree without talking; where they briefly disagree (a list read
//! during a rotation, a read that failed), the agent votes at once: an extra vote costs gas, a
//! missing one costs time.
//!
//! ```text
//! seat = position of this operator's key in getOperatorList()   (re-read every REFRESH)
//! rank = (seat − nonce) mod N
//! rank < t ─> vote now        rank ≥ t ─> Standby::hold
//! ```
//!
//! Seats the auditor found silent (no vote on many executed nonces in a row, e.g. Kaia's
//! forgotten deployer seat) are left out of the list: a turn given to a seat that never votes
//! would leave that nonce one vote short until the standby seats give up waiting. Each agent's
//! auditor reads the same chain, so they agree up to timing.

use crate::chain::ChainClient;
use crate::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use crate::txmgr::ActiveKey;
use alloy::primitives::{Address, B256, keccak256};
use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long one read of the operator list and threshold is trusted.
const REFRESH: Duration = Duration::from_secs(30);

/// The destination's operator list and value-transfer threshold, as last read.
#[derive(Debug, Clone)]
struct Roster {
    read_at: Instant,
    operators: Vec<Address>,
    threshold: usize,
}

/// Seats the auditor found silent (see `auditor/silence.rs`), shared with [`Seats`].
#[derive(Debug, Clone, Default)]
pub struct SilentSeats(Arc<RwLock<HashSet<Address>>>);

impl SilentSeats {
    /// Replaces the set.
    pub fn set(&self, seats: impl IntoIterator<Item = Address>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = seats.into_iter().collect();
    }

    fn snapshot(&self) -> HashSet<Address> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub struct Seats {
    dest: ChainClient,
    bridge: Address,
    own: ActiveKey,
    /// Off when the chain's standby delay is zero: every operator votes at once.
    enabled: bool,
    roster: Mutex<Option<Roster>>,
    silent: SilentSeats,
}

impl Seats {
    pub fn new(dest: ChainClient, bridge: Address, own: ActiveKey, enabled: bool) -> Self {
        Self {
            dest,
            bridge,
            own,
            enabled,
            roster: Mutex::new(None),
            silent: SilentSeats::default(),
        }
    }

    /// Whether `nonce` is another seat's turn: false when this operator is among the t whose
    /// turn it is, when standing by is off (zero delay), or when it cannot tell.
    pub async fn stands_by(&self, nonce: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(roster) = self.roster().await else {
            return false;
        };
        let me = self.own.address();
        let turns = in_turn(&roster.operators, &self.silent.snapshot(), me);
        turns
            .iter()
            .position(|a| *a == me)
            .is_some_and(|seat| rank(seat, nonce, turns.len()) >= roster.threshold)
    }

    /// The set the auditor keeps up to date.
    pub fn silent(&self) -> SilentSeats {
        self.silent.clone()
    }

    /// keccak256 of the destination's operator set (sorted: order does not matter here), as
    /// last read; `None` when it cannot be read now. Own-vote memory compares it with the one
    /// stored at vote time: a changed operator set is a reason to vote again.
    pub async fn operators_hash(&self) -> Option<B256> {
        let mut ops = self.roster().await?.operators;
        ops.sort_unstable();
        Some(keccak256(
            ops.iter().flat_map(|a| a.into_array()).collect::<Vec<u8>>(),
        ))
    }

    async fn roster(&self) -> Option<Roster> {
        let mut cached = self.roster.lock().await;
        if let Some(r) = cached.as_ref()
            && r.read_at.elapsed() < REFRESH
        {
            return Some(r.clone());
        }
        match self.read().await {
            Ok(r) => {
                *cached = Some(r.clone());
                Some(r)
            }
            Err(e) => {
                // Kept short: the next request tries again.
                tracing::debug!(error = %e, "cannot read the operator list; voting at once");
                None
            }
        }
    }

    async fn read(&self) -> Result<Roster, crate::chain::ChainError> {
        let bridge = self.bridge;
        let operators = self
            .dest
            .run("Bridge.getOperatorList", move |p| async move {
                Bridge::new(bridge, p).getOperatorList().call().await
            })
            .await?;
        let threshold = self
            .dest
            .run("Bridge.operatorThresholds", move |p| async move {
                Bridge::new(bridge, p)
                    .operatorThresholds(VOTE_TYPE_VALUE_TRANSFER)
                    .call()
                    .await
            })
            .await?;
        Ok(Roster {
            read_at: Instant::now(),
            operators,
            // A threshold of N or more leaves nobody standing by (0 is taken as 1).
            threshold: usize::from(threshold).max(1),
        })
    }
}

/// The seats that take turns: the list without the silent ones (never without this operator).
fn in_turn(operators: &[Address], silent: &HashSet<Address>, me: Address) -> Vec<Address> {
    operators
        .iter()
        .filter(|a| **a == me || !silent.contains(*a))
        .copied()
        .collect()
}

/// Position of `seat` counted from the seat whose turn comes first for `nonce`.
fn rank(seat: usize, nonce: u64, n: usize) -> usize {
    let first = (nonce % n as u64) as usize;
    (seat + n - first) % n
}

#[cfg(test)]
mod tests {
    use super::{in_turn, rank};
    use alloy::primitives::Address;
    use std::collections::HashSet;

    #[test]
    fn a_silent_seat_takes_no_turns_and_every_nonce_still_has_t_voters() {
        let ops: Vec<Address> = (1..=5).map(Address::repeat_byte).collect();
        let deployer = ops[2];
        let silent = HashSet::from([deployer]);
        let (t, me) = (3, ops[0]);
        let turns = in_turn(&ops, &silent, me);
        assert_eq!(turns.len(), 4);
        assert!(!turns.contains(&deployer));
        for nonce in 0..40u64 {
            let voters = (0..turns.len())
                .filter(|&s| rank(s, nonce, turns.len()) < t)
                .count();
            assert_eq!(voters, t, "nonce {nonce}");
        }
        // This operator is never left out of its own list.
        assert_eq!(in_turn(&ops, &HashSet::from([me]), me).len(), 5);
    }

    #[test]
    fn each_nonce_has_exactly_t_seats_in_turn_and_every_seat_takes_turns() {
        let (n, t) = (4, 3);
        let mut turns = [0; 4];
        for nonce in 0..400u64 {
            let now: Vec<usize> = (0..n).filter(|&s| rank(s, nonce, n) < t).collect();
            assert_eq!(now.len(), t, "nonce {nonce}");
            for s in now {
                turns[s] += 1;
            }
        }
        assert_eq!(turns, [300; 4]);
    }

    #[test]
    fn rank_is_a_permutation_of_the_seats() {
        for n in 1..8 {
            for nonce in 0..20u64 {
                let mut ranks: Vec<usize> = (0..n).map(|s| rank(s, nonce, n)).collect();
                ranks.sort_unstable();
                assert_eq!(ranks, (0..n).collect::<Vec<_>>());
            }
        }
    }
}
