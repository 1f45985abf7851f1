//! The PKCS#11 backend (cargo feature `pkcs11`): any PKCS#11 module through `cryptoki`.
//!
//! * [`Pkcs11Config`] — module path, token label, key label/id, PIN source.
//! * [`Pkcs11Token`] — an opened token: list keys, show their attributes, generate keys.
//! * [`Pkcs11Signer`] — a [`crate::Signer`] over one key, with a small session pool.
//!
//! All PKCS#11 calls run in `tokio::task::spawn_blocking`. A session whose handle or login was
//! lost (e.g. `C_CloseAllSessions`, token re-inserted) is replaced transparently.

mod config;
mod error;
mod key_store;
mod keygen;
mod keys;
mod session_pool;
mod token;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, Signature};
use async_trait::async_trait;
use cryptoki::mechanism::Mechanism;
use k256::ecdsa::VerifyingKey;

pub use config::{KeySelector, Pkcs11Config};
pub use error::Pkcs11Error;
pub use key_store::Pkcs11KeyStore;
pub use keys::{KeyAttributes, KeyInfo};
pub use token::module_users;

use session_pool::{Pooled, SessionPool};
use token::TokenHandle;

use crate::{Health, Pin, RetryPolicy, Signer, SignerError, signature};

/// An opened PKCS#11 token, for key management (list, show, generate).
#[derive(Clone)]
pub struct Pkcs11Token {
    handle: Arc<TokenHandle>,
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("token", &self.handle)
            .finish()
    }
}

impl Pkcs11Token {
    /// Loads `module` and finds the token labelled `token_label`. The PIN is checked on the
    /// first call that logs in.
    pub async fn open(
        module: impl Into<std::path::PathBuf>,
        token_label: impl Into<String>,
        pin: Pin,
    ) -> Result<Self, Pkcs11Error> {
        let (module, label) = (module.into(), token_label.into());
        let handle = blocking(move || TokenHandle::open(&module, &label, pin)).await?;
        Ok(Self {
            handle: Arc::new(handle),
        })
    }

    /// The slot the token sits in now (slot ids change between runs; select by label).
    pub fn slot_id(&self) -> u64 {
        self.handle.slot_id()
    }

    /// The token's secp256k1 key pairs: label, id, address.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, Pkcs11Error> {
        let token = Arc::clone(&self.handle);
        blocking(move || {
            let session = token.login_session(false, false)?;
            keys::list(&session, &token)
        })
        .await
    }

    /// The attributes of one key, proving (or not) that it cannot leave the token.
    pub async fn key_attributes(
        &self,
        selector: &KeySelector,
    ) -> Result<KeyAttributes, Pkcs11Error> {
        let (token, selector) = (Arc::clone(&self.handle), selector.clone());
        blocking(move || {
            let session = token.login_session(false, false)?;
            keys::attributes(&session, &selector, &token)
        })
        .await
    }

    /// Generates a secp256k1 key pair inside the token (sensitive, non-extractable).
    pub async fn generate_key(
        &self,
        label: &str,
        id: Option<Vec<u8>>,
    ) -> Result<KeyInfo, Pkcs11Error> {
        let (token, label) = (Arc::clone(&self.handle), label.to_owned());
        blocking(move || {
            let session = token.login_session(true, false)?;
            keygen::generate(&session, &label, id, &token)
        })
        .await
    }
    /// Destroys the key pair matching `selector` (private key, and its public twin with the
    /// same `CKA_ID`). For retiring a rotated-out operator key; there is no undo.
    pub async fn destroy_key(&self, selector: &KeySelector) -> Result<(), Pkcs11Error> {
        let (token, selector) = (Arc::clone(&self.handle), selector.clone());
        blocking(move || {
            let session = token.login_session(true, false)?;
            let private = keys::find_private_key(&session, &selector, &token)?;
            let id = session
                .get_attributes(private, &[cryptoki::object::AttributeType::Id])
                .map_err(|e| token.err(e))?
                .into_iter()
                .find_map(|a| match a {
                    cryptoki::object::Attribute::Id(id) => Some(id),
                    _ => None,
                })
                .unwrap_or_default();
            if !id.is_empty() {
                let publics = session
                    .find_objects(&[
                        cryptoki::object::Attribute::Class(
                            cryptoki::object::ObjectClass::PUBLIC_KEY,
                        ),
                        cryptoki::object::Attribute::Id(id),
                    ])
                    .map_err(|e| token.err(e))?;
                for public in publics {
                    session.destroy_object(public).map_err(|e| token.err(e))?;
                }
            }
            session.destroy_object(private).map_err(|e| token.err(e))
        })
        .await
    }
}

