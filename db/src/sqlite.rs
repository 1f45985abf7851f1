//! The SQLite backend: one connection per handle, WAL, calls on the caller's thread.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::{DbError, Kind, Lock, Row, Sql, Value, Work};

/// How hard a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit (the vote journal).
    Full,
    /// A power cut may lose the last commits (the store: a rescan recovers them).
    Normal,
}

/// How a file is opened.
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Durability of a commit.
    pub synchronous: Synchronous,
    /// How long a call waits for another connection's write lock.
    pub busy_timeout: Duration,
}

pub(crate) struct SqliteDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteDb {
    pub(crate) fn open(path: &Path, options: SqliteOptions) -> Result<Self, DbError> {
        let at = path.display().to_string();
        let err = |source| DbError::Sqlite {
            at: at.clone(),
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
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
            .map_err(err)?;
        conn.busy_timeout(options.busy_timeout).map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.path.display().to_string()
    }

    pub(crate) fn run<R>(&self, work: Work<R>, lock: Option<Lock>) -> Result<R, DbError> {
        let at = self.describe();
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lock) = lock else {
            return work(&mut Conn {
                conn: &conn,
                at: &at,
            });
        };
        let behavior = match lock {
            Lock::Write => rusqlite::TransactionBehavior::Immediate,
            Lock::Exclusive => rusqlite::TransactionBehavior::Exclusive,
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|source| DbError::Sqlite {
                at: at.clone(),
                source,
            })?;
        // Dropping `tx` without commit rolls back.
        let out = work(&mut Conn { conn: &tx, at: &at })?;
        tx.commit()
            .map_err(|source| DbError::Sqlite { at, source })?;
        Ok(out)
    }
}

struct Conn<'a> {
    conn: &'a Connection,
    at: &'a str,
}

impl Conn<'_> {
    fn err(&self, source: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            at: self.at.to_owned(),
            source,
        }
    }
}

/// `$1`, `$2`… (PostgreSQL's parameters, which the shared SQL uses) as SQLite's `?1`, `?2`….
fn sqlite_params(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains('$') {
        sql.replace('$', "?").into()
    } else {
        sql.into()
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

fn read(v: ValueRef<'_>) -> rusqlite::Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(rusqlite::Error::Utf8Error)?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(rusqlite::Error::InvalidColumnType(
                0,
                "a REAL".into(),
                rusqlite::types::Type::Real,
            ));
        }
    })
}

impl Sql for Conn<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let n = self
            .conn
            .execute(&sqlite_params(sql), rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&sqlite_params(sql))
            .map_err(|e| self.err(e))?;
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..columns)
                    .map(|i| read(r.get_ref(i)?))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(Row)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }

    fn kind(&self) -> Kind {
        Kind::Sqlite
    }
}
