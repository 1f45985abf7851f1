//! [`Value`]s as PostgreSQL parameters and columns: Int ↔ BIGINT (INT2/INT4 read as Int too,
//! BOOL as 0/1 like SQLite), Text ↔ TEXT/VARCHAR, Bytes ↔ BYTEA, Null for any type.

use std::error::Error as StdError;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::{DbError, Row, Value};

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                // `$1 * interval '1 ms'` infers a float: exact up to 2^53.
                Type::FLOAT8 if v.unsigned_abs() <= 1 << 53 => (*v as f64).to_sql(ty, out),
                _ => Err(wrong("an integer", ty)),
            },
            Value::Text(v) => v.as_str().to_sql(ty, out),
            Value::Bytes(v) => v.as_slice().to_sql(ty, out),
        }
    }

    /// Any type: the variant decides in `to_sql_checked`, and NULL binds to every type.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let fits = match self {
            Value::Null => true,
            Value::Int(_) => matches!(*ty, Type::INT8 | Type::INT4 | Type::INT2 | Type::FLOAT8),
            Value::Text(_) => <&str as ToSql>::accepts(ty),
            Value::Bytes(_) => <&[u8] as ToSql>::accepts(ty),
        };
        if !fits {
            let what = match self {
                Value::Int(_) => "an integer",
                Value::Text(_) => "text",
                _ => "bytes",
            };
            return Err(wrong(what, ty));
        }
        self.to_sql(ty, out)
    }
}

fn wrong(what: &str, ty: &Type) -> BoxError {
    format!("{what} cannot be bound to a parameter of type {ty}").into()
}

/// One row as [`Value`]s, or an error naming the column whose type this layer does not read.
pub(super) fn read_row(at: &str, row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let bad = |i: usize, e: tokio_postgres::Error| DbError::Postgres {
        at: at.to_owned(),
        message: format!("column {i}: {e}"),
        code: None,
    };
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let v = match *ty {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map(|v| v.map(Value::Bytes)),
            _ if <String as tokio_postgres::types::FromSql>::accepts(ty) => row
                .try_get::<_, Option<String>>(i)
                .map(|v| v.map(Value::Text)),
            _ => {
                return Err(DbError::Postgres {
                    at: at.to_owned(),
                    message: format!(
                        "column {i} ({}) has type {ty}, which bridge-db does not read: cast it \
                         to BIGINT, TEXT or BYTEA",
                        column.name()
                    ),
                    code: None,
                });
            }
        }
        .map_err(|e| bad(i, e))?;
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}
