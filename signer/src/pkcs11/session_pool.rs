//! A small pool of logged-in sessions, each with the key's object handle, used from async code.
//!
//! Each session has its own worker thread. Calls queue on one channel; a worker that finishes
//! a call takes the next queued one at once, so under load a session never waits for the async
//! runtime to hand it work (HSM calls block, and the gap between two of them is lost signing
//! time).
//!
//! ```text
//! run(op) ─ queue job ─> [ worker 1: session 1 ] ─┐
//!                    └─> [ worker 2: session 2 ] ─┼─ op(session, key) ── ok ─> reply
//!                                                 │    └─ session/login lost ─> forget it, open
//!                                                 │       a fresh one, op again (once)
//! await reply ─ timeout ─> Timeout (the job still runs; its answer is dropped)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::config::KeySelector;
use super::error::Pkcs11Error;
use super::keys;
use super::token::TokenHandle;

/// A logged-in session and the private key's handle in it.
pub(crate) struct Pooled {
    session: Session,
    key: ObjectHandle,
}

impl Pooled {
    /// Opens a session, logs in and finds the key.
    pub(crate) fn open(token: &TokenHandle, selector: &KeySelector) -> Result<Self, Pkcs11Error> {
        let session = token.login_session(false, true)?;
        match keys::find_private_key(&session, selector, token) {
            Ok(key) => Ok(Self { session, key }),
            Err(e) => {
                let _ = session.close();
                Err(e)
            }
        }
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    pub(crate) fn key(&self) -> ObjectHandle {
        self.key
    }
}

struct Shared {
    token: Arc<TokenHandle>,
    selector: KeySelector,
    reopened: AtomicU64,
}

/// One worker's session, opened on first use and re-opened after a loss.
struct Slot {
    shared: Arc<Shared>,
    pooled: Option<Pooled>,
}

impl Slot {
    fn run<T>(
        &mut self,
        op: &dyn Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<T, Pkcs11Error> {
        let token = &self.shared.token;
        let pooled = match self.pooled.take() {
            Some(p) => p,
            None => Pooled::open(token, &self.shared.selector)?,
        };
        match op(pooled.session(), pooled.key()) {
            Ok(v) => {
                self.pooled = Some(pooled);
                return Ok(v);
            }
            Err(e) => {
                let err = token.err(e);
                if !err.is_session_lost() {
                    self.pooled = Some(pooled);
                    return Err(err);
                }
                tracing::warn!(error = %err, "PKCS#11 session lost; re-opening and logging in again");
                // Not closed (pooled sessions do not close on drop): its handle is dead and may
                // already belong to a new session.
                drop(pooled);
            }
        }
        self.shared.reopened.fetch_add(1, Ordering::Relaxed);
        let fresh = Pooled::open(token, &self.shared.selector)?;
        let result = op(fresh.session(), fresh.key()).map_err(|e| token.err(e));
        match &result {
            Err(err) if err.is_session_lost() => drop(fresh),
            _ => self.pooled = Some(fresh),
        }
        result
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(p) = self.pooled.take() {
            let _ = p.session.close();
        }
    }
}

type Job = Box<dyn FnOnce(&mut Slot) + Send>;

fn worker(jobs: Arc<Mutex<mpsc::Receiver<Job>>>, mut slot: Slot, exited: mpsc::Sender<()>) {
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(&mut slot),
            Err(_) => break, // the pool was dropped
        }
    }
    // Session closed and token handle released before the pool's drop hears of it.
    drop(slot);
    let _ = exited.send(());
}

/// The pool. Cheap to share behind the signer's `Arc`.
pub(crate) struct SessionPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    shared: Arc<Shared>,
    call_timeout: Duration,
    workers: Vec<JoinHandle<()>>,
    /// Each worker says here that it has stopped (a Mutex only to make the pool `Sync`).
    exited: Mutex<mpsc::Receiver<()>>,
}

impl Drop for SessionPool {
    /// Stops the workers and waits for them (bounded: a call stuck in the HSM is left behind
    /// after its timeout), so that once the pool is gone its sessions are closed and, with the
    /// last token handle, the module is finalized: nothing is left for exit to race with.
    fn drop(&mut self) {
        drop(std::mem::replace(
            self.jobs.get_mut().unwrap_or_else(PoisonError::into_inner),
            mpsc::channel().0,
        ));
        let deadline = Instant::now() + self.call_timeout + Duration::from_secs(1);
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let exited = self
                .exited
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            if exited.recv_timeout(left).is_err() {
                tracing::warn!("a PKCS#11 session worker did not stop in time; not waiting for it");
                return;
            }
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl SessionPool {
    /// Starts `size` workers; `first` (already open) becomes the first worker's session.
    pub(crate) fn new(
        token: Arc<TokenHandle>,
        selector: KeySelector,
        size: usize,
        call_timeout: Duration,
        first: Pooled,
    ) -> Result<Self, Pkcs11Error> {
        let shared = Arc::new(Shared {
            token,
            selector,
            reopened: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let (exited_tx, exited) = mpsc::channel();
        let mut pool = Self {
            jobs: Mutex::new(tx),
            shared,
            call_timeout,
            workers: Vec::new(),
            exited: Mutex::new(exited),
        };
        let mut first = Some(first);
        for i in 0..size.max(1) {
            let slot = Slot {
                shared: Arc::clone(&pool.shared),
                pooled: first.take(),
            };
            let (rx, exited) = (Arc::clone(&rx), exited_tx.clone());
            // On failure the pool built so far is dropped, stopping the workers started.
            let handle = std::thread::Builder::new()
                .name(format!("pkcs11-session-{i}"))
                .spawn(move || worker(rx, slot, exited))
                .map_err(|e| Pkcs11Error::Task(format!("cannot start a session worker: {e}")))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Sessions re-opened after a loss, since start.
    pub(crate) fn reopened(&self) -> u64 {
        self.shared.reopened.load(Ordering::Relaxed)
    }

    /// Runs `op` on a pooled session, on the session's worker thread.
    pub(crate) async fn run<T, F>(&self, op: F) -> Result<T, Pkcs11Error>
    where
        T: Send + 'static,
        F: Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |slot| {
            let _ = reply.send(slot.run(&op));
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| Pkcs11Error::Task("all session workers stopped".into()))?;
        match tokio::time::timeout(self.call_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Pkcs11Error::Task("session worker stopped".into())),
            Err(_) => Err(Pkcs11Error::Timeout(self.call_timeout)),
        }
    }
}
