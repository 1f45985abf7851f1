//! The worker's side: the connection, its own single-threaded runtime, and the [`Sql`] calls
//! run on it, each bounded by a client-side timeout. A fault (closed connection, I/O error, no
//! answer in time) drops the connection; the next call connects again.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::Answer;
use super::connect::{Target, Tls};
use super::values::read_row;
use crate::{DbError, Kind, Lock, Row, Sql, Value, Work};

pub(crate) struct Worker {
    rt: tokio::runtime::Runtime,
    target: Target,
    client: Option<Client>,
    /// Statements prepared on this connection, by their text: a repeated statement costs one
    /// round trip instead of two (prepare, then bind and execute).
    statements: HashMap<String, Statement>,
}

/// Most statements kept prepared; past it the cache starts again (the journal's multi-row
/// INSERT has one text per batch size).
const MAX_PREPARED: usize = 512;

impl Worker {
    /// Must run on the worker thread: a runtime cannot be driven (or dropped) from inside the
    /// agent's.
    pub(super) fn new(target: Target) -> Result<Self, DbError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Unavailable {
                at: target.at.clone(),
                reason: format!("cannot start the connection's runtime: {e}"),
            })?;
        Ok(Self {
            rt,
            target,
            client: None,
            statements: HashMap::new(),
        })
    }

    /// How long one call may wait for its answer: the server cancels a statement at
    /// `statement_timeout`, so a longer wait means the network or the server is gone.
    fn call_timeout(&self) -> Duration {
        self.target.statement_timeout + self.target.connect_timeout.max(Duration::from_secs(1))
    }

    /// Connects (the whole handshake bounded by `connect_timeout`) and sets the session's
    /// `statement_timeout`.
    pub(super) fn connect(&mut self) -> Result<(), DbError> {
        self.client = None;
        self.statements.clear();
        let t = &self.target;
        let mut settings = format!(
            "SET statement_timeout = {};",
            t.statement_timeout.as_millis().max(1)
        );
        if t.durable_commits {
            // A server (or role) configured `off` would make these commits non-durable too:
            // raised to `on` for this session. A stronger setting (`remote_apply`…) is kept.
            settings.push_str(
                " SELECT set_config('synchronous_commit', 'on', false) \
                 WHERE current_setting('synchronous_commit') = 'off';",
            );
        } else {
            settings.push_str(" SET synchronous_commit = off;");
        }
        if let Some(idle) = t.idle_in_transaction_timeout {
            settings.push_str(&format!(
                " SET idle_in_transaction_session_timeout = {};",
                idle.as_millis().max(1)
            ));
        }
        let result = self.rt.block_on(async {
            tokio::time::timeout(t.connect_timeout, async {
                let client = match &t.tls {
                    Tls::None => {
                        let (client, conn) = t.config.connect(NoTls).await?;
                        tokio::spawn(async move { drop(conn.await) });
                        client
                    }
                    Tls::Rustls(tls) => {
                        let (client, conn) = t.config.connect(tls.clone()).await?;
                        tokio::spawn(async move { drop(conn.await) });
                        client
                    }
                };
                client.batch_execute(&settings).await?;
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
        });
        match result {
            Ok(Ok(client)) => {
                self.client = Some(client);
                Ok(())
            }
            Ok(Err(e)) => Err(DbError::Unavailable {
                at: t.at.clone(),
                reason: format!("cannot connect: {}", reason(&e)),
            }),
            Err(_) => Err(DbError::Unavailable {
                at: t.at.clone(),
                reason: format!("cannot connect within {:?}", t.connect_timeout),
            }),
        }
    }

    /// One call: connects if needed, runs `work` (in a transaction when `lock` is given), and
    /// drops the connection after a fault.
    pub(super) fn run<R>(&mut self, work: Work<R>, lock: Option<Lock>) -> Answer<R> {
        if self.client.as_ref().is_none_or(Client::is_closed)
            && let Err(e) = self.connect()
        {
            return Ok(Err(e));
        }
        let call_timeout = self.call_timeout();
        let Some(client) = self.client.as_ref() else {
            return Ok(Err(DbError::WorkerStopped {
                at: self.target.at.clone(),
            }));
        };
        let mut conn = Conn {
            rt: &self.rt,
            client,
            statements: &mut self.statements,
            at: &self.target.at,
            call_timeout,
            broken: false,
            failed: None,
        };
        let answer = match lock {
            None => std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut conn))),
            Some(_) => conn.transaction(work),
        };
        if conn.broken || answer.is_err() {
            // After a panic the session's state is unknown: closing it rolls back.
            self.client = None;
        }
        answer
    }
}

/// The connection as the work sees it.
struct Conn<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: &'a Client,
    statements: &'a mut HashMap<String, Statement>,
    at: &'a str,
    call_timeout: Duration,
    /// A fault: the connection is dropped after this call.
    broken: bool,
    /// The first server error of this call: in a transaction, PostgreSQL then refuses the
    /// rest and turns COMMIT into a rollback.
    failed: Option<String>,
}

