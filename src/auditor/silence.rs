//! Seats that stopped voting: for every executed nonce (below `lowerHandleNonce`) the auditor
//! has seen the votes of, each seat in the operator list either voted it or adds one to its
//! streak of misses. A streak of [`limit`] misses is reported once (WARN) and counted in
//! `bridge_silent_seats` until the seat votes again.
//!
//! A seat standing by (its turn comes t of every N nonces) misses at most N − t nonces in a
//! row, so the limit is well above that. The common case is Kaia's deployer: its constructor
//! registers it as an operator, and a deployment that forgot to deregister it has a seat that
//! never votes (and so a threshold one seat harder to reach than it looks).

use alloy::primitives::Address;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Misses in a row before a seat counts as silent, at the least.
const SILENT_AFTER: u64 = 16;

/// The streak that makes a seat of an `n`-seat bridge silent.
pub fn limit(n: usize) -> u64 {
    SILENT_AFTER.max(2 * n as u64)
}

#[derive(Debug, Default)]
pub struct Silence {
    /// Nonces from here on are judged (earlier ones may have votes from before the start).
    from_nonce: Option<u64>,
    /// Voters seen per nonce not yet judged.
    voters: BTreeMap<u64, HashSet<Address>>,
    /// The first nonce not yet judged.
    next: u64,
    streak: HashMap<Address, u64>,
    warned: HashSet<Address>,
}

impl Silence {
    /// Starts judging at `nonce` (the source's requestNonce when the auditor started).
    pub fn start_at(&mut self, nonce: u64) {
        if self.from_nonce.is_none() {
            self.from_nonce = Some(nonce);
            self.next = nonce;
        }
    }

    pub fn started(&self) -> bool {
        self.from_nonce.is_some()
    }

    pub fn saw(&mut self, nonce: u64, operator: Address) {
        if self.from_nonce.is_some_and(|f| nonce >= f) && nonce >= self.next {
            self.voters.entry(nonce).or_default().insert(operator);
        }
    }

    /// Judges every nonce below `lower` not judged yet against `operators`; returns the seats
    /// that just became silent (to warn about once) and how many are silent now.
    pub fn judge(&mut self, lower: u64, operators: &[Address]) -> (Vec<(Address, u64)>, u64) {
        let limit = limit(operators.len());
        let mut newly = Vec::new();
        while self.from_nonce.is_some() && self.next < lower {
            let voted = self.voters.remove(&self.next).unwrap_or_default();
            for op in operators {
                let s = self.streak.entry(*op).or_default();
                if voted.contains(op) {
                    *s = 0;
                    self.warned.remove(op);
                } else {
                    *s += 1;
                    if *s >= limit && self.warned.insert(*op) {
                        newly.push((*op, *s));
                    }
                }
            }
            self.next += 1;
        }
        // Seats no longer in the list are forgotten.
        self.streak.retain(|a, _| operators.contains(a));
        self.warned.retain(|a| operators.contains(a));
        (newly, self.warned.len() as u64)
    }
}

impl Silence {
    /// The seats silent now.
    pub fn silent(&self) -> impl Iterator<Item = Address> + '_ {
        self.warned.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_that_never_votes_is_reported_once_and_cleared_when_it_votes() {
        let ops: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
        let (deployer, seated) = (ops[3], &ops[..3]);
        let mut s = Silence::default();
        s.saw(0, ops[0]); // before the start: ignored
        s.start_at(10);
        let l = limit(ops.len());
        for n in 10..10 + l - 1 {
            for op in seated {
                s.saw(n, *op);
            }
        }
        assert_eq!(s.judge(10 + l - 1, &ops), (vec![], 0), "not yet");
        for op in seated {
            s.saw(10 + l - 1, *op);
        }
        assert_eq!(s.judge(10 + l, &ops), (vec![(deployer, l)], 1));
        assert_eq!(s.judge(10 + l + 3, &ops), (vec![], 1), "warned once only");
        s.saw(10 + l + 3, deployer);
        assert_eq!(s.judge(10 + l + 4, &ops).1, 0, "it voted: cleared");
    }

    #[test]
    fn standby_turns_are_not_silence() {
        // N = 4, t = 3: each seat misses one nonce in four.
        let ops: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
        let mut s = Silence::default();
        s.start_at(0);
        for n in 0..200u64 {
            for (i, op) in ops.iter().enumerate() {
                if (i as u64 + 4 - n % 4) % 4 < 3 {
                    s.saw(n, *op);
                }
            }
        }
        assert_eq!(s.judge(200, &ops), (vec![], 0));
    }
}
