//! Errors of the PKCS#11 backend, sorted into what a caller can act on.

use std::path::PathBuf;
use std::time::Duration;

use cryptoki::error::{Error as CkError, RvError};

/// A PKCS#11 failure. [`Pkcs11Error::is_transient`] tells retryable ones apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The module file does not exist or is not a loadable PKCS#11 library.
    #[error("PKCS#11 module {} cannot be loaded: {reason} (install it, e.g. `apt-get install softhsm2`, or fix `module`)", path.display())]
    ModuleMissing {
        /// The configured path.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// No initialised token carries the label.
    #[error("no token labelled {label:?} in module {} (tokens present: {present:?})", module.display())]
    TokenNotFound {
        /// The configured label.
        label: String,
        /// The module searched.
        module: PathBuf,
        /// Labels that are present.
        present: Vec<String>,
    },
    /// The token rejected the PIN.
    #[error(
        "wrong PIN for token {token:?} (CKR_PIN_INCORRECT); check the PIN source, repeated failures may lock the token"
    )]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The token's user PIN is locked.
    #[error(
        "user PIN of token {token:?} is locked (CKR_PIN_LOCKED); the security officer must reset it"
    )]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// No private EC key matches the selector.
    #[error("no private key matching {selector} on token {token:?}")]
    KeyNotFound {
        /// The key selector, e.g. `label "op-1"`.
        selector: String,
        /// The token label.
        token: String,
    },
    /// Several private keys match the selector.
    #[error("{count} private keys match {selector} on token {token:?}; select by key_id")]
    AmbiguousKey {
        /// The key selector.
        selector: String,
        /// The token label.
        token: String,
        /// How many matched.
        count: usize,
    },
    /// The key is not a secp256k1 EC key pair usable for signing.
    #[error("key {selector} cannot be used: {reason}")]
    WrongKeyType {
        /// The key selector.
        selector: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key with this label already exists (generation refuses to shadow it).
    #[error("a key labelled {label:?} already exists on token {token:?}")]
    KeyExists {
        /// The label.
        label: String,
        /// The token label.
        token: String,
    },
    /// The token created a key that is extractable or not sensitive; it was destroyed.
    #[error("token ignored CKA_SENSITIVE/CKA_EXTRACTABLE for new key {label:?}; key destroyed")]
    KeyNotProtected {
        /// The label.
        label: String,
    },
    /// The session or login was lost and re-opening did not help.
    #[error("PKCS#11 session lost in {function}: {rv}")]
    SessionLost {
        /// The PKCS#11 function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// The token is busy or out of resources.
    #[error("PKCS#11 token busy in {function}: {rv}")]
    Busy {
        /// The PKCS#11 function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// The call did not return in time (the blocking thread is abandoned, its session dropped).
    #[error("PKCS#11 call timed out after {0:?}")]
    Timeout(Duration),
    /// Any other failure of a PKCS#11 call.
    #[error("PKCS#11 {function} failed: {rv}")]
    Call {
        /// The PKCS#11 function.
        function: String,
        /// The return value or wrapper error.
        rv: String,
    },
    /// The blocking task running the call panicked.
    #[error("PKCS#11 worker task failed: {0}")]
    Task(String),
}

impl Pkcs11Error {
    /// True for busy, session lost and timeout: the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::SessionLost { .. } | Self::Busy { .. } | Self::Timeout(_)
        )
    }

    /// True if the session (or the login behind it) is gone and must be re-opened.
    pub(crate) fn is_session_lost(&self) -> bool {
        matches!(self, Self::SessionLost { .. })
    }

    /// Sorts a cryptoki error. `token` names the token for PIN errors.
    pub(crate) fn from_cryptoki(err: CkError, token: &str) -> Self {
        let CkError::Pkcs11(rv, function) = err else {
            return Self::Call {
                function: "cryptoki".into(),
                rv: err.to_string(),
            };
        };
        let (function, rv_text) = (format!("C_{function:?}"), format!("CKR {rv:?}"));
        match rv {
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => Self::WrongPin {
                token: token.into(),
            },
            RvError::PinLocked => Self::PinLocked {
                token: token.into(),
            },
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::CryptokiNotInitialized => Self::SessionLost {
                function,
                rv: rv_text,
            },
            RvError::SessionCount
            | RvError::DeviceMemory
            | RvError::HostMemory
            | RvError::DeviceError
            | RvError::FunctionFailed
            | RvError::OperationActive
            | RvError::FunctionCanceled
            // SoftHSM answers a login racing another process's login on the same token
            // with CKR_GENERAL_ERROR; the same call succeeds a moment later.
            | RvError::GeneralError => Self::Busy {
                function,
                rv: rv_text,
            },
            _ => Self::Call {
                function,
                rv: rv_text,
            },
        }
    }
}

/// `CKR_USER_ALREADY_LOGGED_IN` counts as success.
pub(crate) fn login_ok(result: cryptoki::error::Result<()>) -> cryptoki::error::Result<()> {
    match result {
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        other => other,
    }
}

/// `CKR_CRYPTOKI_ALREADY_INITIALIZED` counts as success (several signers in one process).
pub(crate) fn init_ok(result: cryptoki::error::Result<()>) -> cryptoki::error::Result<()> {
    match result {
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        other => other,
    }
}
