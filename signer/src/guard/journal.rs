//! The vote journal: (chain id, bridge, namespace, nonce) → keccak256(calldata), written before
//! any signature is requested. On this host in SQLite (WAL, `synchronous=FULL`), or shared by
//! an operator's replicas in PostgreSQL (`bridge_db`).
//!
//! Check and record are one statement, `INSERT … ON CONFLICT DO NOTHING` on the vote's key:
//! the primary key decides (in PostgreSQL a concurrent insert of the same key is waited for),
//! so two tasks, two processes sharing the file, or two replicas sharing the database cannot
//! both record a first vote. A vote whose key is already recorded is compared with it in a
//! transaction of its own (SQLite: exclusive, as Lighthouse's slashing protection does): the
//! same vote is a re-send, another one a conflict, logged.
//!
//! Group commit: one writer thread owns the writing connection. Callers queue their
//! check-and-record and block until it is durable; the writer takes everything queued, inserts
//! it in one statement (one fsync, or one round trip to PostgreSQL, for the batch), then
//! answers each caller. Alone, a vote costs one fsync as before; with votes in flight they
//! share it.
//!
//! Fencing (replicas): with a [`Fence`], that statement (and the comparing transaction) first
//! checks that this process still holds the leader lease, and locks the lease row until it
//! commits, so a takeover is ordered after it. If it does not, nothing of the batch is recorded
//! and every caller gets [`JournalError::Fenced`]. Rows record the epoch and holder that wrote
//! them.
//!
//! ```text
//! caller ─Job─┐                       ┌─ [fence +] INSERT first vote of each key (1 statement)
//! caller ─Job─┼─> channel ─> writer ──┤  the rest: BEGIN; [fence;] compare each; COMMIT
//! caller ─Job─┘                       └─ reply to each caller (nothing is answered before COMMIT)
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use bridge_db::{
    Db, DbError, Fence, FenceSql, Lock, Migration, Sql, SqliteOptions, Synchronous, Value,
};

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
    /// The database failed (or cannot be reached: see [`DbError::is_unavailable`]).
    #[error("vote journal {at}: {source}")]
    Db {
        /// The file, or the server and database (no password).
        at: String,
        /// What the database layer said.
        source: DbError,
    },
    /// A value does not fit the databases' signed 64-bit integers.
    #[error("vote journal: {what} {value} is out of range")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The batch this record shared a transaction with failed; this record was not answered
    /// as recorded, and nothing of the batch may be signed.
    #[error("vote journal {at}: batch failed, nothing of it may be signed: {reason}")]
    BatchAborted {
        /// The file, or the server and database.
        at: String,
        /// The error that aborted the batch.
        reason: String,
    },
    /// This replica does not hold the leader lease (any more): the batch was rolled back,
    /// nothing was recorded, and nothing may be signed. Another replica leads now.
    #[error(
        "vote journal {at}: not the leader, nothing recorded and nothing may be signed: {reason}"
    )]
    Fenced {
        /// The database.
        at: String,
        /// What the fence check found.
        reason: String,
    },
    /// The writer thread is gone (it panicked); the journal cannot record.
    #[error("vote journal {at}: writer thread stopped; restart the agent")]
    WriterStopped {
        /// The file, or the server and database.
        at: String,
    },
    /// The tables were written by a newer version (their schema is unknown here). Nothing was
    /// changed in them.
    #[error(
        "vote journal {at}: schema version {found} is newer than this build supports \
         ({supported}); run the agent version that wrote it (never delete the journal)"
    )]
    NewerSchema {
        /// The file, or the server and database.
        at: String,
        /// The version found (SQLite `PRAGMA user_version`).
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The schema version is one no build wrote.
    #[error(
        "vote journal {at}: schema version {found} is unknown; do NOT delete the journal, investigate"
    )]
    UnknownSchema {
        /// The file, or the server and database.
        at: String,
        /// The version found.
        found: i64,
    },
    /// A stored row is corrupt.
    #[error(
        "vote journal {at}: corrupt row for {key}: {reason}; do NOT delete the journal, investigate"
    )]
    Corrupt {
        /// The file, or the server and database.
        at: String,
        /// The row's key.
        key: VoteKey,
        /// What is wrong.
        reason: String,
    },
}

