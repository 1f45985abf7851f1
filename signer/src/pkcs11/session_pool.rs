//! A small pool of logged-in sessions, each with the key's object handle, used from async code.
//!
//! ```text
//! run(op) ─ acquire permit (≤ size calls at once) ─ spawn_blocking {
//!     take idle session, or open + login + find key
//!     op(session, key) ── ok ──────────────────────────> return session to the pool
//!         └─ session/login lost ─> forget it, open a fresh one, op again (once)
//! } ─ timeout ─> Timeout (the blocking thread finishes on its own; its permit is held until then)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use tokio::sync::Semaphore;

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

struct Inner {
    token: Arc<TokenHandle>,
    selector: KeySelector,
    idle: Mutex<Vec<Pooled>>,
    reopened: AtomicU64,
}

impl Inner {
    fn take(&self) -> Result<Pooled, Pkcs11Error> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(p) => Ok(p),
            None => Pooled::open(&self.token, &self.selector),
        }
    }

    fn put(&self, p: Pooled) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(p);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        for p in idle {
            let _ = p.session.close();
        }
    }
}

/// The pool. Cheap to share behind the signer's `Arc`.
pub(crate) struct SessionPool {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
    call_timeout: Duration,
}

impl SessionPool {
    pub(crate) fn new(
        token: Arc<TokenHandle>,
        selector: KeySelector,
        size: usize,
        call_timeout: Duration,
        first: Pooled,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                token,
                selector,
                idle: Mutex::new(vec![first]),
                reopened: AtomicU64::new(0),
            }),
            permits: Arc::new(Semaphore::new(size.max(1))),
            call_timeout,
        }
    }

    /// Sessions re-opened after a loss, since start.
    pub(crate) fn reopened(&self) -> u64 {
        self.inner.reopened.load(Ordering::Relaxed)
    }

    /// Runs `op` with a pooled session off the async executor.
    pub(crate) async fn run<T, F>(&self, op: F) -> Result<T, Pkcs11Error>
    where
        T: Send + 'static,
        F: Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| Pkcs11Error::Task(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = inner.take()?;
            match op(pooled.session(), pooled.key()) {
                Ok(v) => {
                    inner.put(pooled);
                    return Ok(v);
                }
                Err(e) => {
                    let err = inner.token.err(e);
                    if !err.is_session_lost() {
                        inner.put(pooled);
                        return Err(err);
                    }
                    tracing::warn!(error = %err, "PKCS#11 session lost; re-opening and logging in again");
                    // Not closed: its handle is dead and may be reused.
                    drop(pooled);
                }
            }
            inner.reopened.fetch_add(1, Ordering::Relaxed);
            let fresh = Pooled::open(&inner.token, &inner.selector)?;
            match op(fresh.session(), fresh.key()) {
                Ok(v) => {
                    inner.put(fresh);
                    Ok(v)
                }
                Err(e) => {
                    let err = inner.token.err(e);
                    if !err.is_session_lost() {
                        inner.put(fresh);
                    }
                    Err(err)
                }
            }
        });
        match tokio::time::timeout(self.call_timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(Pkcs11Error::Task(join.to_string())),
            Err(_) => Err(Pkcs11Error::Timeout(self.call_timeout)),
        }
    }
}
