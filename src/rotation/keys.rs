//! The keys of a rotation: which signer config holds the seat now, the rotated config, and
//! creating, finding and destroying keys in the old key's backend (through the signer crate's
//! [`bridge_signer::KeyStore`]; nothing here knows a backend).

use alloy::primitives::Address;
use bridge_signer::SignerConfig;

use super::RotationError;
use super::store::{NewKey, RotationStore};
use crate::config::{AgentConfig, Side};

/// `base` with its key replaced by `key` (same token or same KMS account and region).
pub fn rotated(base: &SignerConfig, key: &NewKey) -> Result<SignerConfig, RotationError> {
    base.with_key(key)
        .map_err(|e| RotationError::Usage(format!("the recorded new key: {e}")))
}

/// The signer config of the key that holds `side`'s seat: the last accepted rotation's new
/// key, else the config file's key. What `run` starts with and what `keys rotate` rotates.
pub fn seated(
    cfg: &AgentConfig,
    side: Side,
    store: &RotationStore,
) -> Result<SignerConfig, RotationError> {
    match store.accepted_key(side)? {
        Some((key, _)) => rotated(cfg.signer_for(side), &key),
        None => Ok(cfg.signer_for(side).clone()),
    }
}

/// The one signer config both chains use (a rotation moves one key on both bridges).
pub fn common_signer(cfg: &AgentConfig) -> Result<&SignerConfig, RotationError> {
    let (p, c) = (cfg.signer_for(Side::Parent), cfg.signer_for(Side::Child));
    if p != c {
        return Err(RotationError::Usage(
            "the parent and child chains use different signers ([parent.signer] / \
             [child.signer]); `keys rotate` moves one key on both bridges and needs the same \
             [signer] for both"
                .into(),
        ));
    }
    Ok(p)
}

/// The default name of a rotation's new key: the old one's with `-r<rotation id>`.
pub fn default_new_key(base: &SignerConfig, rotation: i64) -> NewKey {
    base.rotation_key_name(rotation)
}

/// Makes sure `key` exists in `base`'s backend: finds it, or (when `create`) generates it.
/// Safe to repeat: a key created by an interrupted run is found, not created twice.
pub async fn ensure_key(
    base: &SignerConfig,
    key: &NewKey,
    create: bool,
) -> Result<Address, RotationError> {
    let store = base.key_store().await.map_err(key_err)?;
    store.ensure(key, create).await.map_err(key_err)
}

/// Destroys the key of `cfg` (pkcs11: the key pair; aws-kms: deletion scheduled in 7 days).
pub async fn destroy(cfg: &SignerConfig) -> Result<String, RotationError> {
    let store = cfg.key_store().await.map_err(key_err)?;
    store.destroy(&cfg.key_ref()).await.map_err(key_err)
}

/// A key selector for log lines.
pub fn describe(cfg: &SignerConfig) -> String {
    cfg.describe()
}

fn key_err(e: impl std::fmt::Display) -> RotationError {
    RotationError::Key(e.to_string())
}
