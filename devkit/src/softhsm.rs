//! SoftHSM2 for development, CI and the demo: a token folder with its own config file, and
//! tokens initialised through PKCS#11 itself (`C_InitToken`, `C_InitPIN`), so neither PIN is
//! ever put on a command line (`softhsm2-util --pin` would show it to every user of the host in
//! `ps`). SoftHSM keeps its keys in files on this host and runs inside the process that loads
//! it: it is not a place for production keys.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

/// Where Debian's `softhsm2` package installs the module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Why a token could not be made; each names the step and the token.
#[derive(Debug, thiserror::Error)]
pub enum SoftHsmError {
    #[error(
        "SoftHSM module {MODULE} cannot be loaded: {0} (install it with ./scripts/setup or \
         apt-get install softhsm2)"
    )]
    Module(CkError),
    #[error(
        "SoftHSM is already started in this process (a token was opened): create the tokens \
         before anything opens one"
    )]
    AlreadyStarted,
    #[error("token {label}: {step}: {source}")]
    Step {
        label: String,
        step: &'static str,
        source: CkError,
    },
}

/// A SoftHSM token folder and the config file naming it. Processes find it through the
/// `SOFTHSM2_CONF` environment variable, set to [`SoftHsmDir::conf`].
#[derive(Debug, Clone)]
pub struct SoftHsmDir {
    pub conf: PathBuf,
}

impl SoftHsmDir {
    /// Creates `dir/tokens` and `dir/softhsm2.conf` pointing at it (file object store, errors
    /// only in the log, slots that do not disappear).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let tokens = tokens.canonicalize()?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )?;
        Ok(Self { conf })
    }

    /// Initialises one token per label, each in a free slot, with the same user and SO PINs.
    ///
    /// SoftHSM runs in this process and reads its folder from `SOFTHSM2_CONF` when it starts,
    /// so the variable names [`SoftHsmDir::conf`] meanwhile (the earlier value is put back).
    /// Nothing in this process may have SoftHSM open (the signer keeps it started once it
    /// opened a token): make tokens first. SoftHSM is stopped again before this returns, so the
    /// signer starts it afresh and sees the tokens.
    pub fn init_tokens(
        &self,
        labels: &[&str],
        pin: &str,
        so_pin: &str,
    ) -> Result<(), SoftHsmError> {
        // One set-up at a time: two would share SoftHSM's one process-wide state.
        static ONE: Mutex<()> = Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(PoisonError::into_inner);
        let before = std::env::var_os(CONF_ENV);
        set_conf(Some(self.conf.as_os_str()));
        let made = init_started(labels, pin, so_pin);
        set_conf(before.as_deref());
        made
    }

    /// [`SoftHsmDir::init_tokens`] for one token.
    pub fn init_token(&self, label: &str, pin: &str, so_pin: &str) -> Result<(), SoftHsmError> {
        self.init_tokens(&[label], pin, so_pin)
    }
}

/// Starts SoftHSM (with `SOFTHSM2_CONF` set), makes the tokens, stops it.
fn init_started(labels: &[&str], pin: &str, so_pin: &str) -> Result<(), SoftHsmError> {
    let ctx = module()?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
            return Err(SoftHsmError::AlreadyStarted);
        }
        Err(e) => return Err(SoftHsmError::Module(e)),
    }
    let made = labels
        .iter()
        .try_for_each(|label| init_one(&ctx, label, pin, so_pin));
    // Finalize even after a failure, so a later attempt (or the signer) can start SoftHSM.
    let stopped = ctx.clone().finalize().map_err(SoftHsmError::Module);
    made.and(stopped)
}

const CONF_ENV: &str = "SOFTHSM2_CONF";

#[allow(unsafe_code)]
fn set_conf(value: Option<&std::ffi::OsStr>) {
    // SAFETY: std serialises its own environment reads and writes (Command::spawn included);
    // the C code that reads it here is SoftHSM's start-up, which runs under the same mutex.
    // Tests call this before their threads load SoftHSM, as the signer tests always have.
    unsafe {
        match value {
            Some(v) => std::env::set_var(CONF_ENV, v),
            None => std::env::remove_var(CONF_ENV),
        }
    }
}

/// The module, loaded once per process and never unloaded: unloading SoftHSM (and the OpenSSL
/// it links) while another handle to it is open is asking for a crash at exit.
fn module() -> Result<Pkcs11, SoftHsmError> {
    static LOADED: Mutex<Option<Pkcs11>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = loaded.as_ref() {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(MODULE).map_err(SoftHsmError::Module)?;
    *loaded = Some(ctx.clone());
    Ok(ctx)
}

/// `C_InitToken` in the first uninitialised slot (SoftHSM always keeps one), then `C_InitPIN`
/// as the security officer.
fn init_one(ctx: &Pkcs11, label: &str, pin: &str, so_pin: &str) -> Result<(), SoftHsmError> {
    let step = |step: &'static str| {
        move |source| SoftHsmError::Step {
            label: label.to_string(),
            step,
            source,
        }
    };
    let slots = ctx.get_slots_with_token().map_err(step("list slots"))?;
    let mut free = None;
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(step("read a slot's token"))?;
        if !info.token_initialized() {
            free = Some(slot);
            break;
        }
    }
    let slot = free.ok_or_else(|| SoftHsmError::Step {
        label: label.to_string(),
        step: "find a free slot",
        source: CkError::Pkcs11(
            RvError::SlotIdInvalid,
            cryptoki::context::Function::InitToken,
        ),
    })?;
    let so_pin = AuthPin::from(so_pin);
    ctx.init_token(slot, &so_pin, label)
        .map_err(step("initialise the token"))?;
    // The token now has its own slot; SoftHSM opened a new free one for the next label.
    let session = ctx.open_rw_session(slot).map_err(step("open a session"))?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(step("log in as security officer"))?;
    session
        .init_pin(&AuthPin::from(pin))
        .map_err(step("set the user PIN"))?;
    session.logout().map_err(step("log out"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The tokens are really there, initialised, with a user PIN: softhsm2-util lists them (no
    /// PIN needed to list). The demo and the key tests log in with the PIN.
    #[test]
    fn makes_initialised_tokens_with_a_user_pin() {
        if !Path::new(MODULE).is_file() {
            panic!("{MODULE} missing: run ./scripts/setup");
        }
        let dir = std::env::temp_dir().join(format!("devkit-softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hsm = SoftHsmDir::create(&dir).unwrap();
        hsm.init_tokens(&["devkit-a", "devkit-b"], "user-pin-1", "so-pin-1")
            .unwrap();
        let out = Command::new("softhsm2-util")
            .env(CONF_ENV, &hsm.conf)
            .arg("--show-slots")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for label in ["devkit-a", "devkit-b"] {
            assert!(
                text.contains(&format!("Label:            {label}")),
                "{text}"
            );
        }
        assert_eq!(text.matches("User PIN init.:   yes").count(), 2, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
