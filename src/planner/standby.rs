//! Requests that are another seat's turn (see [`super::Seats`]), held until the destination
//! shows that they need this operator's vote.
//!
//! ```text
//! every standby_delay, while anything is held: read lowerHandleNonce (one call)
//!   held nonce < lowerHandleNonce                ─> executed: drop it
//!   lowerHandleNonce has not moved since the last tick
//!     (the lowest pending transfer is stuck)     ─> release every request held ≥ standby_delay
//!   it moved                                     ─> the seats whose turn it is are getting
//!                                                   through, however slowly: keep holding
//! ```
//!
//! "Stuck" is the same rule as recovery's stall: a held nonce is at or above `lowerHandleNonce`,
//! so the nonce at `lowerHandleNonce` was already requested, and pending, at the previous tick;
//! a request that arrived since cannot make it look stuck (an empty queue forgets the reading).
//!
//! A fixed wait would not do: when the chain is slow or the agents are busy, every transfer
//! takes longer than any delay chosen for a quiet chain, and each seat standing by would then
//! cast a vote past the threshold, adding load exactly when there is least room for it. Held
//! requests live in memory only; after a restart, recovery's stalled check covers them.

use crate::votes::Request;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Standby {
    delay: Duration,
    held: BTreeMap<u64, (Request, Instant)>,
    /// `lowerHandleNonce` at the previous tick, while anything was held.
    last_lower: Option<u64>,
}

impl Standby {
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            held: BTreeMap::new(),
            last_lower: None,
        }
    }

    /// Time between two ticks.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn hold(&mut self, req: Request) {
        self.held.insert(req.nonce, (req, Instant::now()));
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Given the destination's `lowerHandleNonce` now: drops what it executed, and returns the
    /// requests to vote on now (held at least the delay, while handle progress is stuck).
    pub fn tick(&mut self, lower: u64) -> Vec<Request> {
        self.tick_at(lower, Instant::now())
    }

    fn tick_at(&mut self, lower: u64, now: Instant) -> Vec<Request> {
        self.held = self.held.split_off(&lower);
        let stuck = self.last_lower == Some(lower);
        self.last_lower = (!self.held.is_empty()).then_some(lower);
        if !stuck {
            return Vec::new();
        }
        let due: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= self.delay)
            .map(|(n, _)| *n)
            .collect();
        due.into_iter()
            .filter_map(|n| self.held.remove(&n).map(|(r, _)| r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::TokenType;
    use alloy::primitives::{Address, B256, Bytes, U256};

    fn req(nonce: u64) -> Request {
        Request {
            tx_hash: B256::ZERO,
            block_number: 1,
            token_type: TokenType::Native,
            from: Address::ZERO,
            to: Address::ZERO,
            token: Address::ZERO,
            value_or_id: U256::from(1),
            nonce,
            fee: U256::ZERO,
            extra_data: Bytes::new(),
            token_uri: None,
        }
    }

    const D: Duration = Duration::from_secs(3);

    #[test]
    fn progress_keeps_holding_and_executed_ones_are_dropped() {
        let mut s = Standby::new(D);
        let t0 = Instant::now();
        s.hold(req(5));
        s.hold(req(9));
        assert!(s.tick_at(3, t0 + D).is_empty(), "first tick only looks");
        assert!(s.tick_at(4, t0 + 2 * D).is_empty(), "moved: keep holding");
        assert!(s.tick_at(7, t0 + 3 * D).is_empty(), "moved past 5");
        assert_eq!(s.len(), 1, "5 executed and dropped");
        assert!(s.tick_at(10, t0 + 4 * D).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn stuck_progress_releases_what_was_held_long_enough() {
        let mut s = Standby::new(D);
        let t0 = Instant::now();
        s.hold(req(5));
        assert!(s.tick_at(5, t0 + D).is_empty());
        let released = s.tick_at(5, t0 + 2 * D);
        assert_eq!(released.iter().map(|r| r.nonce).collect::<Vec<_>>(), [5]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_request_held_only_briefly_waits_for_a_later_tick() {
        let mut s = Standby::new(D);
        let t0 = Instant::now();
        s.hold(req(5));
        assert!(s.tick_at(5, t0).is_empty());
        // Stuck, but 6 came in just now.
        s.held.insert(6, (req(6), t0 + 2 * D));
        let released = s.tick_at(5, t0 + 2 * D);
        assert_eq!(released.iter().map(|r| r.nonce).collect::<Vec<_>>(), [5]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn an_empty_queue_forgets_the_last_reading() {
        let mut s = Standby::new(D);
        let t0 = Instant::now();
        s.hold(req(5));
        assert!(s.tick_at(5, t0).is_empty());
        assert!(s.tick_at(6, t0 + D).is_empty());
        assert!(s.is_empty());
        // A new request at the same lowerHandleNonce is not judged against the old reading.
        s.hold(req(6));
        s.held.insert(6, (req(6), t0));
        assert!(s.tick_at(6, t0 + 2 * D).is_empty());
        assert_eq!(s.tick_at(6, t0 + 3 * D).len(), 1);
    }
}
