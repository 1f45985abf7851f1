//! Key management behind one trait: [`KeyStore`] lists, shows, generates and destroys keys in
//! one backend location (a PKCS#11 token, a KMS account and region). `keys generate|list|show`,
//! `keys rotate` (a new key in the same backend, the old one destroyed) and `admin` use it and
//! never match on a backend themselves.
//!
//! ```text
//!  SignerConfig ──key_store()──> Box<dyn KeyStore>     (the one match on the backend)
//!    ├ pkcs11::Pkcs11KeyStore   token: list / attributes / generate (non-extractable) / destroy
//!    └ aws_kms::AwsKmsKeyStore  KMS: ListKeys+Describe / CreateKey+alias / ScheduleKeyDeletion
//!  SignerConfig::with_key(KeyName) ──> the same location, another key (a rotation's new key)
//! ```
//!
//! Every `match` on [`Backend`], [`SignerConfig`] or [`KeyName`] is exhaustive: a new backend
//! does not compile until each is handled.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use async_trait::async_trait;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::{ConfigError, PinError, SignerConfig};

/// A signing backend, as `backend = "…"` in config and `--backend …` on the command line name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    #[cfg(feature = "pkcs11")]
    Pkcs11,
    #[cfg(feature = "aws-kms")]
    AwsKms,
}

impl Backend {
    /// Every backend this build has.
    pub const ALL: &'static [Backend] = &[
        #[cfg(feature = "pkcs11")]
        Backend::Pkcs11,
        #[cfg(feature = "aws-kms")]
        Backend::AwsKms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11 => "pkcs11",
            #[cfg(feature = "aws-kms")]
            Self::AwsKms => "aws-kms",
        }
    }
}

/// What a [`KeyStore`] call does with the key it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    Generate,
    Show,
    Destroy,
}

impl Backend {
    /// Whether `key` says enough for `op` here: checked before a token is opened or KMS asked,
    /// so a missing flag is reported before a PIN or credentials are needed.
    pub fn check(self, op: KeyOp, key: &KeyRef) -> Result<(), KeyStoreError> {
        let problem = match (self, op) {
            #[cfg(feature = "pkcs11")]
            (Self::Pkcs11, KeyOp::Generate) => key.label.is_none().then_some(
                "keys generate needs --label NAME for the new key (or key_label in the [signer] \
                 table of --config)",
            ),
            #[cfg(feature = "pkcs11")]
            (Self::Pkcs11, KeyOp::Show | KeyOp::Destroy) => {
                (key.label.is_none() && key.id.is_none()).then_some(
                    "keys show needs --label NAME or --id HEX to pick the key (or key_label/key_id \
                     in the [signer] table of --config); `bridge-agent keys list` shows them",
                )
            }
            #[cfg(feature = "aws-kms")]
            (Self::AwsKms, KeyOp::Generate) => None,
            #[cfg(feature = "aws-kms")]
            (Self::AwsKms, KeyOp::Show | KeyOp::Destroy) => {
                if key.label.is_some() {
                    Some(
                        "--label selects a PKCS#11 key; select a KMS key with --key-id ID (or \
                         alias/NAME)",
                    )
                } else {
                    key.id.is_none().then_some(
                        "keys show --backend aws-kms needs --key-id ID (key id, ARN or alias/NAME); \
                         `bridge-agent keys list --backend aws-kms` shows them",
                    )
                }
            }
        };
        match problem {
            Some(p) => Err(KeyStoreError::Usage(p.into())),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|b| b.as_str()).collect();
                format!("unknown backend {s:?}; this build has {}", names.join(", "))
            })
    }
}

/// One key in a backend's own terms, named the way its config names it: a PKCS#11 `CKA_LABEL`
/// on the configured token, or a KMS key id / ARN / `alias/NAME` in the configured account.
/// Stored as JSON in the rotation records (`{"backend":"pkcs11","key_label":…}`), so the
/// variants and field names are a file format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "kebab-case")]
pub enum KeyName {
    /// A key pair on the same PKCS#11 token, by `CKA_LABEL`.
    #[cfg(feature = "pkcs11")]
    Pkcs11 { key_label: String },
    /// A KMS key in the same account and region (key id, ARN or alias).
    #[cfg(feature = "aws-kms")]
    AwsKms { key_id: String },
}

