//! The database layer under the agent's store and the signing guard's vote journal.
//!
//! ```text
//! Db ── sqlite:   one connection per handle (WAL), calls run on the caller's thread
//!    └─ postgres: one connection per handle, owned by a worker thread; calls are queued to it
//!                 and the caller blocks for the answer (a caller on a multi-threaded tokio
//!                 runtime hands its other tasks to another thread while it waits)
//! Sql         the few calls the store and journal make, the same for both backends
//!             (parameters written `$1`, `$2`…; the SQLite backend rewrites them `?1`, `?2`…)
//! schema.rs   versioned migrations: SQLite `PRAGMA user_version`; PostgreSQL `schema_versions`
//! lease.rs    the replicas' leader lease (PostgreSQL): holder, epoch, expiry by the database's
//!             clock; `Fence` is checked in the journal's statement before every signature
//! ```
//!
//! Values are the four kinds both backends store the same way: NULL, 64-bit integer, text and
//! bytes (SQLite INTEGER/TEXT/BLOB, PostgreSQL BIGINT/TEXT/BYTEA).

#![forbid(unsafe_code)]

mod error;
pub mod lease;
mod postgres;
pub mod schema;
mod sqlite;
mod value;

pub use error::DbError;
pub use lease::{Fence, FenceSql, Lease, LeaseConfig, Term};
pub use postgres::{PgConfig, PgTls};
pub use schema::Migration;
pub use sqlite::{SqliteOptions, Synchronous};
pub use value::{Row, Value};

use std::sync::Arc;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file on this host.
    Sqlite,
    /// A PostgreSQL server, shared by an operator's replicas.
    Postgres,
}

/// The calls the store and the journal make, on either backend. SQL is written once, with
/// `$n` parameters and types both engines share (see the crate docs).
pub trait Sql {
    /// Runs one statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs one query; every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    /// Runs statements without parameters (schema changes).
    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// The engine.
    fn kind(&self) -> Kind;
    /// Runs one query; its first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// How a transaction locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// SQLite `BEGIN IMMEDIATE` (one writer at a time); PostgreSQL `READ COMMITTED`.
    Write,
    /// SQLite `BEGIN EXCLUSIVE`; PostgreSQL `READ COMMITTED` (rows are locked by the statements
    /// themselves, e.g. the lease row `FOR SHARE`).
    Exclusive,
}

/// A work item for the connection: it gets the connection, returns a value or an error.
pub type Work<R> = Box<dyn FnOnce(&mut dyn Sql) -> Result<R, DbError> + Send + 'static>;

/// A handle to one connection (cheap to clone; clones share it).
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

enum Inner {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("at", &self.describe())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path`, in WAL mode.
    pub fn sqlite(
        path: impl AsRef<std::path::Path>,
        options: SqliteOptions,
    ) -> Result<Self, DbError> {
        Ok(Self {
            inner: Arc::new(Inner::Sqlite(sqlite::SqliteDb::open(
                path.as_ref(),
                options,
            )?)),
        })
    }

    /// Connects to PostgreSQL (a worker thread owns the connection and reconnects after a
    /// fault; a call made while it is down fails with [`DbError::Unavailable`]). Fails with
    /// [`DbError::Config`] when the settings cannot work (a URL that does not parse, TLS
    /// disabled for a remote host, an unreadable CA file) and with [`DbError::Unavailable`]
    /// when the server cannot be reached now (within `connect_timeout`).
    pub fn postgres(config: &PgConfig) -> Result<Self, DbError> {
        Ok(Self {
            inner: Arc::new(Inner::Postgres(postgres::PgDb::connect(config)?)),
        })
    }

    /// The engine.
    pub fn kind(&self) -> Kind {
        match &*self.inner {
            Inner::Sqlite(_) => Kind::Sqlite,
            Inner::Postgres(_) => Kind::Postgres,
        }
    }

    /// Where the data is, for messages: the file's path, or the server and database with no
    /// password.
    pub fn describe(&self) -> String {
        match &*self.inner {
            Inner::Sqlite(db) => db.describe(),
            Inner::Postgres(db) => db.describe(),
        }
    }

    /// Runs `work` on the connection, each statement on its own (autocommit). Blocks the
    /// calling thread until it is done.
    pub fn run<R, F>(&self, work: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Sql) -> Result<R, DbError> + Send + 'static,
    {
        match &*self.inner {
            Inner::Sqlite(db) => db.run(Box::new(work), None),
            Inner::Postgres(db) => db.run(Box::new(work), None),
        }
    }

    /// Runs `work` in one transaction: committed when it returns `Ok`, rolled back on `Err`
    /// (nothing of it is kept). Blocks the calling thread until the commit is durable.
    pub fn transaction<R, F>(&self, lock: Lock, work: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Sql) -> Result<R, DbError> + Send + 'static,
    {
        match &*self.inner {
            Inner::Sqlite(db) => db.run(Box::new(work), Some(lock)),
            Inner::Postgres(db) => db.run(Box::new(work), Some(lock)),
        }
    }
}

/// `value` as a database integer, or [`DbError::OutOfRange`] naming `what`.
pub fn int(what: &'static str, value: u64) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::OutOfRange { what, value })
}
