//! Versioned schemas. Each component (the store, the journal) lists its migrations; opening
//! brings the tables up to the newest in one transaction, and refuses tables a newer build
//! wrote (their rows may mean something this build does not know) without touching them.
//!
//! SQLite keeps the version in the file's `PRAGMA user_version` (one component per file, as
//! before this crate existed). PostgreSQL keeps one row per component in `schema_versions`;
//! concurrent openers (replicas starting together) take turns on an advisory lock.

use crate::{Db, DbError, Kind, Lock, Sql, Value};

/// One step of a component's schema. Versions start at 1 and rise by one; a step is written
/// so that running it on tables from before versions were kept changes nothing
/// (`CREATE … IF NOT EXISTS`).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version the tables have after this step.
    pub version: i64,
    /// The step in SQLite's dialect.
    pub sqlite: &'static str,
    /// The step in PostgreSQL's dialect.
    pub postgres: &'static str,
}

/// Advisory-lock key the PostgreSQL schema check holds for its transaction ("bridgeDB").
const SCHEMA_LOCK: i64 = 0x6272_6964_6765_4442;

/// Brings `component`'s tables in `db` up to the last of `migrations`. Returns the version
/// found before (0: new). A newer or unknown version is refused and nothing is changed.
pub fn prepare(
    db: &Db,
    component: &'static str,
    migrations: &'static [Migration],
) -> Result<i64, DbError> {
    let at = db.describe();
    db.transaction(Lock::Exclusive, move |sql| {
        let found = read_version(sql, component)?;
        let supported = migrations.last().map_or(0, |m| m.version);
        if found > supported {
            return Err(DbError::NewerSchema {
                at,
                component: component.into(),
                found,
                supported,
            });
        }
        if found < 0 {
            return Err(DbError::UnknownSchema {
                at,
                component: component.into(),
                found,
            });
        }
        for m in migrations.iter().filter(|m| m.version > found) {
            sql.execute_batch(match sql.kind() {
                Kind::Sqlite => m.sqlite,
                Kind::Postgres => m.postgres,
            })?;
        }
        if supported != found {
            write_version(sql, component, supported)?;
        }
        Ok(found)
    })
}

/// The version `component`'s tables have now (0: none yet).
pub fn version(db: &Db, component: &'static str) -> Result<i64, DbError> {
    db.transaction(Lock::Write, move |sql| read_version(sql, component))
}

fn read_version(sql: &mut dyn Sql, component: &str) -> Result<i64, DbError> {
    match sql.kind() {
        Kind::Sqlite => sql
            .query_opt("PRAGMA user_version", &[])?
            .map_or(Ok(0), |r| r.int(0)),
        Kind::Postgres => {
            sql.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[Value::Int(SCHEMA_LOCK)],
            )?;
            sql.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_versions (
                     component TEXT PRIMARY KEY,
                     version   BIGINT NOT NULL
                 )",
            )?;
            sql.query_opt(
                "SELECT version FROM schema_versions WHERE component = $1",
                &[component.into()],
            )?
            .map_or(Ok(0), |r| r.int(0))
        }
    }
}

fn write_version(sql: &mut dyn Sql, component: &str, version: i64) -> Result<(), DbError> {
    match sql.kind() {
        // PRAGMA takes no parameters; `version` is an integer this build chose.
        Kind::Sqlite => sql.execute_batch(&format!("PRAGMA user_version = {version}")),
        Kind::Postgres => sql
            .execute(
                "INSERT INTO schema_versions (component, version) VALUES ($1, $2)
                 ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                &[component.into(), Value::Int(version)],
            )
            .map(drop),
    }
}
