//! Database errors. None of them holds a password: a server is named by host and database.

/// A database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("{at}: {source}")]
    Sqlite {
        /// The file.
        at: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// PostgreSQL answered with an error (a constraint, a type, a serialization failure…).
    #[error("{at}: {message}")]
    Postgres {
        /// The server and database, no password.
        at: String,
        /// The server's message (SQLSTATE and text).
        message: String,
        /// The SQLSTATE code, when the server sent one.
        code: Option<String>,
    },
    /// The database cannot be reached now (connecting, connection lost, timed out). Retrying
    /// later may succeed; nothing of the failed call was committed unless it said so.
    #[error("{at}: database unavailable: {reason}")]
    Unavailable {
        /// The server and database, no password.
        at: String,
        /// Why.
        reason: String,
    },
    /// The connection settings cannot work (a URL that does not parse, TLS disabled for a
    /// remote server, an unreadable CA file): retrying will not help.
    #[error("{at}: {reason}")]
    Config {
        /// The server and database, no password.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// A column did not hold the type the code reads.
    #[error("column {index}: expected {expected}, found {found}")]
    Column {
        /// Column index.
        index: usize,
        /// What the code reads.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// A value does not fit the databases' signed 64-bit integers.
    #[error("{what} {value} does not fit a 64-bit signed integer")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The schema was written by a newer build; nothing was changed.
    #[error(
        "{at}: {component} schema version {found} is newer than this build supports \
         ({supported}); run the version that wrote it"
    )]
    NewerSchema {
        /// Where.
        at: String,
        /// Which tables (`store`, `journal`).
        component: String,
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The schema version is one no build wrote; nothing was changed.
    #[error("{at}: {component} schema version {found} is unknown; investigate, do not delete")]
    UnknownSchema {
        /// Where.
        at: String,
        /// Which tables.
        component: String,
        /// The version found.
        found: i64,
    },
    /// This replica does not hold the leader lease (any more): it must not record or sign.
    #[error("not the leader: {reason}")]
    Fenced {
        /// What the check found.
        reason: String,
    },
    /// The connection's worker is gone; the handle cannot be used again.
    #[error("{at}: database worker stopped")]
    WorkerStopped {
        /// Where.
        at: String,
    },
}

impl DbError {
    /// True when the database could not be reached (as opposed to refusing the call): the
    /// caller may retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::WorkerStopped { .. })
    }

    /// True when the same call may succeed later: the database was unreachable, or PostgreSQL
    /// refused it for a passing reason (serialization failure, deadlock, a statement cancelled
    /// by its timeout, a lock not available, an idle transaction ended).
    pub fn is_transient(&self) -> bool {
        self.is_unavailable()
            || matches!(self, Self::Postgres { code: Some(c), .. }
                if matches!(c.as_str(), "40001" | "40P01" | "57014" | "55P03" | "25P03"))
    }
}
