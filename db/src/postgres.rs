//! The PostgreSQL backend. (API fixed; the worker is being built: see the crate docs.)
//!
//! A worker thread owns the connection (the `postgres` crate runs its own small runtime, which
//! must not be inside the agent's); calls are queued to it and the caller blocks for the answer.
//! After a connection fault the worker reconnects on the next call; a call that finds the
//! server down fails with [`DbError::Unavailable`] within `connect_timeout`.

use std::path::PathBuf;
use std::time::Duration;

use crate::{DbError, Lock, Work};

/// How the connection is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    /// No TLS: only for a server on this host (a Unix socket or loopback).
    Disable,
    /// TLS, the server's certificate verified against `ca_file` (PEM), or the Mozilla roots
    /// when `None`, and its name against the URL's host.
    VerifyFull {
        /// The CA bundle that signed the server's certificate.
        ca_file: Option<PathBuf>,
    },
}

/// Where and how to connect. `url` holds the password: it is never printed.
#[derive(Clone)]
pub struct PgConfig {
    /// A `postgres://` URL or libpq `key=value` string.
    pub url: String,
    /// Encryption.
    pub tls: PgTls,
    /// Bound on connecting (and on each reconnect).
    pub connect_timeout: Duration,
    /// Bound on each statement (server side `statement_timeout`).
    pub statement_timeout: Duration,
    /// `application_name`, seen in `pg_stat_activity`.
    pub application_name: String,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"<redacted>")
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

pub(crate) struct PgDb {
    at: String,
}

impl PgDb {
    pub(crate) fn connect(config: &PgConfig) -> Result<Self, DbError> {
        let _ = config;
        Err(DbError::Unavailable {
            at: "postgres".into(),
            reason: "the PostgreSQL backend is not built yet".into(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.at.clone()
    }

    pub(crate) fn run<R>(&self, work: Work<R>, lock: Option<Lock>) -> Result<R, DbError> {
        let _ = (work, lock);
        Err(DbError::Unavailable {
            at: self.at.clone(),
            reason: "the PostgreSQL backend is not built yet".into(),
        })
    }
}