/// The journal's tables, version by version. v1 is the schema of the SQLite journal before
/// `bridge_db` (files written then open unchanged and gain v2); v2 records which lease term
/// (`epoch`, `holder`; NULL without a fence) wrote each row.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: "
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
);",
        postgres: "
CREATE TABLE IF NOT EXISTS votes (
    chain_id    BIGINT NOT NULL,
    bridge      BYTEA  NOT NULL,
    namespace   TEXT   NOT NULL,
    nonce       BIGINT NOT NULL,
    vote_hash   BYTEA  NOT NULL,
    function    TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (chain_id, bridge, namespace, nonce)
);
CREATE TABLE IF NOT EXISTS conflicts (
    chain_id     BIGINT NOT NULL,
    bridge       BYTEA  NOT NULL,
    namespace    TEXT   NOT NULL,
    nonce        BIGINT NOT NULL,
    recorded     BYTEA  NOT NULL,
    attempted    BYTEA  NOT NULL,
    function     TEXT   NOT NULL,
    attempted_at BIGINT NOT NULL
);",
    },
    Migration {
        version: 2,
        sqlite: "
ALTER TABLE votes ADD COLUMN epoch INTEGER;
ALTER TABLE votes ADD COLUMN holder TEXT;
ALTER TABLE conflicts ADD COLUMN epoch INTEGER;
ALTER TABLE conflicts ADD COLUMN holder TEXT;",
        postgres: "
ALTER TABLE votes ADD COLUMN IF NOT EXISTS epoch BIGINT, ADD COLUMN IF NOT EXISTS holder TEXT;
ALTER TABLE conflicts ADD COLUMN IF NOT EXISTS epoch BIGINT,
    ADD COLUMN IF NOT EXISTS holder TEXT;",
    },
];

/// The newest schema this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 2;
const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].version == SCHEMA_VERSION);

/// Most records one transaction takes; a bound on how long the first caller waits.
const MAX_BATCH: usize = 256;

/// How long a SQLite call waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One check-and-record, its integers already converted.
#[derive(Clone)]
struct Entry {
    key: VoteKey,
    chain: i64,
    nonce: i64,
    vote: B256,
    function: String,
}

/// One queued check-and-record and where its answer goes.
struct Job {
    entry: Entry,
    reply: mpsc::SyncSender<Result<Recorded, JournalError>>,
}

