//! The agent's store: SQLite on disk (WAL) for what it must not forget across restarts.
//!
//! ```text
//! cursors       direction → next source block to scan, and the last scanned block's number+hash
//!               (the reorg check: that hash must still be canonical before scanning on)
//! requests      (direction, nonce) → request tx hash, block, block hash, state, our vote hash
//!               seen ──vote sent──> voted ──destination closed the nonce──> executed
//! own_votes     (direction, nonce) → this operator's last mined, successful vote: key, voter,
//!               tx, block, operator-list hash (schema 2; `own_votes.rs`)
//! unexecutable  (direction, nonce) → why the request can never execute (schema 2)
//! audit_cursor  direction → the auditor's next destination block (schema 2)
//! ```
//!
//! Schema changes are additive and numbered by `PRAGMA user_version`; [`Store::open`] brings an
//! older file up to date in place (see [`prepare`]), and refuses a file from a newer agent. The
//! rotation tables (`rotation/store.rs`) share the file and its one version: their opener goes
//! through the same [`prepare`] first.
//!
//! The watcher records a window's requests and advances the cursor in one transaction, so a
//! crash never skips a request nor leaves the cursor behind what was recorded. The vote journal
//! that protects against double voting is not here: it belongs to the signing guard
//! (`bridge_signer::guard::Journal`), in its own file, and must never be deleted.
//!
//! `synchronous = NORMAL`: a power cut may lose the last commits, which only means rescanning
//! a few blocks (the guard journal, which is safety-critical, runs with FULL).

mod own_votes;
mod synced;

pub use own_votes::{OwnVote, UnexecutableReason};
pub use synced::OwnVotesSynced;

use crate::direction::Direction;
use alloy::primitives::B256;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The watcher's position in one direction's source chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// First source block not yet scanned.
    pub next_block: u64,
    /// The last scanned block and its hash, when any block was scanned.
    pub last: Option<(u64, B256)>,
}

/// Where a request stands, as far as this agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Seen on the source chain, confirmed; no vote sent yet.
    Seen,
    /// This operator's vote was sent.
    Voted,
    /// The destination executed it (by anyone's votes).
    Executed,
}

