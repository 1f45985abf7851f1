//! The keys of a rotation: which signer config holds the seat now, the rotated config, and
//! creating, finding and destroying keys in the old key's backend.

use alloy::primitives::Address;
use bridge_signer::SignerConfig;
use bridge_signer::pkcs11::Pkcs11Token;

use super::RotationError;
use super::store::{NewKey, RotationStore};
use crate::config::{AgentConfig, Side};

/// `base` with its key replaced by `key` (same token or same KMS account and region).
pub fn rotated(base: &SignerConfig, key: &NewKey) -> Result<SignerConfig, RotationError> {
    match (base, key) {
        (SignerConfig::Pkcs11(c), NewKey::Pkcs11 { key_label }) => {
            let mut c = c.clone();
            c.key_label = Some(key_label.clone());
            c.key_id = None;
            Ok(SignerConfig::Pkcs11(c))
        }
        (SignerConfig::AwsKms(c), NewKey::AwsKms { key_id }) => {
            let mut c = c.clone();
            c.key_id = key_id.clone();
            Ok(SignerConfig::AwsKms(c))
        }
        (_, key) => Err(RotationError::Usage(format!(
            "the recorded new key ({key}) is not in the configured backend"
        ))),
    }
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
    match base {
        SignerConfig::Pkcs11(c) => NewKey::Pkcs11 {
            key_label: format!(
                "{}-r{rotation}",
                c.key_label.clone().unwrap_or_else(|| "operator".into())
            ),
        },
        SignerConfig::AwsKms(c) => {
            let stem = c
                .key_id
                .strip_prefix("alias/")
                .unwrap_or("bridge-operator")
                .to_owned();
            NewKey::AwsKms {
                key_id: format!("alias/{stem}-r{rotation}"),
            }
        }
        #[allow(unreachable_patterns)]
        _ => NewKey::Pkcs11 {
            key_label: format!("operator-r{rotation}"),
        },
    }
}

/// Makes sure `key` exists in `base`'s backend: finds it, or (when `create`) generates it.
/// Safe to repeat: a key created by an interrupted run is found, not created twice.
pub async fn ensure_key(
    base: &SignerConfig,
    key: &NewKey,
    create: bool,
) -> Result<Address, RotationError> {
    let cfg = rotated(base, key)?;
    match (&cfg, key) {
        (SignerConfig::Pkcs11(c), NewKey::Pkcs11 { key_label }) => {
            let token =
                Pkcs11Token::open(&c.module, &c.token_label, c.pin.load().map_err(key_err)?)
                    .await
                    .map_err(key_err)?;
            let found = token.list_keys().await.map_err(key_err)?;
            if let Some(k) = found.iter().find(|k| k.label == *key_label) {
                return Ok(k.address);
            }
            if !create {
                return Err(RotationError::Key(format!(
                    "no key labelled {key_label:?} on token {:?}; create it with `bridge-agent keys generate`, \
                     or leave out --new-key-label to have one created",
                    c.token_label
                )));
            }
            Ok(token
                .generate_key(key_label, None)
                .await
                .map_err(key_err)?
                .address)
        }
        (SignerConfig::AwsKms(c), NewKey::AwsKms { key_id }) => {
            let client = bridge_signer::aws_kms::AwsKmsClient::from_config(c)
                .await
                .map_err(key_err)?;
            match client.describe_key(key_id).await {
                Ok(info) => info.address.ok_or_else(|| {
                    RotationError::Key(format!(
                        "KMS key {key_id} is not an enabled ECC_SECG_P256K1 signing key ({} / {} / {})",
                        info.key_spec, info.key_usage, info.key_state
                    ))
                }),
                Err(bridge_signer::aws_kms::AwsKmsError::KeyNotFound { .. }) if create => {
                    let alias = key_id.strip_prefix("alias/").unwrap_or(key_id);
                    let info = client
                        .create_key(Some(alias), Some("bridge-agent operator key (rotation)"))
                        .await
                        .map_err(key_err)?;
                    info.address
                        .ok_or_else(|| RotationError::Key("the new KMS key has no address".into()))
                }
                Err(e) => Err(key_err(e)),
            }
        }
        _ => Err(RotationError::Key("backend mismatch".into())),
    }
}

/// Destroys the key of `cfg` (pkcs11: the key pair; aws-kms: deletion scheduled in 7 days).
pub async fn destroy(cfg: &SignerConfig) -> Result<String, RotationError> {
    match cfg {
        SignerConfig::Pkcs11(c) => {
            let selector = c.key_selector().map_err(RotationError::Key)?;
            let token =
                Pkcs11Token::open(&c.module, &c.token_label, c.pin.load().map_err(key_err)?)
                    .await
                    .map_err(key_err)?;
            token.destroy_key(&selector).await.map_err(key_err)?;
            Ok(format!(
                "key {selector} destroyed on token {:?}",
                c.token_label
            ))
        }
        SignerConfig::AwsKms(c) => {
            let client = bridge_signer::aws_kms::AwsKmsClient::from_config(c)
                .await
                .map_err(key_err)?;
            // ScheduleKeyDeletion takes a key id or ARN, not an alias.
            let id = client
                .describe_key(&c.key_id)
                .await
                .map_err(key_err)?
                .key_id;
            client
                .schedule_key_deletion(&id, 7)
                .await
                .map_err(key_err)?;
            Ok(format!(
                "KMS key {} ({id}) scheduled for deletion in 7 days",
                c.key_id
            ))
        }
        #[allow(unreachable_patterns)]
        _ => Err(RotationError::Key("unsupported backend".into())),
    }
}

/// A key selector for log lines.
pub fn describe(cfg: &SignerConfig) -> String {
    match cfg {
        SignerConfig::Pkcs11(c) => format!(
            "pkcs11 token {:?} key {}",
            c.token_label,
            c.key_selector()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into())
        ),
        SignerConfig::AwsKms(c) => format!("aws-kms key {}", c.key_id),
        #[allow(unreachable_patterns)]
        _ => "signer".into(),
    }
}

fn key_err(e: impl std::fmt::Display) -> RotationError {
    RotationError::Key(e.to_string())
}
