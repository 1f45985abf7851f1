//! Loading the module, finding the token by label, opening logged-in sessions. Blocking: call
//! from `spawn_blocking`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use super::error::{Pkcs11Error, init_ok, login_ok};
use crate::Pin;

/// One token in one loaded module, with the PIN to log in. Shared by the session pool and the
/// key-management functions. The last handle of a module to go finalizes it (see [`Lease`]).
pub(crate) struct TokenHandle {
    ctx: Pkcs11,
    _lease: Lease,
    slot: Slot,
    label: String,
    module: PathBuf,
    pin: Pin,
}

impl fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHandle")
            .field("module", &self.module)
            .field("label", &self.label)
            .field("slot", &self.slot.id())
            .field("pin", &self.pin)
            .finish()
    }
}

impl TokenHandle {
    /// Loads `module`, initialises it (already initialised is fine) and finds the token
    /// labelled `label`.
    pub(crate) fn open(module: &Path, label: &str, pin: Pin) -> Result<Self, Pkcs11Error> {
        if !module.is_file() {
            return Err(Pkcs11Error::ModuleMissing {
                path: module.to_owned(),
                reason: "no such file".into(),
            });
        }
        let lease = Lease::take(module, label)?;
        let ctx = lease.ctx.clone();
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(|e| Pkcs11Error::from_cryptoki(e, label))?;
        let mut present = Vec::new();
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| Pkcs11Error::from_cryptoki(e, label))?;
            let found = info.label().trim_end();
            if found == label {
                return Ok(Self {
                    ctx,
                    _lease: lease,
                    slot,
                    label: label.to_owned(),
                    module: module.to_owned(),
                    pin,
                });
            }
            present.push(found.to_owned());
        }
        Err(Pkcs11Error::TokenNotFound {
            label: label.to_owned(),
            module: module.to_owned(),
            present,
        })
    }

    pub(crate) fn slot_id(&self) -> u64 {
        self.slot.id()
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Opens a session and logs the user in (`CKR_USER_ALREADY_LOGGED_IN` is success). Pool
    /// sessions are not closed on drop: a lost session's handle must never be closed later,
    /// it may by then name someone else's session.
    pub(crate) fn login_session(&self, rw: bool, pooled: bool) -> Result<Session, Pkcs11Error> {
        let session = match (rw, pooled) {
            (false, false) => self.ctx.open_ro_session(self.slot),
            (true, false) => self.ctx.open_rw_session(self.slot),
            (false, true) => self.ctx.open_ro_session_no_drop(self.slot),
            (true, true) => self.ctx.open_rw_session_no_drop(self.slot),
        }
        .map_err(|e| self.err(e))?;
        login_ok(session.login(UserType::User, Some(self.pin.secret())))
            .map_err(|e| self.err(e))?;
        Ok(session)
    }

    pub(crate) fn err(&self, e: cryptoki::error::Error) -> Pkcs11Error {
        Pkcs11Error::from_cryptoki(e, &self.label)
    }
}

/// A loaded module and how many token handles use it now.
struct Module {
    ctx: Pkcs11,
    owners: usize,
}

/// The modules loaded in this process, by canonical path. `C_Initialize`/`C_Finalize` happen
/// under this lock: modules such as SoftHSM2 are not safe against concurrent first
/// initialisation, and PKCS#11 expects one context per application. A module stays loaded
/// (never `dlclose`d) once loaded: unloading a library that registered exit handlers (OpenSSL,
/// under SoftHSM2) is what would crash at exit.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();

fn modules() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Module>> {
    MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// One user of an initialised module. The first lease (again) initialises it; dropping the last
/// one finalizes it, so a process that drops its tokens and signers before exiting leaves the
/// module with no session and no state for its static destructors to race with (SoftHSM2
/// crashed at exit about once in six test runs before).
struct Lease {
    key: PathBuf,
    ctx: Pkcs11,
}

impl Lease {
    fn take(module: &Path, label: &str) -> Result<Self, Pkcs11Error> {
        let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_owned());
        let mut modules = modules();
        let entry = match modules.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ctx = Pkcs11::new(module).map_err(|e| Pkcs11Error::ModuleMissing {
                    path: module.to_owned(),
                    reason: e.to_string(),
                })?;
                e.insert(Module { ctx, owners: 0 })
            }
        };
        if entry.owners == 0 {
            init_ok(
                entry
                    .ctx
                    .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
            )
            .map_err(|e| Pkcs11Error::from_cryptoki(e, label))?;
        }
        entry.owners += 1;
        Ok(Self {
            key,
            ctx: entry.ctx.clone(),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut modules = modules();
        let Some(module) = modules.get_mut(&self.key) else {
            return;
        };
        module.owners = module.owners.saturating_sub(1);
        if module.owners == 0 {
            match module.ctx.clone().finalize() {
                Ok(()) => tracing::debug!(module = %self.key.display(), "PKCS#11 module finalized"),
                Err(e) => {
                    tracing::warn!(module = %self.key.display(), error = %e, "PKCS#11 C_Finalize failed")
                }
            }
        }
    }
}

/// Handles currently holding `module` initialised (tests: everything dropped means 0).
pub fn module_users(module: &Path) -> usize {
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_owned());
    modules().get(&key).map_or(0, |m| m.owners)
}