/// A [`Signer`] over one secp256k1 key in a PKCS#11 token.
pub struct Pkcs11Signer {
    pool: SessionPool,
    key: VerifyingKey,
    info: KeyInfo,
    token_label: String,
    retry: RetryPolicy,
    health: Health,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("token", &self.token_label)
            .field("key_label", &self.info.label)
            .field("key_id", &hex::encode(&self.info.id))
            .field("address", &self.info.address)
            .field("pin", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// Reads the PIN from the configured source and connects.
    pub async fn connect(config: &Pkcs11Config) -> Result<Self, SignerError> {
        crate::ConfigError::from_problems(config.problems("pkcs11"))?;
        let pin = config.pin.load()?;
        Ok(Self::with_pin(config, pin).await?)
    }

    /// Connects with a PIN the caller already has (e.g. from `--pin-file`).
    pub async fn with_pin(config: &Pkcs11Config, pin: Pin) -> Result<Self, Pkcs11Error> {
        let selector = config
            .key_selector()
            .map_err(|reason| Pkcs11Error::KeyNotFound {
                selector: reason,
                token: config.token_label.clone(),
            })?;
        let token = Pkcs11Token::open(&config.module, &config.token_label, pin).await?;
        let handle = Arc::clone(&token.handle);
        let sel = selector.clone();
        let (first, info, key) = blocking(move || {
            let first = Pooled::open(&handle, &sel)?;
            let (info, key) = keys::key_info(first.session(), first.key(), &handle)?;
            Ok((first, info, key))
        })
        .await?;
        tracing::info!(
            token = %config.token_label,
            key = %selector,
            address = %info.address,
            sessions = config.sessions,
            "pkcs11 signer ready"
        );
        Ok(Self {
            pool: SessionPool::new(
                token.handle,
                selector,
                config.sessions,
                Duration::from_millis(config.call_timeout_ms),
                first,
            )?,
            key,
            info,
            token_label: config.token_label.clone(),
            retry: config.retry.clone(),
            health: Health::default(),
        })
    }

    /// Label, id, address and public key of the signing key.
    pub fn key_info(&self) -> &KeyInfo {
        &self.info
    }

    /// Sessions re-opened after a loss since start (for metrics and tests).
    pub fn sessions_reopened(&self) -> u64 {
        self.pool.reopened()
    }

    async fn sign_once(&self, digest: B256) -> Result<Signature, SignerError> {
        let raw = self
            .pool
            .run(move |session, key| session.sign(&Mechanism::Ecdsa, key, digest.as_slice()))
            .await?;
        Ok(signature::recoverable(&raw, &digest, &self.key)?)
    }
}

#[async_trait]
impl Signer for Pkcs11Signer {
    fn address(&self) -> Address {
        self.info.address
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        let digest = *hash;
        Ok(self
            .retry
            .sign(&self.health, || self.sign_once(digest))
            .await?)
    }

    fn health(&self) -> Option<&Health> {
        Some(&self.health)
    }
}

async fn blocking<T, F>(f: F) -> Result<T, Pkcs11Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Pkcs11Error::Task(e.to_string()))?
}