impl KeyName {
    /// `name` in `backend`'s terms.
    pub fn new(backend: Backend, name: impl Into<String>) -> Self {
        let name = name.into();
        match backend {
            #[cfg(feature = "pkcs11")]
            Backend::Pkcs11 => Self::Pkcs11 { key_label: name },
            #[cfg(feature = "aws-kms")]
            Backend::AwsKms => Self::AwsKms { key_id: name },
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11 { .. } => Backend::Pkcs11,
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { .. } => Backend::AwsKms,
        }
    }

    /// The label, key id or alias.
    pub fn name(&self) -> &str {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11 { key_label } => key_label,
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { key_id } => key_id,
        }
    }

    /// How a [`KeyStore`] of its backend selects it.
    pub fn key_ref(&self) -> KeyRef {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11 { key_label } => KeyRef::label(key_label.clone()),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { key_id } => KeyRef::id(key_id.clone()),
        }
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11 { key_label } => write!(f, "pkcs11 key label {key_label:?}"),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms { key_id } => write!(f, "aws-kms key {key_id}"),
        }
    }
}

/// Which key a [`KeyStore`] call is about. pkcs11: `label` is `CKA_LABEL`, `id` the `CKA_ID` in
/// hex. aws-kms: `id` is the key id, ARN or `alias/NAME`; `label`, for `generate` only, the alias
/// to give the new key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRef {
    pub label: Option<String>,
    pub id: Option<String>,
}

impl KeyRef {
    pub fn label(label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
            id: None,
        }
    }

    pub fn id(id: impl Into<String>) -> Self {
        Self {
            label: None,
            id: Some(id.into()),
        }
    }
}

/// Why a key operation failed. Never holds a PIN.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The request cannot work as written (a key not selected, a flag of another backend).
    #[error("{0}")]
    Usage(String),
    /// The signer section is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The PIN could not be read.
    #[error(transparent)]
    Pin(#[from] PinError),
    #[cfg(feature = "pkcs11")]
    #[error(transparent)]
    Pkcs11(#[from] crate::pkcs11::Pkcs11Error),
    #[cfg(feature = "aws-kms")]
    #[error(transparent)]
    AwsKms(#[from] crate::aws_kms::AwsKmsError),
    /// A key recorded for one backend, a config of another.
    #[error("the key ({key}) is not in the configured backend ({configured})")]
    BackendMismatch { key: KeyName, configured: Backend },
    /// The key exists but cannot sign for the bridge (e.g. a KMS key that is not an enabled
    /// secp256k1 signing key).
    #[error("{0}")]
    Unusable(String),
}

impl KeyStoreError {
    /// The selected key does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(e) => matches!(e, crate::pkcs11::Pkcs11Error::KeyNotFound { .. }),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(e) => matches!(e, crate::aws_kms::AwsKmsError::KeyNotFound { .. }),
            Self::Usage(_)
            | Self::Config(_)
            | Self::Pin(_)
            | Self::BackendMismatch { .. }
            | Self::Unusable(_) => false,
        }
    }
}

/// Keys in one backend location.
#[async_trait]
pub trait KeyStore: Send + Sync {
    fn backend(&self) -> Backend;

    /// Where the keys live, for people, e.g. `token "bridge-op" (slot 3) of /usr/lib/…so`.
    fn location(&self) -> String;

    /// Every secp256k1 signing key there.
    async fn list(&self) -> Result<Vec<KeyView>, KeyStoreError>;

