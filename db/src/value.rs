//! The values both backends store alike, and rows read back.

use crate::DbError;

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
    /// SQLite BLOB, PostgreSQL BYTEA.
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One row of a query's answer, read by column index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, DbError> {
        self.0.get(i).ok_or(DbError::Column {
            index: i,
            expected: "a column",
            found: "nothing (the query returns fewer columns)",
        })
    }

    fn wrong(i: usize, expected: &'static str, v: &Value) -> DbError {
        DbError::Column {
            index: i,
            expected,
            found: match v {
                Value::Null => "NULL",
                Value::Int(_) => "an integer",
                Value::Text(_) => "text",
                Value::Bytes(_) => "bytes",
            },
        }
    }

    /// Column `i` as an integer (not NULL).
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            v => Err(Self::wrong(i, "an integer", v)),
        }
    }

    /// Column `i` as an integer or NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            v => Err(Self::wrong(i, "an integer or NULL", v)),
        }
    }

    /// Column `i` as text (not NULL).
    pub fn text(&self, i: usize) -> Result<&str, DbError> {
        match self.at(i)? {
            Value::Text(v) => Ok(v),
            v => Err(Self::wrong(i, "text", v)),
        }
    }

    /// Column `i` as text or NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v)),
            v => Err(Self::wrong(i, "text or NULL", v)),
        }
    }

    /// Column `i` as bytes (not NULL).
    pub fn bytes(&self, i: usize) -> Result<&[u8], DbError> {
        match self.at(i)? {
            Value::Bytes(v) => Ok(v),
            v => Err(Self::wrong(i, "bytes", v)),
        }
    }

    /// Column `i` as bytes or NULL.
    pub fn opt_bytes(&self, i: usize) -> Result<Option<&[u8]>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Bytes(v) => Ok(Some(v)),
            v => Err(Self::wrong(i, "bytes or NULL", v)),
        }
    }
}
