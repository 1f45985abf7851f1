//! Own-vote memory: whether this operator's recorded vote for a request still stands, so a
//! re-plan (recovery, standby, a restart) sends nothing.
//!
//! ```text
//! store.own_vote(nonce)?            none                       ─> vote (no memory)
//!   vote key differs from ours now                            ─> vote (we would build another)
//!   voter ≠ the key holding the seat now                      ─> vote (the seat moved)
//!   operator set hash ≠ the one at vote time (both known)     ─> vote (the set changed)
//!   receipt of the recorded tx: successful                     ─> stands: skip
//!                               failed                         ─> forget it, vote
//!                               none, but back in the node's pool ─> stands: skip
//!                               none (reorganised away)        ─> realign the tx manager's
//!                                 nonces to the chain, forget it, vote
//! ```
//!
//! Kaia's bridge has no view of votes, and an identical repeat is mined (and paid) every time;
//! our bridge's `voteOf` would answer too, but this is one local read and one receipt read
//! either way. A receipt is only given for a canonical transaction, so a vote whose block was
//! orphaned is voted again; one the node re-included elsewhere still stands.

use super::{PlanError, Planner};

impl Planner {
    /// Whether this operator's recorded vote for `nonce` (with vote key `key`) still stands.
    pub(super) async fn own_vote_stands(
        &self,
        nonce: u64,
        key: alloy::primitives::B256,
    ) -> Result<bool, PlanError> {
        let dir = self.cfg.direction;
        let Some(v) = self.store.own_vote(dir, nonce)? else {
            return Ok(false);
        };
        if v.vote_key != key {
            tracing::info!(direction = %dir, nonce, recorded = %v.vote_key, now = %key,
                "the recorded vote differs from the handle built now; voting again");
            return Ok(false);
        }
        let me = self.txm.address();
        if v.voter != me {
            tracing::info!(direction = %dir, nonce, recorded = %v.voter, seat = %me,
                "the recorded vote was sent by a key that no longer holds the seat; voting again");
            return Ok(false);
        }
        if let (Some(then), Some(now)) = (v.operators_hash, self.seats.operators_hash().await)
            && then != now
        {
            tracing::info!(direction = %dir, nonce,
                "the destination's operator set changed since this vote; voting again");
            return Ok(false);
        }
        match self.dest.transaction_receipt(v.tx_hash).await? {
            Some(r) if r.status() => {
                tracing::debug!(direction = %dir, nonce, tx = %v.tx_hash,
                    "own vote recorded and still canonical; not voting again");
                Ok(true)
            }
            Some(_) => {
                tracing::info!(direction = %dir, nonce, tx = %v.tx_hash, block = v.block_number,
                    "this operator's recorded vote now fails; voting again");
                self.store.forget_own_vote(dir, nonce)?;
                Ok(false)
            }
            None => {
                // Orphaned by a reorg. A node that put it back in its pool (geth does) mines it
                // again: it still stands, and a second copy would be a repeat vote.
                if self.dest.transaction_block(v.tx_hash).await? == Some(None) {
                    tracing::info!(direction = %dir, nonce, tx = %v.tx_hash,
                        "this operator's recorded vote was reorganised back into the pool; not voting again");
                    return Ok(true);
                }
                // The new vote must take the orphaned one's account nonce, not the next one.
                self.txm.current().realign().await?;
                tracing::info!(direction = %dir, nonce, tx = %v.tx_hash, block = v.block_number,
                    "this operator's recorded vote is no longer on the canonical chain; voting again");
                self.store.forget_own_vote(dir, nonce)?;
                Ok(false)
            }
        }
    }
}