    /// The key `key` selects, with the attributes that say whether it can leave the backend.
    async fn show(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError>;

    /// A new key pair (never extractable) named by `key`.
    async fn generate(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError>;

    /// Destroys the key (pkcs11: the key pair; aws-kms: deletion scheduled in 7 days); returns
    /// what was done, for people.
    async fn destroy(&self, key: &KeyRef) -> Result<String, KeyStoreError>;

    /// The address of the key `name`; with `create`, a key it does not find is generated.
    /// Safe to repeat: a key created by an interrupted run is found, not created twice.
    async fn ensure(&self, name: &KeyName, create: bool) -> Result<Address, KeyStoreError> {
        if name.backend() != self.backend() {
            return Err(KeyStoreError::BackendMismatch {
                key: name.clone(),
                configured: self.backend(),
            });
        }
        let key = name.key_ref();
        let details = match self.show(&key).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() && create => {
                // Created under the name it is looked up by (KMS: `alias/NAME` or `NAME`).
                self.generate(&KeyRef::label(name.name())).await?
            }
            Err(e) if e.is_not_found() => {
                return Err(KeyStoreError::Usage(format!(
                    "no key {name} in {}; create it with `bridge-agent keys generate`, or leave \
                     out the new key's name to have one created",
                    self.location()
                )));
            }
            Err(e) => return Err(e),
        };
        details.key.address.ok_or_else(|| {
            KeyStoreError::Unusable(format!(
                "{name} has no address: not an enabled secp256k1 signing key ({})",
                details.protection
            ))
        })
    }
}

impl SignerConfig {
    /// The backend this section configures.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(_) => Backend::Pkcs11,
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(_) => Backend::AwsKms,
        }
    }

    /// The key store where this section's key lives (its token, its KMS account and region).
    pub async fn key_store(&self) -> Result<Box<dyn KeyStore>, KeyStoreError> {
        Ok(match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => Box::new(crate::pkcs11::Pkcs11KeyStore::open(c).await?),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => Box::new(crate::aws_kms::AwsKmsKeyStore::from_config(c).await?),
        })
    }

    /// This section's key as a [`KeyStore`] selects it.
    pub fn key_ref(&self) -> KeyRef {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => KeyRef {
                label: c.key_label.clone(),
                id: c.key_id.clone(),
            },
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => KeyRef::id(c.key_id.clone()),
        }
    }

    /// This section with its key replaced by `key` (same token, or same KMS account and
    /// region).
    pub fn with_key(&self, key: &KeyName) -> Result<Self, KeyStoreError> {
        if key.backend() != self.backend() {
            return Err(KeyStoreError::BackendMismatch {
                key: key.clone(),
                configured: self.backend(),
            });
        }
        Ok(match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => {
                let mut c = c.clone();
                c.key_label = Some(key.name().to_owned());
                c.key_id = None;
                Self::Pkcs11(c)
            }
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => {
                let mut c = c.clone();
                c.key_id = key.name().to_owned();
                Self::AwsKms(c)
            }
        })
    }

    /// The default name of a rotation's new key: this key's with `-r<rotation>`.
    pub fn rotation_key_name(&self, rotation: i64) -> KeyName {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => KeyName::Pkcs11 {
                key_label: format!(
                    "{}-r{rotation}",
                    c.key_label.as_deref().unwrap_or("operator")
                ),
            },
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => {
                let stem = c.key_id.strip_prefix("alias/").unwrap_or("bridge-operator");
                KeyName::AwsKms {
                    key_id: format!("alias/{stem}-r{rotation}"),
                }
            }
        }
    }

    /// The key, for log lines.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => format!(
                "pkcs11 token {:?} key {}",
                c.token_label,
                c.key_selector()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|_| "?".into())
            ),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => format!("aws-kms key {}", c.key_id),
        }
    }
}

/// One key: its name(s), address and public key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// pkcs11: `CKA_LABEL`; aws-kms: its aliases, if any.
    pub label: Option<String>,
    /// pkcs11: `CKA_ID` in hex; aws-kms: the key id.
    pub id: String,
    /// Ethereum address (EIP-55 checksummed). None for a KMS key that is not enabled (KMS
    /// does not hand out its public key then).
    #[serde(serialize_with = "checksummed")]
    pub address: Option<Address>,
    /// Uncompressed SEC1 public key (`04‖X‖Y`) in hex, when known.
    #[serde(serialize_with = "hex_bytes")]
    pub public_key: Option<Vec<u8>>,
}

/// The keys of one token or account.
#[derive(Debug, Clone, Serialize)]
pub struct KeyList {
    pub backend: &'static str,
    /// Where the keys live, e.g. `token "bridge-op" (slot 3)`.
    pub location: String,
    pub keys: Vec<KeyView>,
}