impl Conn<'_> {
    fn transaction<R>(&mut self, work: Work<R>) -> Answer<R> {
        if let Err(e) = self.execute_batch("BEGIN ISOLATION LEVEL READ COMMITTED") {
            return Ok(Err(e));
        }
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| work(self)))?;
        Ok(match out {
            Ok(v) => self.commit().map(|()| v),
            Err(e) => {
                if !self.broken && self.execute_batch("ROLLBACK").is_err() {
                    self.broken = true;
                }
                Err(e)
            }
        })
    }

    fn commit(&mut self) -> Result<(), DbError> {
        if let Some(first) = self.failed.clone() {
            // The work went on after an error: the transaction is aborted, unless a savepoint
            // rolled the error back. A probe tells them apart.
            if let Err(e) = self.execute_batch("SELECT 1") {
                if !self.broken && self.execute_batch("ROLLBACK").is_err() {
                    self.broken = true;
                }
                return Err(match e {
                    DbError::Postgres { .. } => DbError::Postgres {
                        at: self.at.to_owned(),
                        message: format!(
                            "the transaction was aborted by an earlier error ({first}); \
                             nothing was committed"
                        ),
                        code: Some("25P02".into()),
                    },
                    e => e,
                });
            }
        }
        self.execute_batch("COMMIT").map_err(|e| match e {
            DbError::Unavailable { at, reason } => DbError::Unavailable {
                at,
                reason: format!("{reason} (during COMMIT: whether it was committed is unknown)"),
            },
            e => e,
        })
    }

    /// `sql` prepared on this connection (once; then from the cache).
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let client = self.client;
        let prepared = self.call(client.prepare(sql))?;
        if self.statements.len() >= MAX_PREPARED {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    /// Runs `call`; after an error the statement is prepared again next time (a schema change
    /// can invalidate a prepared plan).
    fn forget_on_error<T>(
        &mut self,
        sql: &str,
        call: impl FnOnce(&mut Self) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let out = call(self);
        if out.is_err() {
            self.statements.remove(sql);
        }
        out
    }

    fn gone(&self) -> DbError {
        DbError::Unavailable {
            at: self.at.to_owned(),
            reason: "the connection was lost earlier in this call".into(),
        }
    }

    /// Waits for `fut` at most the call's timeout and sorts its error.
    fn call<T>(
        &mut self,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        if self.broken {
            return Err(self.gone());
        }
        let bound = self.call_timeout;
        // The timer must be made inside the runtime.
        match self
            .rt
            .block_on(async { tokio::time::timeout(bound, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => {
                self.broken = true;
                Err(DbError::Unavailable {
                    at: self.at.to_owned(),
                    reason: format!("no answer within {:?}", self.call_timeout),
                })
            }
        }
    }

    /// A server's refusal → [`DbError::Postgres`]; a lost connection → unavailable.
    fn error(&mut self, e: &tokio_postgres::Error) -> DbError {
        let at = self.at.to_owned();
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            // Connection exceptions, and the server shutting down or starting up.
            if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
                self.broken = true;
                return DbError::Unavailable {
                    at,
                    reason: format!("{code}: {}", db.message()),
                };
            }
            let message = reason(e);
            self.failed.get_or_insert_with(|| message.clone());
            if code == crate::lease::FENCED_SQLSTATE {
                return DbError::Fenced {
                    reason: db.message().to_owned(),
                };
            }
            return DbError::Postgres {
                at,
                message,
                code: Some(code.to_owned()),
            };
        }
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io || self.client.is_closed() {
            self.broken = true;
            return DbError::Unavailable {
                at,
                reason: reason(e),
            };
        }
        DbError::Postgres {
            at,
            message: reason(e),
            code: None,
        }
    }
}

/// An error's text: the server's SQLSTATE, message and detail, or the client's words and
/// cause. Neither holds the password.
fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        return s;
    }
    match std::error::Error::source(e) {
        Some(cause) if !e.to_string().contains(&cause.to_string()) => format!("{e}: {cause}"),
        _ => e.to_string(),
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Sql for Conn<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let (client, statement) = (self.client, self.statement(sql)?);
        let params = refs(params);
        self.forget_on_error(sql, |c| c.call(client.execute(&statement, &params)))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let (client, statement) = (self.client, self.statement(sql)?);
        let params = refs(params);
        let rows = self.forget_on_error(sql, |c| c.call(client.query(&statement, &params)))?;
        rows.iter().map(|r| read_row(self.at, r)).collect()
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        let client = self.client;
        self.call(client.batch_execute(sql))
    }

    fn kind(&self) -> Kind {
        Kind::Postgres
    }
}
