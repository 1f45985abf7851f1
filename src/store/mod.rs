//! The agent's store: what it must not forget across restarts, in SQLite on disk (WAL) or in
//! the PostgreSQL server an operator's replicas share (`[store]`, `bridge_db`).
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
//! Schema changes are additive and numbered ([`MIGRATIONS`], component `store`: SQLite's
//! `PRAGMA user_version`, PostgreSQL's `schema_versions` row); opening brings older tables up
//! to date in place and refuses tables from a newer agent. The rotation tables
//! (`rotation/store.rs`) share the database and its version: their opener prepares the store's
//! schema first.
//!
//! The watcher records a window's requests and advances the cursor in one transaction, so a
//! crash never skips a request nor leaves the cursor behind what was recorded. The vote journal
//! that protects against double voting is not here: it belongs to the signing guard
//! (`bridge_signer::guard::Journal`), in its own file or tables, and must never be deleted.
//!
//! SQLite `synchronous = NORMAL`: a power cut may lose the last commits, which only means
//! rescanning a few blocks (the guard journal, which is safety-critical, runs with FULL).
//!
//! Calls block the calling thread for one local file write or one round trip to the server.

mod open;
mod own_votes;
mod synced;

pub use open::{Databases, OpenError};
pub use own_votes::{OwnVote, UnexecutableReason};
pub use synced::OwnVotesSynced;

use crate::direction::Direction;
use alloy::primitives::B256;
use bridge_db::{Db, DbError, Lock, Migration, Row, SqliteOptions, Synchronous, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

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

/// A store call failed. `at` names the file, or the server and database (never a password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused the call or could not be reached ([`DbError::is_unavailable`]).
    #[error("store {0}")]
    Db(DbError),
    #[error("store {at}: {what} {value} does not fit the database's 64-bit integers")]
    OutOfRange {
        at: String,
        what: &'static str,
        value: u64,
    },
    #[error("store {at}: corrupt row: {reason}")]
    Corrupt { at: String, reason: String },
    /// `[store]` could not be opened (its URL, its folder, its server).
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(
        "store {at}: schema version {found} is newer than this agent's ({supported}); run the \
         newer agent, or restore the store from before it ran"
    )]
    NewerSchema {
        at: String,
        found: i64,
        supported: i64,
    },
}

impl StoreError {
    /// True when the call may succeed later (the database was unreachable or refused it for
    /// a passing reason): the caller retries instead of stopping.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Db(e) if e.is_transient())
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NewerSchema {
                at,
                found,
                supported,
                ..
            } => Self::NewerSchema {
                at,
                found,
                supported,
            },
            e => Self::Db(e),
        }
    }
}

/// The store's schema, one step per version, in both dialects. 1: cursors and requests.
/// 2: `own_votes`, `unexecutable` and `audit_cursor` (new tables only, so an older agent's
/// file is upgraded in place).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: "
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
",
        postgres: "
CREATE TABLE IF NOT EXISTS cursors (
    direction  TEXT   PRIMARY KEY,
    next_block BIGINT NOT NULL,
    last_block BIGINT,
    last_hash  BYTEA
);
CREATE TABLE IF NOT EXISTS requests (
    direction    TEXT   NOT NULL,
    nonce        BIGINT NOT NULL,
    tx_hash      BYTEA  NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash   BYTEA  NOT NULL,
    state        TEXT   NOT NULL,
    vote_hash    BYTEA,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (direction, nonce)
);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (direction, state, nonce);
",
    },
    Migration {
        version: 2,
        sqlite: own_votes::SQLITE_V2,
        postgres: own_votes::POSTGRES_V2,
    },
];

/// The schema version this agent writes (the last of [`MIGRATIONS`]).
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Most nonces one query of [`Store::vote_hashes`] asks for.
pub const NONCES_PER_QUERY: usize = 256;

/// Most requests one statement of `record_window` inserts (4 parameters each: well under
/// SQLite's 32,766 and PostgreSQL's 65,535).
const WINDOW_ROWS_PER_STATEMENT: usize = 1000;

/// How the store's SQLite file is opened: NORMAL durability (a rescan recovers a lost commit),
/// and a wait for the CLI's or another connection's write.
pub const SQLITE_OPTIONS: SqliteOptions = SqliteOptions {
    synchronous: Synchronous::Normal,
    busy_timeout: Duration::from_secs(5),
};

