//! What this operator knows about its own votes beyond the request's state (schema 2).
//!
//! ```text
//! own_votes     the last mined, successful vote of this operator per request: its key, the
//!               voting address, tx hash and block, and the hash of the operator list then.
//!               A re-plan skips the vote while that tx is still canonical, the voter still
//!               holds the seat and the operator list is unchanged (Kaia's bridge mines, and
//!               charges for, every repeat of an identical vote and has no view to ask first)
//! unexecutable  requests that can never execute (a refused payout, a failing mint, a nonce
//!               closed by a different handle): no more votes are sent for them
//! audit_cursor  the auditor's next destination block, so a restart reads the blocks mined
//!               while the agent was down (and finds its own votes mined as it stopped)
//! ```

use super::{Store, StoreError, now_secs};
use crate::direction::Direction;
use alloy::primitives::{Address, B256};

/// Tables added in schema version 2 (created if missing: an older file gains them empty).
pub(super) const SQLITE_V2: &str = "
CREATE TABLE IF NOT EXISTS own_votes (
    direction      TEXT    NOT NULL,
    nonce          INTEGER NOT NULL,
    vote_key       BLOB    NOT NULL,
    voter          BLOB    NOT NULL,
    tx_hash        BLOB    NOT NULL,
    block_number   INTEGER NOT NULL,
    operators_hash BLOB,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (direction, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unexecutable (
    direction   TEXT    NOT NULL,
    nonce       INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (direction, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_cursor (
    direction  TEXT    PRIMARY KEY,
    next_block INTEGER NOT NULL
);
";

/// [`SQLITE_V2`] in PostgreSQL's types.
pub(super) const POSTGRES_V2: &str = "
CREATE TABLE IF NOT EXISTS own_votes (
    direction      TEXT   NOT NULL,
    nonce          BIGINT NOT NULL,
    vote_key       BYTEA  NOT NULL,
    voter          BYTEA  NOT NULL,
    tx_hash        BYTEA  NOT NULL,
    block_number   BIGINT NOT NULL,
    operators_hash BYTEA,
    recorded_at    BIGINT NOT NULL,
    PRIMARY KEY (direction, nonce)
);
CREATE TABLE IF NOT EXISTS unexecutable (
    direction   TEXT   NOT NULL,
    nonce       BIGINT NOT NULL,
    reason      TEXT   NOT NULL,
    detail      TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (direction, nonce)
);
CREATE TABLE IF NOT EXISTS audit_cursor (
    direction  TEXT   PRIMARY KEY,
    next_block BIGINT NOT NULL
);
";

/// This operator's mined, successful vote for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnVote {
    pub nonce: u64,
    /// keccak256 of the calldata voted.
    pub vote_key: B256,
    /// The address that sent it (the seat's key at the time).
    pub voter: Address,
    pub tx_hash: B256,
    pub block_number: u64,
    /// keccak256 of the destination's operator list when the vote was sent, if it was known.
    pub operators_hash: Option<B256>,
}

/// Why a request can never execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnexecutableReason {
    /// The native payout was refused by the recipient (Kaia: "handleKLAYTransfer: transfer
    /// failed"); the closing vote reverts every time.
    PayoutRefused,
    /// The destination token's mint failed (Kaia: "mint failed").
    MintFailed,
    /// The nonce was closed by a handle for a different request (after a source reorg deeper
    /// than the confirmation depth): this request's handle can never pass.
    ClosedByOtherRequest,
}

impl UnexecutableReason {
    pub const ALL: [Self; 3] = [
        Self::PayoutRefused,
        Self::MintFailed,
        Self::ClosedByOtherRequest,
    ];

    /// The name in the store, logs and the `reason` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PayoutRefused => "payout_refused",
            Self::MintFailed => "mint_failed",
            Self::ClosedByOtherRequest => "closed_by_other_request",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl Store {
    /// Records (or replaces) this operator's last mined vote for a request.
    pub fn record_own_vote(&self, direction: Direction, vote: &OwnVote) -> Result<(), StoreError> {
        let nonce = self.int("nonce", vote.nonce)?;
        let block = self.int("block", vote.block_number)?;
        self.execute(
            "INSERT INTO own_votes (direction, nonce, vote_key, voter, tx_hash, block_number,
                                    operators_hash, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (direction, nonce) DO UPDATE SET
                 vote_key = excluded.vote_key, voter = excluded.voter, tx_hash = excluded.tx_hash,
                 block_number = excluded.block_number, operators_hash = excluded.operators_hash,
                 recorded_at = excluded.recorded_at",
            vec![
                direction.as_str().into(),
                nonce.into(),
                vote.vote_key.as_slice().into(),
                vote.voter.as_slice().into(),
                vote.tx_hash.as_slice().into(),
                block.into(),
                vote.operators_hash.map(|h| h.to_vec()).into(),
                now_secs().into(),
            ],
        )?;
        Ok(())
    }

    /// This operator's recorded vote for `nonce`, if any.
    pub fn own_vote(
        &self,
        direction: Direction,
        nonce: u64,
    ) -> Result<Option<OwnVote>, StoreError> {
        let n = self.int("nonce", nonce)?;
        let rows = self.query(
            "SELECT vote_key, voter, tx_hash, block_number, operators_hash FROM own_votes
             WHERE direction = $1 AND nonce = $2",
            vec![direction.as_str().into(), n.into()],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let voter = r.bytes(1)?;
        let voter = Address::try_from(voter)
            .map_err(|_| self.corrupt(format!("own_votes voter has {} bytes", voter.len())))?;
        Ok(Some(OwnVote {
            nonce,
            vote_key: self.hash(r.bytes(0)?, "own_votes vote_key")?,
            voter,
            tx_hash: self.hash(r.bytes(2)?, "own_votes tx_hash")?,
            block_number: r.int(3)? as u64,
            operators_hash: r
                .opt_bytes(4)?
                .map(|h| self.hash(h, "own_votes operators_hash"))
                .transpose()?,
        }))
    }

    /// Forgets the recorded vote for `nonce` (it was reorganised away).
    pub fn forget_own_vote(&self, direction: Direction, nonce: u64) -> Result<(), StoreError> {
        let nonce = self.int("nonce", nonce)?;
        self.execute(
            "DELETE FROM own_votes WHERE direction = $1 AND nonce = $2",
            vec![direction.as_str().into(), nonce.into()],
        )?;
        Ok(())
    }

    /// The auditor's next destination block of `direction`, if it ever saved one.
    pub fn audit_cursor(&self, direction: Direction) -> Result<Option<u64>, StoreError> {
        let rows = self.query(
            "SELECT next_block FROM audit_cursor WHERE direction = $1",
            vec![direction.as_str().into()],
        )?;
        Ok(rows
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .map(|n| n as u64))
    }

    pub fn set_audit_cursor(
        &self,
        direction: Direction,
        next_block: u64,
    ) -> Result<(), StoreError> {
        let next = self.int("next_block", next_block)?;
        self.execute(
            "INSERT INTO audit_cursor (direction, next_block) VALUES ($1, $2)
             ON CONFLICT (direction) DO UPDATE SET next_block = excluded.next_block",
            vec![direction.as_str().into(), next.into()],
        )?;
        Ok(())
    }

    /// Records that a request can never execute; `true` when it was not recorded before (the
    /// caller raises its one alarm then). `detail` is shown to operators: no secrets.
    pub fn record_unexecutable(
        &self,
        direction: Direction,
        nonce: u64,
        reason: UnexecutableReason,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let nonce = self.int("nonce", nonce)?;
        let added = self.execute(
            "INSERT INTO unexecutable (direction, nonce, reason, detail, recorded_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (direction, nonce) DO NOTHING",
            vec![
                direction.as_str().into(),
                nonce.into(),
                reason.as_str().into(),
                detail.into(),
                now_secs().into(),
            ],
        )?;
        Ok(added == 1)
    }

    /// Why `nonce` can never execute, if it was recorded so.
    pub fn unexecutable(
        &self,
        direction: Direction,
        nonce: u64,
    ) -> Result<Option<(UnexecutableReason, String)>, StoreError> {
        let n = self.int("nonce", nonce)?;
        let rows = self.query(
            "SELECT reason, detail FROM unexecutable WHERE direction = $1 AND nonce = $2",
            vec![direction.as_str().into(), n.into()],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let reason = r.text(0)?;
        let reason = UnexecutableReason::parse(reason)
            .ok_or_else(|| self.corrupt(format!("unexecutable reason {reason:?}")))?;
        Ok(Some((reason, r.text(1)?.to_owned())))
    }

    /// How many requests of `direction` are recorded unexecutable, per reason (every reason
    /// listed, zeros included).
    pub fn unexecutable_counts(
        &self,
        direction: Direction,
    ) -> Result<Vec<(UnexecutableReason, u64)>, StoreError> {
        let rows = self.query(
            "SELECT reason, COUNT(*) FROM unexecutable WHERE direction = $1 GROUP BY reason",
            vec![direction.as_str().into()],
        )?;
        let mut counts = Vec::with_capacity(rows.len());
        for r in &rows {
            counts.push((r.text(0)?.to_owned(), r.int(1)? as u64));
        }
        Ok(UnexecutableReason::ALL
            .into_iter()
            .map(|r| {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == r.as_str())
                    .map_or(0, |(_, n)| *n);
                (r, n)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, params};

    const P2C: Direction = Direction::ParentToChild;

    /// The schema as version 1 of the agent wrote it, verbatim.
    const SCHEMA_V1: &str = "
        CREATE TABLE cursors (direction TEXT PRIMARY KEY, next_block INTEGER NOT NULL,
                              last_block INTEGER, last_hash BLOB);
        CREATE TABLE requests (direction TEXT NOT NULL, nonce INTEGER NOT NULL,
                               tx_hash BLOB NOT NULL, block_number INTEGER NOT NULL,
                               block_hash BLOB NOT NULL, state TEXT NOT NULL, vote_hash BLOB,
                               updated_at INTEGER NOT NULL, PRIMARY KEY (direction, nonce))
                               WITHOUT ROWID;
        CREATE INDEX requests_by_state ON requests (direction, state, nonce);
        PRAGMA user_version = 1;";

    #[test]
    fn a_version_1_store_is_upgraded_in_place_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA_V1).unwrap();
            c.execute(
                "INSERT INTO cursors VALUES ('parent_to_child', 8, 7, ?1)",
                params![[7u8; 32].as_slice()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO requests VALUES ('parent_to_child', 3, ?1, 5, ?2, 'voted', ?3, 0)",
                params![
                    [1u8; 32].as_slice(),
                    [2u8; 32].as_slice(),
                    [9u8; 32].as_slice()
                ],
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let r = s.request(P2C, 3).unwrap().unwrap();
        assert_eq!(
            (r.state, r.vote_hash),
            (
                super::super::RequestState::Voted,
                Some(B256::repeat_byte(9))
            )
        );
        assert_eq!(s.cursor(P2C).unwrap().unwrap().next_block, 8);
        // The new tables work on the upgraded file.
        let vote = OwnVote {
            nonce: 3,
            vote_key: B256::repeat_byte(9),
            voter: Address::repeat_byte(4),
            tx_hash: B256::repeat_byte(5),
            block_number: 12,
            operators_hash: None,
        };
        s.record_own_vote(P2C, &vote).unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.own_vote(P2C, 3).unwrap(), Some(vote));
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
    }

    #[test]
    fn a_store_from_a_newer_agent_is_refused_with_both_versions_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 9;")
            .unwrap();
        let e = Store::open(&path).unwrap_err();
        assert!(matches!(
            e,
            StoreError::NewerSchema {
                found: 9,
                supported: 2,
                ..
            }
        ));
        assert!(e.to_string().contains("schema version 9"), "{e}");
    }
}
