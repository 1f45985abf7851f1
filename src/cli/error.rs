//! What can go wrong in a `keys` command, each with a hint telling the operator what to do.
//! No variant ever holds a PIN.

use std::path::PathBuf;

use bridge_signer::aws_kms::AwsKmsError;
use bridge_signer::pkcs11::Pkcs11Error;
use bridge_signer::{ConfigError, KeyStoreError, PinError};

use super::signer_args::PIN_ENV;

/// A failed `keys` command.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The flags do not make sense together (or one is missing). Every problem is listed.
    #[error("{}", .0.join("\n       "))]
    Usage(Vec<String>),
    /// The `--config` file cannot be read or parsed, or has no `[signer]` table.
    #[error("config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The `--config` file has problems (each named with its path and line, no secret shown).
    #[error(transparent)]
    AgentConfig(#[from] bridge_agent::config::ConfigError),
    /// The `[signer]` table (or the flags turned into one) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The PIN could not be read.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The PKCS#11 module, token or key failed.
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    /// KMS (or the KMS-protocol endpoint) failed.
    #[error(transparent)]
    AwsKms(#[from] AwsKmsError),
    /// The key cannot serve (another backend's, or not a signing key).
    #[error("{0}")]
    Key(String),
    /// Writing the result failed (e.g. stdout closed).
    #[error("cannot write the result: {0}")]
    Output(String),
}

impl From<KeyStoreError> for KeysError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Usage(problem) => Self::usage(problem),
            KeyStoreError::Config(e) => Self::Config(e),
            KeyStoreError::Pin(e) => Self::Pin(e),
            KeyStoreError::Pkcs11(e) => Self::Pkcs11(e),
            KeyStoreError::AwsKms(e) => Self::AwsKms(e),
            e @ (KeyStoreError::BackendMismatch { .. } | KeyStoreError::Unusable(_)) => {
                Self::Key(e.to_string())
            }
        }
    }
}

impl KeysError {
    /// A usage error with one problem.
    pub fn usage(problem: impl Into<String>) -> Self {
        Self::Usage(vec![problem.into()])
    }

    /// 2 for a command line that cannot work as written (like clap's own errors), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }

    /// What to do about it, if there is more to say than the message.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::Usage(_) => "see `bridge-agent keys <command> --help` for the flags and examples",
            Self::AgentConfig(_) => {
                "`bridge-agent config check --config FILE` checks the file; the [signer] table \
                 is described in `bridge-agent keys --help`"
            }
            Self::ConfigFile { .. } | Self::Config(_) => {
                "the [signer] table is described in `bridge-agent keys --help`"
            }
            Self::Pin(PinError::EnvMissing { .. } | PinError::EnvNotUnicode { .. }) => {
                return Some(format!(
                    "export the PIN without echoing it (`read -rs {PIN_ENV}; export {PIN_ENV}`), \
                     or pass --pin-file FILE (a file holding only the PIN, chmod 600)"
                ));
            }
            Self::Pin(_) => {
                "the PIN file must hold the PIN on one line; check path and permissions"
            }
            Self::Pkcs11(e) => return pkcs11_hint(e),
            Self::AwsKms(e) => return aws_kms_hint(e),
            Self::Key(_) | Self::Output(_) => return None,
        };
        Some(hint.to_owned())
    }
}

fn pkcs11_hint(e: &Pkcs11Error) -> Option<String> {
    let hint = match e {
        Pkcs11Error::ModuleMissing { .. } => {
            "check --module (or `module` in [signer]): it must be the PKCS#11 library file, \
             e.g. /usr/lib/softhsm/libsofthsm2.so for SoftHSM2"
        }
        Pkcs11Error::TokenNotFound { .. } => {
            "check --token-label (or `token_label` in [signer]); labels are case-sensitive. \
             For SoftHSM2 list tokens with `softhsm2-util --show-slots` (it reads SOFTHSM2_CONF) \
             or create one with `softhsm2-util --init-token --free --label LABEL`"
        }
        Pkcs11Error::WrongPin { .. } => {
            return Some(format!(
                "the PIN comes from {PIN_ENV}, --pin-file, or `pin` in [signer]; check that \
                 source (the PIN itself is never printed)"
            ));
        }
        Pkcs11Error::KeyNotFound { .. } => {
            "`bridge-agent keys list` with the same --config or --module/--token-label shows \
             the keys on this token; select one with --label NAME or --id HEX"
        }
        Pkcs11Error::AmbiguousKey { .. } => {
            "select the key by --id HEX; `bridge-agent keys list` shows each key's id"
        }
        Pkcs11Error::KeyExists { .. } => {
            "choose another --label, or look at the existing key with `bridge-agent keys show --label NAME`"
        }
        e if e.is_transient() => "the token is busy or lost the session; try again",
        _ => return None,
    };
    Some(hint.to_owned())
}

fn aws_kms_hint(e: &AwsKmsError) -> Option<String> {
    let hint = match e {
        AwsKmsError::KeyNotFound { .. } => {
            "`bridge-agent keys list --backend aws-kms` with the same --region/--endpoint shows \
             the secp256k1 keys; check --key-id (or `key_id` in [signer])"
        }
        AwsKmsError::AccessDenied { .. } => {
            "credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, SSO, \
             instance role); check them and the key policy"
        }
        AwsKmsError::NoRegion => "pass --region R (or `region` in [signer]) or set AWS_REGION",
        AwsKmsError::Unreachable { .. } | AwsKmsError::Timeout { .. } => {
            "check --endpoint (or `endpoint` in [signer]) and the network; try again"
        }
        AwsKmsError::Config(_) | AwsKmsError::InvalidAlias { .. } => {
            "see `bridge-agent keys <command> --help`"
        }
        e if e.is_transient() => "KMS is throttling or unavailable; try again",
        _ => return None,
    };
    Some(hint.to_owned())
}
