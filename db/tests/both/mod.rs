//! The two backends side by side, so one test body runs on each: a SQLite file in a temporary
//! folder, or a database of a devkit PostgreSQL server (one server per test).

use std::time::Duration;

use bridge_db::{Db, SqliteOptions, Synchronous};
use bridge_devkit::postgres::PgServer;

/// Where a test's databases live; kept alive for the test.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgServer),
}

impl Backend {
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A server with one database, `test`.
    pub fn postgres() -> Self {
        let server = PgServer::start().expect("test server");
        server.create_database("test").expect("create database");
        Self::Postgres(server)
    }

    pub fn both() -> [Self; 2] {
        [Self::sqlite(), Self::postgres()]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// A new connection (handle) to the same data.
    pub fn open(&self) -> Db {
        match self {
            Self::Sqlite(dir) => Db::sqlite(
                dir.path().join("test.db"),
                SqliteOptions {
                    synchronous: Synchronous::Full,
                    busy_timeout: Duration::from_secs(10),
                },
            )
            .unwrap(),
            Self::Postgres(server) => Db::postgres(&server.pg_config("test")).unwrap(),
        }
    }
}
