//! The vote journal: (chain id, bridge, namespace, nonce) → keccak256(calldata), in SQLite
//! (WAL, `synchronous=FULL`), written before any signature is requested.
//!
//! Check and record happen in one exclusive transaction (as Lighthouse's slashing protection
//! does), so two tasks, or two processes sharing the file, cannot both record a first vote.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::calldata::Namespace;

/// Where a vote is journalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VoteKey {
    /// Chain the vote is sent on.
    pub chain_id: u64,
    /// Bridge contract the vote is for.
    pub bridge: Address,
    /// Request or configuration nonce space.
    pub namespace: Namespace,
    /// The nonce.
    pub nonce: u64,
}

impl std::fmt::Display for VoteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chain {} bridge {} {} nonce {}",
            self.chain_id,
            self.bridge,
            self.namespace.as_str(),
            self.nonce
        )
    }
}

/// What the journal said about a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First vote for this key; now recorded.
    New,
    /// The identical vote was recorded before (a re-send).
    Same,
    /// A different vote was recorded before; the attempt was logged in `conflicts`.
    Conflict {
        /// The vote hash already recorded.
        recorded: B256,
    },
}

/// A journal failure. The guard refuses to sign when the journal cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite failed.
    #[error("vote journal {}: {source}", path.display())]
    Sqlite {
        /// The journal file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A value does not fit SQLite's signed 64-bit integers.
    #[error("vote journal: {what} {value} is out of range")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A stored row is corrupt.
    #[error("vote journal {}: corrupt row for {key}: {reason}; do NOT delete the journal, investigate", path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// The row's key.
        key: VoteKey,
        /// What is wrong.
        reason: String,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS votes (
    chain_id    INTEGER NOT NULL,
    bridge      BLOB    NOT NULL,
    namespace   TEXT    NOT NULL,
    nonce       INTEGER NOT NULL,
    vote_hash   BLOB    NOT NULL,
    function    TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (chain_id, bridge, namespace, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
    chain_id     INTEGER NOT NULL,
    bridge       BLOB    NOT NULL,
    namespace    TEXT    NOT NULL,
    nonce        INTEGER NOT NULL,
    recorded     BLOB    NOT NULL,
    attempted    BLOB    NOT NULL,
    function     TEXT    NOT NULL,
    attempted_at INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// The journal file, opened.
#[derive(Debug)]
pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let err = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode is {mode}, WAL required"
            ))));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `vote` for `key` unless a vote is already there, in one exclusive transaction
    /// that is durable (fsync'd) when this returns.
    pub fn check_and_record(
        &self,
        key: &VoteKey,
        vote: &B256,
        function: &str,
    ) -> Result<Recorded, JournalError> {
        let (chain, nonce) = (
            to_i64("chain id", key.chain_id)?,
            to_i64("nonce", key.nonce)?,
        );
        let err = |source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(err)?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT vote_hash FROM votes
                 WHERE chain_id = ?1 AND bridge = ?2 AND namespace = ?3 AND nonce = ?4",
                params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let now = now_secs();
        let outcome = match existing {
            None => {
                tx.execute(
                    "INSERT INTO votes (chain_id, bridge, namespace, nonce, vote_hash, function, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce, vote.as_slice(), function, now],
                )
                .map_err(err)?;
                Recorded::New
            }
            Some(bytes) => {
                let recorded =
                    B256::try_from(bytes.as_slice()).map_err(|_| JournalError::Corrupt {
                        path: self.path.clone(),
                        key: *key,
                        reason: format!("vote_hash has {} bytes", bytes.len()),
                    })?;
                if recorded == *vote {
                    Recorded::Same
                } else {
                    tx.execute(
                        "INSERT INTO conflicts (chain_id, bridge, namespace, nonce, recorded, attempted, function, attempted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce, recorded.as_slice(), vote.as_slice(), function, now],
                    )
                    .map_err(err)?;
                    Recorded::Conflict { recorded }
                }
            }
        };
        tx.commit().map_err(err)?;
        Ok(outcome)
    }

    /// The vote recorded for `key`, if any.
    pub fn lookup(&self, key: &VoteKey) -> Result<Option<B256>, JournalError> {
        let (chain, nonce) = (
            to_i64("chain id", key.chain_id)?,
            to_i64("nonce", key.nonce)?,
        );
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let row: Option<Vec<u8>> = conn
            .query_row(
                "SELECT vote_hash FROM votes
                 WHERE chain_id = ?1 AND bridge = ?2 AND namespace = ?3 AND nonce = ?4",
                params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce],
                |r| r.get(0),
            )
            .optional()
            .map_err(|source| JournalError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        Ok(row.and_then(|b| B256::try_from(b.as_slice()).ok()))
    }

    /// Conflicting attempts ever logged.
    pub fn conflict_count(&self) -> Result<u64, JournalError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM conflicts", [], |r| r.get(0))
            .map_err(|source| JournalError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn to_i64(what: &'static str, value: u64) -> Result<i64, JournalError> {
    i64::try_from(value).map_err(|_| JournalError::OutOfRange { what, value })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_new_conflict_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let key = VoteKey {
            chain_id: 1001,
            bridge: Address::repeat_byte(0xbb),
            namespace: Namespace::Request,
            nonce: 7,
        };
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        {
            let j = Journal::open(&path).unwrap();
            assert_eq!(j.check_and_record(&key, &a, "f").unwrap(), Recorded::New);
            assert_eq!(j.check_and_record(&key, &a, "f").unwrap(), Recorded::Same);
            let config_key = VoteKey {
                namespace: Namespace::Config,
                ..key
            };
            assert_eq!(
                j.check_and_record(&config_key, &b, "g").unwrap(),
                Recorded::New
            );
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(
            j.check_and_record(&key, &b, "f").unwrap(),
            Recorded::Conflict { recorded: a }
        );
        assert_eq!(j.lookup(&key).unwrap(), Some(a));
        assert_eq!(j.conflict_count().unwrap(), 1);
        let mode: String = j
            .conn
            .lock()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = j
            .conn
            .lock()
            .unwrap()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
        let huge = VoteKey {
            nonce: u64::MAX,
            ..key
        };
        assert!(matches!(
            j.check_and_record(&huge, &a, "f"),
            Err(JournalError::OutOfRange { .. })
        ));
    }
}