/// The store, opened. Cheap to share behind an `Arc`; every call is one statement or one
/// transaction on its database.
pub struct Store {
    db: Db,
    at: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Brings the store's tables in `db` up to [`SCHEMA_VERSION`] (refusing a newer agent's, and
/// changing nothing then). Every opener of the store's database calls it first.
pub(crate) fn prepare(db: &Db) -> Result<(), StoreError> {
    bridge_db::schema::prepare(db, "store", MIGRATIONS)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::with_db(Db::sqlite(path, SQLITE_OPTIONS)?)
    }

    /// The store in `db` (a SQLite file or a PostgreSQL database; see [`Databases`]), its
    /// schema brought up to date.
    pub fn with_db(db: Db) -> Result<Self, StoreError> {
        prepare(&db)?;
        let at = db.describe();
        Ok(Self { db, at })
    }

    /// Where the store is: the file, or the server and database.
    pub fn describe(&self) -> &str {
        &self.at
    }

    /// The database handle (shared with the rotation tables).
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn int(&self, what: &'static str, value: u64) -> Result<i64, StoreError> {
        i64::try_from(value).map_err(|_| StoreError::OutOfRange {
            at: self.at.clone(),
            what,
            value,
        })
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            at: self.at.clone(),
            reason,
        }
    }

    fn hash(&self, bytes: &[u8], what: &str) -> Result<B256, StoreError> {
        B256::try_from(bytes).map_err(|_| self.corrupt(format!("{what} has {} bytes", bytes.len())))
    }

    /// Runs one statement on its own; the rows it changed.
    fn execute(&self, sql: &'static str, params: Vec<Value>) -> Result<u64, StoreError> {
        Ok(self.db.run(move |c| c.execute(sql, &params))?)
    }

    /// Runs one query; every row.
    fn query(&self, sql: impl Into<String>, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        Ok(self.db.run(move |c| c.query(&sql, &params))?)
    }

    /// The cursor of `direction`, if the watcher ever saved one.
    pub fn cursor(&self, direction: Direction) -> Result<Option<Cursor>, StoreError> {
        let rows = self.query(
            "SELECT next_block, last_block, last_hash FROM cursors WHERE direction = $1",
            vec![direction.as_str().into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let last = match (row.opt_int(1)?, row.opt_bytes(2)?) {
            (Some(n), Some(h)) => Some((n as u64, self.hash(h, "cursor last_hash")?)),
            _ => None,
        };
        Ok(Some(Cursor {
            next_block: row.int(0)? as u64,
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
        let dir = direction.as_str();
        let now = now_secs();
        // One row per nonce (the last seen wins): a statement may not update a row twice.
        let mut by_nonce = std::collections::BTreeMap::new();
        for (nonce, tx_hash, block, block_hash) in requests {
            by_nonce.insert(*nonce, (*tx_hash, *block, *block_hash));
        }
        let mut rows = Vec::with_capacity(by_nonce.len());
        for (nonce, (tx_hash, block, block_hash)) in by_nonce {
            rows.push([
                self.int("nonce", nonce)?.into(),
                tx_hash.as_slice().into(),
                self.int("block", block)?.into(),
                block_hash.as_slice().into(),
            ]);
        }
        let last = match cursor.last {
            Some((n, h)) => Some((self.int("last_block", n)?, h)),
            None => None,
        };
        let cursor_row = vec![
            dir.into(),
            self.int("next_block", cursor.next_block)?.into(),
            last.map(|(n, _)| n).into(),
            last.map(|(_, h)| h.to_vec()).into(),
        ];
        self.db.transaction(Lock::Write, move |tx| {
            // Many rows to a statement: one round trip each to a PostgreSQL server.
            for chunk in rows.chunks(WINDOW_ROWS_PER_STATEMENT) {
                let mut params: Vec<Value> = vec![dir.into(), now.into()];
                let mut values = Vec::with_capacity(chunk.len());
                for row in chunk {
                    let at = params.len();
                    values.push(format!(
                        "($1, ${}, ${}, ${}, ${}, 'seen', $2)",
                        at + 1,
                        at + 2,
                        at + 3,
                        at + 4
                    ));
                    params.extend(row.iter().cloned());
                }
                tx.execute(
                    &format!(
                        "INSERT INTO requests (direction, nonce, tx_hash, block_number, block_hash, state, updated_at)
                         VALUES {}
                         ON CONFLICT (direction, nonce) DO UPDATE SET
                             tx_hash = excluded.tx_hash, block_number = excluded.block_number,
                             block_hash = excluded.block_hash, updated_at = excluded.updated_at",
                        values.join(", ")
                    ),
                    &params,
                )?;
            }
            tx.execute(
                "INSERT INTO cursors (direction, next_block, last_block, last_hash) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (direction) DO UPDATE SET
                     next_block = excluded.next_block, last_block = excluded.last_block,
                     last_hash = excluded.last_hash",
                &cursor_row,
            )?;
            Ok(())
        })?;
        Ok(())
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
        self.execute(
            "UPDATE requests SET state = $3, vote_hash = COALESCE($4, vote_hash), updated_at = $5
             WHERE direction = $1 AND nonce = $2",
            vec![
                direction.as_str().into(),
                nonce.into(),
                state.as_str().into(),
                vote_hash.map(|h| h.to_vec()).into(),
                now_secs().into(),
            ],
        )?;
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
        self.execute(
            "UPDATE requests SET vote_hash = $3, updated_at = $4 WHERE direction = $1 AND nonce = $2",
            vec![
                direction.as_str().into(),
                nonce.into(),
                vote_hash.as_slice().into(),
                now_secs().into(),
            ],
        )?;
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
            "WHERE direction = $1 AND nonce = $2",
            vec![direction.as_str().into(), nonce.into()],
        )?;
        Ok(rows.into_iter().next())
    }

    /// The vote hash recorded for each of `nonces` of `direction` that has one: one query per
    /// [`NONCES_PER_QUERY`] nonces, not one per nonce (the auditor judges every vote it reads).
    pub fn vote_hashes(
        &self,
        direction: Direction,
        nonces: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, B256>, StoreError> {
        let nonces: BTreeSet<u64> = nonces.into_iter().collect();
        let nonces: Vec<i64> = nonces
            .into_iter()
            .map(|n| self.int("nonce", n))
            .collect::<Result<_, _>>()?;
        let mut found = HashMap::new();
        for chunk in nonces.chunks(NONCES_PER_QUERY) {
            // Padded to a power of two with the last nonce, so a handful of statement texts
            // serve every count (each is prepared once per connection).
            let width = chunk.len().next_power_of_two();
            let mut params: Vec<Value> = vec![direction.as_str().into()];
            params.extend((0..width).map(|i| Value::Int(chunk[i.min(chunk.len() - 1)])));
            let list: Vec<String> = (2..width + 2).map(|i| format!("${i}")).collect();
            let rows = self.query(
                format!(
                    "SELECT nonce, vote_hash FROM requests \
                     WHERE direction = $1 AND vote_hash IS NOT NULL AND nonce IN ({})",
                    list.join(", ")
                ),
                params,
            )?;
            for r in &rows {
                let hash = self.hash(r.bytes(1)?, "vote_hash")?;
                found.insert(r.int(0)? as u64, hash);
            }
        }
        Ok(found)
    }

    /// Requests of `direction` in `state`, by nonce.
    pub fn requests_in(
        &self,
        direction: Direction,
        state: RequestState,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        self.query_requests(
            "WHERE direction = $1 AND state = $2 ORDER BY nonce",
            vec![direction.as_str().into(), state.as_str().into()],
        )
    }

    fn query_requests(
        &self,
        filter: &str,
        params: Vec<Value>,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        let rows = self.query(
            format!(
                "SELECT direction, nonce, tx_hash, block_number, block_hash, state, vote_hash \
                 FROM requests {filter}"
            ),
            params,
        )?;
        rows.iter()
            .map(|r| {
                let dir = r.text(0)?;
                let state = r.text(5)?;
                Ok(StoredRequest {
                    direction: Direction::parse(dir)
                        .ok_or_else(|| self.corrupt(format!("direction {dir:?}")))?,
                    nonce: r.int(1)? as u64,
                    tx_hash: self.hash(r.bytes(2)?, "tx_hash")?,
                    block_number: r.int(3)? as u64,
                    block_hash: self.hash(r.bytes(4)?, "block_hash")?,
                    state: RequestState::parse(state)
                        .ok_or_else(|| self.corrupt(format!("state {state:?}")))?,
                    vote_hash: r
                        .opt_bytes(6)?
                        .map(|v| self.hash(v, "vote_hash"))
                        .transpose()?,
                })
            })
            .collect()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
