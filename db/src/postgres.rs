//! The PostgreSQL backend.
//!
//! A worker thread owns the connection and a small runtime of its own that drives it (the
//! client is asynchronous; its runtime must not be the agent's, whose threads must never block
//! on it); calls are queued to it and the caller blocks for the answer (on the agent's runtime,
//! its thread's other tasks move to another thread meanwhile). Connecting as a whole and
//! every call are bounded on the client side too, so a stalled network fails a call instead of
//! holding the worker. After a connection fault the worker reconnects on the next call; a call
//! that finds the server down fails with [`DbError::Unavailable`] within `connect_timeout`.

mod connect;
mod values;
mod worker;

use std::any::Any;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
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
    /// The server ends this connection's session when it sits idle inside a transaction for
    /// longer (`idle_in_transaction_session_timeout`), rolling the transaction back. A replica
    /// paused in the middle of a journal transaction holds the lease row `FOR SHARE`; this frees
    /// it, so a follower's takeover is not held up for as long as the pause lasts.
    pub idle_in_transaction_timeout: Option<Duration>,
    /// True: a commit returns once it is on the server's disk (`synchronous_commit = on`).
    /// False (`off`): it returns before; a crash of the server may lose the last commits (at
    /// most about three `wal_writer_delay`s, 600 ms by default), never their order, like
    /// SQLite's `synchronous = NORMAL`. For data that can be rebuilt, never for the journal.
    pub durable_commits: bool,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"<redacted>")
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field(
                "idle_in_transaction_timeout",
                &self.idle_in_transaction_timeout,
            )
            .field("durable_commits", &self.durable_commits)
            .finish()
    }
}

/// One queued call: runs on the worker, sends its own answer.
type Job = Box<dyn FnOnce(&mut worker::Worker) + Send>;

/// What a call sends back: its result, or the panic of its work (re-raised on the caller).
type Answer<R> = Result<Result<R, DbError>, Box<dyn Any + Send>>;

pub(crate) struct PgDb {
    at: String,
    /// `None` once dropped (the worker then ends).
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl PgDb {
    /// Checks the settings, connects once (a server that cannot be reached now is reported
    /// here), and starts the worker.
    pub(crate) fn connect(config: &PgConfig) -> Result<Self, DbError> {
        let target = connect::Target::new(config)?;
        let at = target.at.clone();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::sync_channel::<Result<(), DbError>>(1);
        // The runtime is made, driven and dropped on the worker thread only: the caller may be
        // on the agent's runtime, where another cannot run.
        let thread = std::thread::Builder::new()
            .name("bridge-db-pg".into())
            .spawn(move || {
                let mut worker = match worker::Worker::new(target) {
                    Ok(w) => w,
                    Err(e) => return drop(ready.send(Err(e))),
                };
                let first = worker.connect();
                let failed = first.is_err();
                let _ = ready.send(first);
                if failed {
                    return;
                }
                for job in queue {
                    job(&mut worker);
                }
            })
            .map_err(|e| DbError::Unavailable {
                at: at.clone(),
                reason: format!("cannot start the connection's thread: {e}"),
            })?;
        let first = started
            .recv()
            .unwrap_or_else(|_| Err(DbError::WorkerStopped { at: at.clone() }));
        if let Err(e) = first {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Self {
            at,
            jobs: Mutex::new(Some(jobs)),
            worker: Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.at.clone()
    }

    pub(crate) fn run<R: Send + 'static>(
        &self,
        work: Work<R>,
        lock: Option<Lock>,
    ) -> Result<R, DbError> {
        let stopped = || DbError::WorkerStopped {
            at: self.at.clone(),
        };
        let (reply, answer) = mpsc::sync_channel::<Answer<R>>(1);
        let job: Job = Box::new(move |w: &mut worker::Worker| {
            let _ = reply.send(w.run(work, lock));
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        match wait(&answer) {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(stopped()),
        }
    }
}

/// Waits for the worker's answer. On a thread of a multi-threaded tokio runtime (the agent's),
/// the thread's other tasks are handed to another thread for the wait, so a round trip to the
/// server does not stall the executor; elsewhere (a plain thread, a current-thread runtime,
/// where handing over is not possible) the thread just blocks.
fn wait<T>(answer: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| answer.recv())
        }
        _ => answer.recv(),
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Closing the queue ends the worker once the calls before are done; it closes the
        // connection as it ends.
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The last handle may be dropped by a call's own work, on the worker itself.
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}