/// One key with the attributes that say whether it can leave the backend.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDetails {
    pub backend: &'static str,
    pub location: String,
    #[serde(flatten)]
    pub key: KeyView,
    /// Backend attributes in a fixed order (JSON: an object keyed by name).
    #[serde(serialize_with = "attribute_map")]
    pub attributes: Vec<KeyAttribute>,
    /// True if the attributes prove the private key never was and never can be exported.
    pub protected: bool,
    /// One sentence saying why (or why not).
    pub protection: String,
}

/// One attribute, e.g. `CKA_SENSITIVE = true`.
#[derive(Debug, Clone)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub value: AttrValue,
    /// What it means for the key, for people.
    pub meaning: &'static str,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Text(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

fn checksummed<S: serde::Serializer>(address: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
    match address {
        Some(a) => s.serialize_str(&a.to_checksum(None)),
        None => s.serialize_none(),
    }
}

fn hex_bytes<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

fn attribute_map<S: serde::Serializer>(attrs: &[KeyAttribute], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(attrs.len()))?;
    for a in attrs {
        map.serialize_entry(a.name, &a.value)?;
    }
    map.end()
}

#[cfg(all(test, feature = "pkcs11", feature = "aws-kms"))]
mod tests {
    use super::*;

    #[test]
    fn key_names_keep_the_rotation_records_format() {
        let cases = [
            (
                KeyName::new(Backend::Pkcs11, "op-r1"),
                r#"{"backend":"pkcs11","key_label":"op-r1"}"#,
            ),
            (
                KeyName::new(Backend::AwsKms, "alias/op-r1"),
                r#"{"backend":"aws-kms","key_id":"alias/op-r1"}"#,
            ),
        ];
        for (key, json) in cases {
            assert_eq!(serde_json::to_string(&key).unwrap(), json);
            assert_eq!(serde_json::from_str::<KeyName>(json).unwrap(), key);
        }
    }

    #[test]
    fn backends_parse_from_their_config_names() {
        for b in Backend::ALL {
            assert_eq!(b.as_str().parse::<Backend>().unwrap(), *b);
        }
        assert!(
            "yubihsm"
                .parse::<Backend>()
                .unwrap_err()
                .contains("pkcs11, aws-kms")
        );
    }

    #[test]
    fn a_key_that_says_too_little_is_refused_before_anything_is_opened() {
        use Backend::*;
        use KeyOp::*;
        let (none, label, id) = (KeyRef::default(), KeyRef::label("k"), KeyRef::id("0a"));
        // (backend, operation, key, accepted)
        let cases = [
            (Pkcs11, Generate, &none, false),
            (Pkcs11, Generate, &label, true),
            (Pkcs11, Show, &none, false),
            (Pkcs11, Show, &id, true),
            (Pkcs11, Destroy, &label, true),
            (AwsKms, Generate, &none, true),
            (AwsKms, Show, &none, false),
            (AwsKms, Show, &label, false),
            (AwsKms, Show, &id, true),
            (AwsKms, Destroy, &none, false),
        ];
        for (backend, op, key, ok) in cases {
            let got = backend.check(op, key);
            assert_eq!(got.is_ok(), ok, "{backend} {op:?} {key:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, KeyStoreError::Usage(_)), "{e}");
            }
        }
    }

    #[test]
    fn with_key_keeps_the_location_and_refuses_another_backend() {
        let base = SignerConfig::AwsKms(crate::aws_kms::AwsKmsConfig::new("alias/op"));
        let SignerConfig::AwsKms(c) = base
            .with_key(&KeyName::new(Backend::AwsKms, "alias/op-r2"))
            .unwrap()
        else {
            panic!("backend changed");
        };
        assert_eq!(c.key_id, "alias/op-r2");
        assert_eq!(
            base.rotation_key_name(3),
            KeyName::new(Backend::AwsKms, "alias/op-r3")
        );
        let err = base
            .with_key(&KeyName::new(Backend::Pkcs11, "op"))
            .unwrap_err();
        assert!(
            matches!(err, KeyStoreError::BackendMismatch { .. }),
            "{err}"
        );
    }
}
