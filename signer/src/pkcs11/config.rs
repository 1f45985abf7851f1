//! The `pkcs11` config section. It names where the PIN is, never the PIN itself.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::{PinSource, RetryPolicy};

/// Settings of the PKCS#11 backend (`backend = "pkcs11"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token (slot ids change; labels do not).
    pub token_label: String,
    /// `CKA_LABEL` of the key pair. At least one of `key_label` and `key_id`.
    #[serde(default)]
    pub key_label: Option<String>,
    /// `CKA_ID` of the key pair, in hex.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Where the user PIN comes from.
    pub pin: PinSource,
    /// Sessions in the pool (1–64).
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Upper bound of one PKCS#11 call, in milliseconds.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Retry of transient failures.
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_sessions() -> usize {
    2
}
fn default_call_timeout_ms() -> u64 {
    10_000
}

impl Pkcs11Config {
    /// A config with defaults for everything optional.
    pub fn new(module: impl Into<PathBuf>, token_label: impl Into<String>, pin: PinSource) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.into(),
            key_label: None,
            key_id: None,
            pin,
            sessions: default_sessions(),
            call_timeout_ms: default_call_timeout_ms(),
            retry: RetryPolicy::default(),
        }
    }

    /// Every problem in this section, as `(path, message)`.
    pub fn problems(&self, path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.module.as_os_str().is_empty() {
            out.push((format!("{path}.module"), "must not be empty".into()));
        }
        if self.token_label.is_empty() {
            out.push((format!("{path}.token_label"), "must not be empty".into()));
        } else if self.token_label.len() > 32 {
            out.push((
                format!("{path}.token_label"),
                "PKCS#11 token labels are at most 32 bytes".into(),
            ));
        }
        if let Err(e) = self.key_selector() {
            out.push((format!("{path}.key_label"), e));
        }
        if !(1..=64).contains(&self.sessions) {
            out.push((
                format!("{path}.sessions"),
                "must be between 1 and 64".into(),
            ));
        }
        if self.call_timeout_ms == 0 {
            out.push((format!("{path}.call_timeout_ms"), "must be positive".into()));
        }
        out.extend(self.retry.problems(&format!("{path}.retry")));
        out
    }

    /// The key selector built from `key_label` / `key_id`.
    pub fn key_selector(&self) -> Result<KeySelector, String> {
        let id = match &self.key_id {
            Some(hex_id) => Some(
                hex::decode(hex_id.trim_start_matches("0x"))
                    .map_err(|e| format!("key_id is not hex: {e}"))?,
            ),
            None => None,
        };
        KeySelector::new(self.key_label.clone(), id)
    }
}

/// Which key pair on the token: by label, by id, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySelector {
    label: Option<String>,
    id: Option<Vec<u8>>,
}

impl KeySelector {
    /// At least one of `label` and `id` must be given and non-empty.
    pub fn new(label: Option<String>, id: Option<Vec<u8>>) -> Result<Self, String> {
        let label = label.filter(|l| !l.is_empty());
        let id = id.filter(|i| !i.is_empty());
        if label.is_none() && id.is_none() {
            return Err("set key_label or key_id (hex) to select the key".into());
        }
        Ok(Self { label, id })
    }

    /// Select by label.
    pub fn label(label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
            id: None,
        }
    }

    /// Select by `CKA_ID`.
    pub fn id(id: impl Into<Vec<u8>>) -> Self {
        Self {
            label: None,
            id: Some(id.into()),
        }
    }

    pub(crate) fn label_ref(&self) -> Option<&str> {
        self.label.as_deref()
    }

    pub(crate) fn id_ref(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.label, &self.id) {
            (Some(l), Some(i)) => write!(f, "label {l:?} id {}", hex::encode(i)),
            (Some(l), None) => write!(f, "label {l:?}"),
            (None, Some(i)) => write!(f, "id {}", hex::encode(i)),
            (None, None) => f.write_str("(no selector)"),
        }
    }
}