/// The journal, opened.
pub struct Journal {
    /// The file, or the server and database (no password).
    at: String,
    /// Reads (SQLite: a second connection, which WAL lets read while the writer writes).
    reader: Db,
    fence: Option<Arc<dyn Fence>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("at", &self.at)
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (creating if needed) the SQLite journal at `path`: WAL, `synchronous=FULL`, schema
    /// version checked (a file from a newer build is refused untouched).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let options = SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: BUSY_TIMEOUT,
        };
        let at = path.display().to_string();
        let db = |at: &str| {
            Db::sqlite(path, options).map_err(|source| JournalError::Db {
                at: at.to_owned(),
                source,
            })
        };
        let writer = db(&at)?;
        prepare(&writer, &at)?;
        let reader = db(&at)?;
        Self::start(at, writer, reader, None)
    }

    /// Opens the journal in `db` (PostgreSQL, shared by the replicas; or SQLite), creating or
    /// upgrading its tables. With a `fence`, every batch first checks that this process holds
    /// the leader lease, and the guard checks [`Fence::holds_now`] again before signing.
    pub fn with_db(db: Db, fence: Option<Arc<dyn Fence>>) -> Result<Self, JournalError> {
        let at = db.describe();
        prepare(&db, &at)?;
        Self::start(at, db.clone(), db, fence)
    }

    fn start(
        at: String,
        writer_db: Db,
        reader: Db,
        fence: Option<Arc<dyn Fence>>,
    ) -> Result<Self, JournalError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (writer_at, writer_fence) = (at.clone(), fence.clone());
        let writer = std::thread::Builder::new()
            .name("vote-journal".into())
            .spawn(move || writer_loop(&writer_db, &writer_at, writer_fence.as_ref(), rx))
            .map_err(|e| JournalError::BatchAborted {
                at: at.clone(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            at,
            reader,
            fence,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Where the journal is: the file, or the server and database (no password).
    pub fn describe(&self) -> &str {
        &self.at
    }

    /// The leader fence every record is checked against, if this journal has one.
    pub fn fence(&self) -> Option<&Arc<dyn Fence>> {
        self.fence.as_ref()
    }

    /// Records `vote` for `key` unless a vote is already there, in one transaction that is
    /// durable when this returns. Blocks: call it off the async executor.
    pub fn check_and_record(
        &self,
        key: &VoteKey,
        vote: &B256,
        function: &str,
    ) -> Result<Recorded, JournalError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            entry: Entry {
                key: *key,
                chain: to_i64("chain id", key.chain_id)?,
                nonce: to_i64("nonce", key.nonce)?,
                vote: *vote,
                function: function.to_owned(),
            },
            reply,
        };
        let stopped = || JournalError::WriterStopped {
            at: self.at.clone(),
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
        let params = key_params(
            key,
            to_i64("chain id", key.chain_id)?,
            to_i64("nonce", key.nonce)?,
        );
        let row = self
            .reader
            .run(move |sql| sql.query_opt(SELECT_VOTE, &params))
            .map_err(|source| self.db_error(source))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let bytes = row.bytes(0).map_err(|source| self.db_error(source))?;
                Ok(B256::try_from(bytes).ok())
            }
        }
    }

    /// Conflicting attempts ever logged (in PostgreSQL: by every journal in the database).
    pub fn conflict_count(&self) -> Result<u64, JournalError> {
        let row = self
            .reader
            .run(|sql| sql.query_opt("SELECT COUNT(*) FROM conflicts", &[]))
            .map_err(|source| self.db_error(source))?;
        let n = match row {
            Some(row) => row.int(0).map_err(|source| self.db_error(source))?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn db_error(&self, source: DbError) -> JournalError {
        JournalError::Db {
            at: self.at.clone(),
            source,
        }
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

/// Brings the tables to [`SCHEMA_VERSION`] (see `bridge_db::schema`), mapping its refusals.
fn prepare(db: &Db, at: &str) -> Result<(), JournalError> {
    match bridge_db::schema::prepare(db, "journal", MIGRATIONS) {
        Ok(_) => Ok(()),
        Err(DbError::NewerSchema {
            found, supported, ..
        }) => Err(JournalError::NewerSchema {
            at: at.to_owned(),
            found,
            supported,
        }),
        Err(DbError::UnknownSchema { found, .. }) => Err(JournalError::UnknownSchema {
            at: at.to_owned(),
            found,
        }),
        Err(source) => Err(JournalError::Db {
            at: at.to_owned(),
            source,
        }),
    }
}

fn writer_loop(db: &Db, at: &str, fence: Option<&Arc<dyn Fence>>, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        let entries: Vec<Entry> = batch.iter().map(|j| j.entry.clone()).collect();
        let answers = write_batch(db, at, fence, &entries);
        let fenced = answers.iter().filter_map(|a| match a {
            Err(JournalError::Fenced { reason, .. }) => Some(reason),
            _ => None,
        });
        if let Some(reason) = fenced.clone().next() {
            tracing::warn!(
                target: "bridge_signer::guard",
                journal = at,
                votes = fenced.count(),
                reason,
                "not the leader: nothing recorded, nothing will be signed"
            );
        }
        for (job, answer) in batch.iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

/// One batch. First one statement inserts the first vote of each key, the fence checked in
/// the same statement: in PostgreSQL one round trip, committed on its own (a statement is
/// atomic), which is the whole batch when every vote is new. Then, only for the entries it did
/// not insert (a key already recorded, or a second vote for a key of this batch), one
/// transaction checks the fence and compares each with what is recorded. An error answers the
/// entries of the step it stopped, not the votes already durable.
fn write_batch(
    db: &Db,
    at: &str,
    fence: Option<&Arc<dyn Fence>>,
    entries: &[Entry],
) -> Vec<Result<Recorded, JournalError>> {
    let now = now_secs();
    let holder = fence.map(|f| f.holder().to_owned());
    let mut seen = HashSet::new();
    let fresh: Vec<Entry> = entries
        .iter()
        .filter(|e| seen.insert(e.key))
        .cloned()
        .collect();
    let inserted = fence.map(|f| f.sql()).transpose().and_then(|fence_sql| {
        let holder = holder.clone();
        db.run(move |sql| insert_votes(sql, fence_sql.as_ref(), holder, &fresh, now))
    });
    let inserted = match inserted {
        Ok(keys) => keys,
        Err(error) => return failures(at, entries, error, 0),
    };
    let mut answers: Vec<Option<Result<Recorded, JournalError>>> =
        entries.iter().map(|_| None).collect();
    for key in inserted {
        if let Some(i) = entries.iter().position(|e| e.key == key) {
            answers[i] = Some(Ok(Recorded::New));
        }
    }
    let rest: Vec<usize> = (0..entries.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    if !rest.is_empty() {
        let compared: Vec<Entry> = rest.iter().map(|&i| entries[i].clone()).collect();
        // Which entry the transaction was at when it failed (`len` once all are done: the
        // commit failed).
        let failed = Arc::new(AtomicUsize::new(0));
        let result = db.transaction(Lock::Exclusive, {
            let (fence, failed, compared) = (fence.cloned(), Arc::clone(&failed), compared.clone());
            move |sql| {
                let epoch = match &fence {
                    Some(f) => Value::Int(bridge_db::int("epoch", f.check(sql)?)?),
                    None => Value::Null,
                };
                let holder = Value::from(holder);
                let mut done = Vec::with_capacity(compared.len());
                for (i, entry) in compared.iter().enumerate() {
                    failed.store(i, Ordering::Relaxed);
                    done.push(compare_recorded(sql, entry, &epoch, &holder, now)?);
                }
                failed.store(compared.len(), Ordering::Relaxed);
                Ok(done)
            }
        });
        let outcomes: Vec<Result<Recorded, JournalError>> = match result {
            Ok(done) => done.into_iter().map(Ok).collect(),
            Err(error) => failures(at, &compared, error, failed.load(Ordering::Relaxed)),
        };
        for (i, outcome) in rest.into_iter().zip(outcomes) {
            answers[i] = Some(outcome);
        }
    }
    answers.into_iter().flatten().collect()
}

/// The answers of `entries` when their step failed with `error` at entry `failed`: that one
/// gets the error; the others were aborted with it. Fenced: every one is.
fn failures(
    at: &str,
    entries: &[Entry],
    error: DbError,
    failed: usize,
) -> Vec<Result<Recorded, JournalError>> {
    let reason = error.to_string();
    if let DbError::Fenced { reason } = &error {
        return entries
            .iter()
            .map(|_| {
                Err(JournalError::Fenced {
                    at: at.to_owned(),
                    reason: reason.clone(),
                })
            })
            .collect();
    }
    let mut error = Some(error);
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            Err(match (i == failed).then(|| error.take()).flatten() {
                Some(DbError::Column { .. }) => JournalError::Corrupt {
                    at: at.to_owned(),
                    key: entry.key,
                    reason: reason.clone(),
                },
                Some(source) => JournalError::Db {
                    at: at.to_owned(),
                    source,
                },
                None => JournalError::BatchAborted {
                    at: at.to_owned(),
                    reason: reason.clone(),
                },
            })
        })
        .collect()
}

const SELECT_VOTE: &str = "SELECT vote_hash FROM votes
     WHERE chain_id = $1 AND bridge = $2 AND namespace = $3 AND nonce = $4";

/// Inserts each vote unless its key has one, in one statement; the keys it inserted. With a
/// fence, the statement checks it first (once) and records its epoch and `holder` in each row;
/// a fenced statement fails and inserts nothing. In PostgreSQL the insert waits for another
/// replica's uncommitted insert of the same key (and skips it once that commits), so of two
/// replicas racing, one inserts.
fn insert_votes(
    sql: &mut dyn Sql,
    fence: Option<&FenceSql>,
    holder: Option<String>,
    fresh: &[Entry],
    now: i64,
) -> Result<Vec<VoteKey>, DbError> {
    let mut statement = String::new();
    let mut params = Vec::with_capacity(fresh.len() * 6 + 5);
    let (epoch, holder) = match fence {
        Some(fence) => {
            statement.push_str(&format!("WITH fence AS (SELECT {} AS epoch) ", fence.expr));
            params.extend(fence.params.iter().cloned());
            params.push(Value::from(holder));
            (
                "(SELECT epoch FROM fence)".to_owned(),
                format!("${}", params.len()),
            )
        }
        None => ("NULL".to_owned(), "NULL".to_owned()),
    };
    params.push(Value::Int(now));
    let now_param = params.len();
    statement.push_str(
        "INSERT INTO votes
             (chain_id, bridge, namespace, nonce, vote_hash, function, recorded_at, epoch, holder)
         VALUES ",
    );
    for (row, entry) in fresh.iter().enumerate() {
        let at = params.len();
        if row > 0 {
            statement.push_str(", ");
        }
        let columns: Vec<String> = (1..=6).map(|c| format!("${}", at + c)).collect();
        statement.push_str(&format!(
            "({}, ${now_param}, {epoch}, {holder})",
            columns.join(", ")
        ));
        params.extend(key_params(&entry.key, entry.chain, entry.nonce));
        params.extend([
            Value::from(entry.vote.as_slice()),
            Value::from(entry.function.as_str()),
        ]);
    }
    statement.push_str(" ON CONFLICT DO NOTHING RETURNING chain_id, bridge, namespace, nonce");
    let rows = sql.query(&statement, &params)?;
    // Each row is one of `fresh` (distinct keys): found by its columns.
    rows.iter()
        .map(|r| {
            let (chain, bridge, namespace, nonce) = (r.int(0)?, r.bytes(1)?, r.text(2)?, r.int(3)?);
            fresh
                .iter()
                .find(|e| {
                    e.chain == chain
                        && e.nonce == nonce
                        && e.key.bridge.as_slice() == bridge
                        && e.key.namespace.as_str() == namespace
                })
                .map(|e| e.key)
                .ok_or(DbError::Column {
                    index: 0,
                    expected: "a key the insert was given",
                    found: "another key",
                })
        })
        .collect()
}

/// An entry whose key already has a vote (recorded before, or earlier in this batch): the
/// same vote is a re-send; another one is logged in `conflicts`. In PostgreSQL the read after
/// the insert sees another replica's committed row (READ COMMITTED reads afresh per statement).
fn compare_recorded(
    sql: &mut dyn Sql,
    entry: &Entry,
    epoch: &Value,
    holder: &Value,
    now: i64,
) -> Result<Recorded, DbError> {
    let key = key_params(&entry.key, entry.chain, entry.nonce);
    let row = sql.query_opt(SELECT_VOTE, &key)?.ok_or(DbError::Column {
        index: 0,
        expected: "the vote the insert conflicted with",
        found: "no row",
    })?;
    let recorded = B256::try_from(row.bytes(0)?).map_err(|_| DbError::Column {
        index: 0,
        expected: "a 32-byte vote_hash",
        found: "bytes of another length",
    })?;
    if recorded == entry.vote {
        return Ok(Recorded::Same);
    }
    let mut conflict = key;
    conflict.extend([
        Value::from(recorded.as_slice()),
        Value::from(entry.vote.as_slice()),
        Value::from(entry.function.as_str()),
        Value::Int(now),
        epoch.clone(),
        holder.clone(),
    ]);
    sql.execute(
        "INSERT INTO conflicts
             (chain_id, bridge, namespace, nonce, recorded, attempted, function, attempted_at,
              epoch, holder)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &conflict,
    )?;
    Ok(Recorded::Conflict { recorded })
}

/// The key's columns, in the order the statements bind them.
fn key_params(key: &VoteKey, chain: i64, nonce: i64) -> Vec<Value> {
    vec![
        Value::Int(chain),
        Value::from(key.bridge.as_slice()),
        Value::from(key.namespace.as_str()),
        Value::Int(nonce),
    ]
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
mod tests;