impl RequestState {
    fn as_str(self) -> &'static str {
        match self {
            RequestState::Seen => "seen",
            RequestState::Voted => "voted",
            RequestState::Executed => "executed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Seen, Self::Voted, Self::Executed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub direction: Direction,
    pub nonce: u64,
    pub tx_hash: B256,
    pub block_number: u64,
    pub block_hash: B256,
    pub state: RequestState,
    /// keccak256 of the handle calldata this agent built for the request (its vote key), once
    /// planned, whether or not it had to vote.
    pub vote_hash: Option<B256>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("store {}: {what} {value} does not fit SQLite's 64-bit integers", path.display())]
    OutOfRange {
        path: PathBuf,
        what: &'static str,
        value: u64,
    },
    #[error("store {}: corrupt row: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "store {}: schema version {found} is newer than this agent's ({supported}); run the \
         newer agent, or restore the store from before it ran",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cursors (
    direction  TEXT    PRIMARY KEY,
    next_block INTEGER NOT NULL,
    last_block INTEGER,
    last_hash  BLOB
);
CREATE TABLE IF NOT EXISTS requests (
    direction    TEXT    NOT NULL,
    nonce        INTEGER NOT NULL,
    tx_hash      BLOB    NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   BLOB    NOT NULL,
    state        TEXT    NOT NULL,
    vote_hash    BLOB,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (direction, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (direction, state, nonce);
";

/// The schema version this agent writes. 1: cursors and requests. 2: `own_votes`,
/// `unexecutable` and `audit_cursor` (new tables only, so an older agent's file is upgraded in
/// place).
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The store, opened. Calls block briefly on SQLite; they are small and local.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(err)?;
        prepare(&conn, &path)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn int(&self, what: &'static str, value: u64) -> Result<i64, StoreError> {
        i64::try_from(value).map_err(|_| StoreError::OutOfRange {
            path: self.path.clone(),
            what,
            value,
        })
    }

    fn hash(&self, bytes: Vec<u8>, what: &str) -> Result<B256, StoreError> {
        B256::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            reason: format!("{what} has {} bytes", bytes.len()),
        })
    }

    /// The cursor of `direction`, if the watcher ever saved one.
    pub fn cursor(&self, direction: Direction) -> Result<Option<Cursor>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let row: Option<(i64, Option<i64>, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT next_block, last_block, last_hash FROM cursors WHERE direction = ?1",
                params![direction.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        drop(conn);
        let Some((next, last_block, last_hash)) = row else {
            return Ok(None);
        };
        let last = match (last_block, last_hash) {
            (Some(n), Some(h)) => Some((n as u64, self.hash(h, "cursor last_hash")?)),
            _ => None,
        };
        Ok(Some(Cursor {
            next_block: next as u64,
            last,
        }))
    }

    /// Records a scanned window: every request found in it (new ones as [`RequestState::Seen`];
    /// known ones keep their state) and the new cursor, in one transaction.
    pub fn record_window(
        &self,
        direction: Direction,
        requests: &[(u64, B256, u64, B256)],
        cursor: Cursor,
    ) -> Result<(), StoreError> {
        let next = self.int("next_block", cursor.next_block)?;
        let last = match cursor.last {
            Some((n, h)) => Some((self.int("last_block", n)?, h)),
            None => None,
        };
        let mut rows = Vec::with_capacity(requests.len());
        for (nonce, tx_hash, block, block_hash) in requests {
            rows.push((
                self.int("nonce", *nonce)?,
                tx_hash,
                self.int("block", *block)?,
                block_hash,
            ));
        }
        let now = now_secs();
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for (nonce, tx_hash, block, block_hash) in rows {
            tx.execute(
                "INSERT INTO requests (direction, nonce, tx_hash, block_number, block_hash, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'seen', ?6)
                 ON CONFLICT (direction, nonce) DO UPDATE SET
                     tx_hash = excluded.tx_hash, block_number = excluded.block_number,
                     block_hash = excluded.block_hash, updated_at = excluded.updated_at",
                params![direction.as_str(), nonce, tx_hash.as_slice(), block, block_hash.as_slice(), now],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.execute(
            "INSERT INTO cursors (direction, next_block, last_block, last_hash) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (direction) DO UPDATE SET
                 next_block = excluded.next_block, last_block = excluded.last_block,
                 last_hash = excluded.last_hash",
            params![
                direction.as_str(),
                next,
                last.map(|(n, _)| n),
                last.map(|(_, h)| h.as_slice().to_vec())
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Moves a request to `state`, recording the vote hash when one is given.
    pub fn set_state(
        &self,
        direction: Direction,
        nonce: u64,
        state: RequestState,
        vote_hash: Option<B256>,
    ) -> Result<(), StoreError> {
        let nonce = self.int("nonce", nonce)?;
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "UPDATE requests SET state = ?3, vote_hash = COALESCE(?4, vote_hash), updated_at = ?5
             WHERE direction = ?1 AND nonce = ?2",
            params![
                direction.as_str(),
                nonce,
                state.as_str(),
                vote_hash.map(|h| h.as_slice().to_vec()),
                now_secs()
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the vote key built for a request without moving its state: from then on the
    /// request counts as planned (see [`StoredRequest::vote_hash`]).
    pub fn set_vote_hash(
        &self,
        direction: Direction,
        nonce: u64,
        vote_hash: B256,
    ) -> Result<(), StoreError> {
        let nonce = self.int("nonce", nonce)?;
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "UPDATE requests SET vote_hash = ?3, updated_at = ?4 WHERE direction = ?1 AND nonce = ?2",
            params![
                direction.as_str(),
                nonce,
                vote_hash.as_slice().to_vec(),
                now_secs()
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// One request, if stored.
    pub fn request(
        &self,
        direction: Direction,
        nonce: u64,
    ) -> Result<Option<StoredRequest>, StoreError> {
        let nonce = self.int("nonce", nonce)?;
        let rows = self.query_requests(
            "WHERE direction = ?1 AND nonce = ?2",
            params![direction.as_str(), nonce],
        )?;
        Ok(rows.into_iter().next())
    }

    /// Requests of `direction` in `state`, by nonce.
    pub fn requests_in(
        &self,
        direction: Direction,
        state: RequestState,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        self.query_requests(
            "WHERE direction = ?1 AND state = ?2 ORDER BY nonce",
            params![direction.as_str(), state.as_str()],
        )
    }

    fn query_requests(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        type Row = (String, i64, Vec<u8>, i64, Vec<u8>, String, Option<Vec<u8>>);
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT direction, nonce, tx_hash, block_number, block_hash, state, vote_hash FROM requests {filter}"
            ))
            .map_err(|e| self.err(e))?;
        let rows: Vec<Row> = stmt
            .query_map(args, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(dir, nonce, tx, block, bh, state, vote)| {
                let corrupt = |reason: String| StoreError::Corrupt {
                    path: self.path.clone(),
                    reason,
                };
                Ok(StoredRequest {
                    direction: Direction::parse(&dir)
                        .ok_or_else(|| corrupt(format!("direction {dir:?}")))?,
                    nonce: nonce as u64,
                    tx_hash: self.hash(tx, "tx_hash")?,
                    block_number: block as u64,
                    block_hash: self.hash(bh, "block_hash")?,
                    state: RequestState::parse(&state)
                        .ok_or_else(|| corrupt(format!("state {state:?}")))?,
                    vote_hash: vote.map(|v| self.hash(v, "vote_hash")).transpose()?,
                })
            })
            .collect()
    }
}

/// Refuses a file from a newer agent; creates what is missing and moves `user_version` up to
/// [`SCHEMA_VERSION`], in one transaction: a crash leaves the old version, and the next open
/// does it again. Every opener of `store.sqlite` calls it first.
pub(crate) fn prepare(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {SCHEMA} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
        own_votes::SCHEMA_V2
    ))
    .map_err(err)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P2C: Direction = Direction::ParentToChild;

    #[test]
    fn window_cursor_and_states_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let (h1, h2, b) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(0xbb),
        );
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.cursor(P2C).unwrap(), None);
            let cursor = Cursor {
                next_block: 11,
                last: Some((10, b)),
            };
            s.record_window(P2C, &[(0, h1, 5, b), (1, h2, 9, b)], cursor)
                .unwrap();
            s.set_state(P2C, 0, RequestState::Voted, Some(h2)).unwrap();
            // A rescan of the same window keeps the state and the vote hash.
            s.record_window(P2C, &[(0, h1, 5, b)], cursor).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.cursor(P2C).unwrap(),
            Some(Cursor {
                next_block: 11,
                last: Some((10, b))
            })
        );
        assert_eq!(s.cursor(Direction::ChildToParent).unwrap(), None);
        let r0 = s.request(P2C, 0).unwrap().unwrap();
        assert_eq!(
            (r0.state, r0.vote_hash, r0.block_number),
            (RequestState::Voted, Some(h2), 5)
        );
        let seen = s.requests_in(P2C, RequestState::Seen).unwrap();
        assert_eq!(seen.iter().map(|r| r.nonce).collect::<Vec<_>>(), vec![1]);
        s.set_state(P2C, 1, RequestState::Executed, None).unwrap();
        assert!(s.requests_in(P2C, RequestState::Seen).unwrap().is_empty());
        assert_eq!(s.request(P2C, 1).unwrap().unwrap().vote_hash, None);
        assert!(matches!(
            s.set_state(P2C, u64::MAX, RequestState::Seen, None),
            Err(StoreError::OutOfRange { .. })
        ));
    }
}
