//! The vote journal: (chain id, bridge, namespace, nonce) → keccak256(calldata), in SQLite
//! (WAL, `synchronous=FULL`), written before any signature is requested.
//!
//! Check and record happen in one exclusive transaction (as Lighthouse's slashing protection
//! does), so two tasks, or two processes sharing the file, cannot both record a first vote.
//!
//! Group commit: one writer thread owns the writing connection. Callers queue their
//! check-and-record and block until it is durable; the writer takes everything queued, runs it
//! in one exclusive transaction, commits (one fsync for the batch), then answers each caller.
//! Alone, a vote costs one fsync as before; with votes in flight they share it.
//!
//! ```text
//! caller ─Job─┐                       ┌─ BEGIN EXCLUSIVE; check/record job 1..k; COMMIT (fsync)
//! caller ─Job─┼─> channel ─> writer ──┤
//! caller ─Job─┘                       └─ reply to each caller (nothing is answered before COMMIT)
//! ```

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

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
    /// The batch this record shared a transaction with failed; nothing of it was recorded.
    #[error("vote journal {}: batch rolled back, nothing recorded: {reason}", path.display())]
    BatchAborted {
        /// The journal file.
        path: PathBuf,
        /// The error that aborted the batch.
        reason: String,
    },
    /// The writer thread is gone (it panicked); the journal cannot record.
    #[error("vote journal {}: writer thread stopped; restart the agent", path.display())]
    WriterStopped {
        /// The journal file.
        path: PathBuf,
    },
    /// The file was written by a newer version (its schema is unknown here). Nothing was
    /// changed in it.
    #[error(
        "vote journal {}: schema version {found} is newer than this build supports \
         ({supported}); run the agent version that wrote it (never delete the journal)",
        path.display()
    )]
    NewerSchema {
        /// The journal file.
        path: PathBuf,
        /// `PRAGMA user_version` in the file.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The file's schema version is one no build wrote.
    #[error("vote journal {}: schema version {found} is unknown; do NOT delete the journal, investigate", path.display())]
    UnknownSchema {
        /// The journal file.
        path: PathBuf,
        /// `PRAGMA user_version` in the file.
        found: i64,
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
";

/// The schema [`SCHEMA`] describes, kept in `PRAGMA user_version`. A change to the tables
/// raises it, and [`prepare`] learns to bring the previous version up to it.
const SCHEMA_VERSION: i64 = 1;

/// Most records one transaction takes; a bound on how long the first caller waits.
const MAX_BATCH: usize = 256;

/// One queued check-and-record.
struct Job {
    key: VoteKey,
    chain: i64,
    nonce: i64,
    vote: B256,
    function: String,
    reply: mpsc::SyncSender<Result<Recorded, JournalError>>,
}

/// The journal file, opened.
pub struct Journal {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// A second connection for reads (WAL lets it read while the writer writes).
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    let err = |source| JournalError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
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
    Ok(conn)
}

/// Checks the file's schema version and creates the tables of a new file, in one exclusive
/// transaction (two processes opening a new file at once create it once). A file from a newer
/// build is refused untouched: its rows may mean something this build does not know.
fn prepare(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let err = |source| JournalError::Sqlite {
        path: path.to_owned(),
        source,
    };
    conn.execute_batch("BEGIN EXCLUSIVE").map_err(err)?;
    let result = (|| {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        match found {
            // A new file (or one from before the version was written: same tables).
            0 => conn
                .execute_batch(&format!("{SCHEMA} PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(err),
            SCHEMA_VERSION => Ok(()),
            found if found > SCHEMA_VERSION => Err(JournalError::NewerSchema {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            }),
            // No build wrote a negative version. (Versions between 0 and the current one get
            // their upgrade here once a second version exists.)
            found => Err(JournalError::UnknownSchema {
                path: path.to_owned(),
                found,
            }),
        }
    })();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(err)?;
    result
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let writer_conn = open_connection(&path)?;
        prepare(&writer_conn, &path)?;
        let conn = open_connection(&path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_path = path.clone();
        let writer = std::thread::Builder::new()
            .name("vote-journal".into())
            .spawn(move || writer_loop(writer_conn, &writer_path, rx))
            .map_err(|e| JournalError::BatchAborted {
                path: path.clone(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            path,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            conn: Mutex::new(conn),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `vote` for `key` unless a vote is already there, in one exclusive transaction
    /// that is durable (fsync'd) when this returns. Blocks: call it off the async executor.
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
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            key: *key,
            chain,
            nonce,
            vote: *vote,
            function: function.to_owned(),
            reply,
        };
        let stopped = || JournalError::WriterStopped {
            path: self.path.clone(),
        };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// The vote recorded for `key`, if any.
    pub fn lookup(&self, key: &VoteKey) -> Result<Option<B256>, JournalError> {
        let (chain, nonce) = (
            to_i64("chain id", key.chain_id)?,
            to_i64("nonce", key.nonce)?,
        );
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let row = select_vote(&conn, key, chain, nonce).map_err(|source| JournalError::Sqlite {
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

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the jobs already queued.
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = w.join();
        }
    }
}

fn writer_loop(mut conn: Connection, path: &Path, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        match record_batch(&mut conn, path, &batch) {
            Ok(outcomes) => {
                for (job, outcome) in batch.iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err((failed, error)) => {
                let reason = error.to_string();
                let mut error = Some(error);
                for (i, job) in batch.iter().enumerate() {
                    let own = if i == failed { error.take() } else { None };
                    let e = own.unwrap_or_else(|| JournalError::BatchAborted {
                        path: path.to_owned(),
                        reason: reason.clone(),
                    });
                    let _ = job.reply.send(Err(e));
                }
            }
        }
    }
}

/// Runs a batch in one exclusive transaction. On error: the index of the job that failed
/// (`batch.len()` for the commit) and its error; the transaction is rolled back.
fn record_batch(
    conn: &mut Connection,
    path: &Path,
    batch: &[Job],
) -> Result<Vec<Recorded>, (usize, JournalError)> {
    let err = |i: usize| {
        move |source| {
            (
                i,
                JournalError::Sqlite {
                    path: path.to_owned(),
                    source,
                },
            )
        }
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(err(0))?;
    let now = now_secs();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        outcomes.push(record_one(&tx, path, job, now).map_err(|e| (i, e))?);
    }
    tx.commit().map_err(err(batch.len()))?;
    Ok(outcomes)
}

fn record_one(
    tx: &Transaction<'_>,
    path: &Path,
    job: &Job,
    now: i64,
) -> Result<Recorded, JournalError> {
    let err = |source| JournalError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let (key, chain, nonce) = (&job.key, job.chain, job.nonce);
    let existing = select_vote(tx, key, chain, nonce).map_err(err)?;
    let Some(bytes) = existing else {
        tx.execute(
            "INSERT INTO votes (chain_id, bridge, namespace, nonce, vote_hash, function, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce, job.vote.as_slice(), job.function, now],
        )
        .map_err(err)?;
        return Ok(Recorded::New);
    };
    let recorded = B256::try_from(bytes.as_slice()).map_err(|_| JournalError::Corrupt {
        path: path.to_owned(),
        key: *key,
        reason: format!("vote_hash has {} bytes", bytes.len()),
    })?;
    if recorded == job.vote {
        return Ok(Recorded::Same);
    }
    tx.execute(
        "INSERT INTO conflicts (chain_id, bridge, namespace, nonce, recorded, attempted, function, attempted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce, recorded.as_slice(), job.vote.as_slice(), job.function, now],
    )
    .map_err(err)?;
    Ok(Recorded::Conflict { recorded })
}

/// The vote hash recorded for `key` (with its integers already converted), if any.
fn select_vote(
    conn: &Connection,
    key: &VoteKey,
    chain: i64,
    nonce: i64,
) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT vote_hash FROM votes
         WHERE chain_id = ?1 AND bridge = ?2 AND namespace = ?3 AND nonce = ?4",
        params![chain, key.bridge.as_slice(), key.namespace.as_str(), nonce],
        |r| r.get(0),
    )
    .optional()
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

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn schema_version_is_written_and_checked_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        drop(Journal::open(&path).unwrap());
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        // Reopening the current version keeps it.
        drop(Journal::open(&path).unwrap());
        assert_eq!(user_version(&path), SCHEMA_VERSION);

        // A file a newer build wrote: refused, naming file and both versions, left as it was.
        let newer = dir.path().join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 7;")
            .unwrap();
        let e = Journal::open(&newer).unwrap_err();
        assert!(
            matches!(
                e,
                JournalError::NewerSchema {
                    found: 7,
                    supported: SCHEMA_VERSION,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        for needle in ["newer.sqlite", "version 7", "supports (1)"] {
            assert!(text.contains(needle), "{needle:?} not in: {text}");
        }
        assert_eq!(user_version(&newer), 7);
        let tables: i64 = Connection::open(&newer)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('votes', 'conflicts')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "a refused journal was written to");

        let odd = dir.path().join("odd.sqlite");
        Connection::open(&odd)
            .unwrap()
            .execute_batch("PRAGMA user_version = -3;")
            .unwrap();
        let e = Journal::open(&odd).unwrap_err();
        assert!(
            matches!(e, JournalError::UnknownSchema { found: -3, .. }),
            "{e:?}"
        );
    }

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

    /// Many threads at once (group commit): every key gets exactly one first vote, racing
    /// different votes for one key yield one `New` and the rest `Conflict`, and everything
    /// is there after reopening.
    #[test]
    fn concurrent_records_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let j = std::sync::Arc::new(Journal::open(&path).unwrap());
        let key = |nonce| VoteKey {
            chain_id: 1,
            bridge: Address::repeat_byte(0xbb),
            namespace: Namespace::Request,
            nonce,
        };
        let outcomes: Vec<(u64, Recorded)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let j = std::sync::Arc::clone(&j);
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for i in 0..40u64 {
                            let nonce = 1000 + t * 40 + i;
                            out.push((
                                nonce,
                                j.check_and_record(&key(nonce), &B256::repeat_byte(1), "f")
                                    .unwrap(),
                            ));
                        }
                        // All threads race on nonce 1, each with its own vote.
                        out.push((
                            1,
                            j.check_and_record(&key(1), &B256::repeat_byte(10 + t as u8), "f")
                                .unwrap(),
                        ));
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let racing: Vec<_> = outcomes
            .iter()
            .filter(|(n, _)| *n == 1)
            .map(|(_, r)| *r)
            .collect();
        assert_eq!(racing.iter().filter(|r| **r == Recorded::New).count(), 1);
        assert_eq!(
            racing
                .iter()
                .filter(|r| matches!(r, Recorded::Conflict { .. }))
                .count(),
            7
        );
        assert!(
            outcomes
                .iter()
                .filter(|(n, _)| *n != 1)
                .all(|(_, r)| *r == Recorded::New)
        );
        drop(j);
        let j = Journal::open(&path).unwrap();
        for nonce in 1000..1000 + 8 * 40 {
            assert_eq!(j.lookup(&key(nonce)).unwrap(), Some(B256::repeat_byte(1)));
        }
        assert_eq!(j.conflict_count().unwrap(), 7);
    }
}
