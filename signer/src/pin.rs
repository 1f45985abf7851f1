//! PINs and where they come from. A PIN is never in a config file, never printed, never logged.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

/// A token PIN. Zeroised on drop; `Debug` prints `Pin(REDACTED)`.
#[derive(Clone)]
pub struct Pin(SecretString);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(REDACTED)")
    }
}

impl Pin {
    /// Wraps a PIN given by the caller (e.g. read from a prompt).
    pub fn new(pin: impl Into<String>) -> Self {
        Self(SecretString::from(pin.into()))
    }

    /// Reads the PIN from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, PinError> {
        match std::env::var(var) {
            Ok(v) => {
                let v = Zeroizing::new(v);
                if v.is_empty() {
                    return Err(PinError::Empty {
                        source_desc: format!("environment variable {var}"),
                    });
                }
                Ok(Self::new(v.as_str()))
            }
            Err(std::env::VarError::NotPresent) => Err(PinError::EnvMissing { var: var.into() }),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(PinError::EnvNotUnicode { var: var.into() })
            }
        }
    }

    /// Reads the PIN from a file; one trailing newline is ignored.
    pub fn from_file(path: &Path) -> Result<Self, PinError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| PinError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?);
        warn_if_world_readable(path);
        let pin = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        if pin.is_empty() {
            return Err(PinError::Empty {
                source_desc: format!("file {}", path.display()),
            });
        }
        Ok(Self::new(pin))
    }

    // Only the pkcs11 backend logs in with a PIN.
    #[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
    pub(crate) fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The PIN's characters, for handing to a token. Keep the borrow short.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "PIN file is readable by group or others; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

/// Where the PIN comes from, as written in config: `pin = { env = "BRIDGE_PKCS11_PIN" }` or
/// `pin = { file = "/run/secrets/pin" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PinSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path.
    File(PathBuf),
}

impl PinSource {
    /// Reads the PIN.
    pub fn load(&self) -> Result<Pin, PinError> {
        match self {
            Self::Env(var) => Pin::from_env(var),
            Self::File(path) => Pin::from_file(path),
        }
    }
}

/// Why a PIN could not be read. Never contains the PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The environment variable is not set.
    #[error("PIN environment variable {var} is not set")]
    EnvMissing {
        /// Its name.
        var: String,
    },
    /// The environment variable is not valid UTF-8.
    #[error("PIN environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// Its name.
        var: String,
    },
    /// The file could not be read.
    #[error("cannot read PIN file {}: {reason}", path.display())]
    File {
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The source holds an empty PIN.
    #[error("PIN from {source_desc} is empty")]
    Empty {
        /// Which source.
        source_desc: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_pin_trims_one_newline_and_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "s3cr3t-PIN\n").unwrap();
        let pin = Pin::from_file(&path).unwrap();
        assert_eq!(pin.expose(), "s3cr3t-PIN");
        let dbg = format!("{pin:?} {:?}", PinSource::File(path.clone()));
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(Pin::from_file(&path), Err(PinError::Empty { .. })));
        assert!(matches!(
            Pin::from_file(&dir.path().join("missing")),
            Err(PinError::File { .. })
        ));
    }

    #[test]
    fn env_missing_is_named() {
        let err = Pin::from_env("BRIDGE_SIGNER_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            err.to_string(),
            "PIN environment variable BRIDGE_SIGNER_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
