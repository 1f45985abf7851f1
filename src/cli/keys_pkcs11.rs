//! The pkcs11 branch of `keys generate|list|show`, over [`Pkcs11Token`].

use bridge_signer::pkcs11::{KeyAttributes, KeyInfo, KeySelector, Pkcs11Config, Pkcs11Token};

use super::error::KeysError;
use super::report::{AttrValue, KeyAttribute, KeyDetails, KeyList, KeyView};

const BACKEND: &str = "pkcs11";

/// Generates the key named by `config.key_label` (and `key_id`, if set) and reads back its
/// attributes.
pub async fn generate(config: &Pkcs11Config) -> Result<KeyDetails, KeysError> {
    let label = config.key_label.clone().ok_or_else(|| {
        KeysError::usage(
            "keys generate needs --label NAME for the new key (or key_label in the [signer] \
             table of --config)",
        )
    })?;
    let id = config.key_id.as_deref().map(decode_id).transpose()?;
    let token = open(config).await?;
    let info = token.generate_key(&label, id).await?;
    let attributes = token.key_attributes(&KeySelector::id(info.id)).await?;
    Ok(details(config, &token, attributes))
}

/// Every secp256k1 key pair on the token.
pub async fn list(config: &Pkcs11Config) -> Result<KeyList, KeysError> {
    let token = open(config).await?;
    let keys = token.list_keys().await?;
    Ok(KeyList {
        backend: BACKEND,
        location: location(config, &token),
        keys: keys.into_iter().map(view).collect(),
    })
}

/// The key selected by `config.key_label` / `key_id`, with its protection attributes.
pub async fn show(config: &Pkcs11Config) -> Result<KeyDetails, KeysError> {
    let selector = config.key_selector().map_err(|_| {
        KeysError::usage(
            "keys show needs --label NAME or --id HEX to pick the key (or key_label/key_id in \
             the [signer] table of --config); `bridge-agent keys list` shows them",
        )
    })?;
    let token = open(config).await?;
    let attributes = token.key_attributes(&selector).await?;
    Ok(details(config, &token, attributes))
}

async fn open(config: &Pkcs11Config) -> Result<Pkcs11Token, KeysError> {
    let pin = config.pin.load()?;
    Ok(Pkcs11Token::open(&config.module, &config.token_label, pin).await?)
}

/// `key_id` was checked by `signer_args`; this only turns it into bytes.
fn decode_id(hex_id: &str) -> Result<Vec<u8>, KeysError> {
    hex::decode(hex_id.trim_start_matches("0x"))
        .map_err(|e| KeysError::usage(format!("key id {hex_id:?} is not hex: {e}")))
}

fn location(config: &Pkcs11Config, token: &Pkcs11Token) -> String {
    format!(
        "token {:?} (slot {}) of {}",
        config.token_label,
        token.slot_id(),
        config.module.display()
    )
}

fn view(info: KeyInfo) -> KeyView {
    KeyView {
        label: Some(info.label),
        id: hex::encode(info.id),
        address: Some(info.address),
        public_key: Some(info.public_key),
    }
}

fn details(config: &Pkcs11Config, token: &Pkcs11Token, a: KeyAttributes) -> KeyDetails {
    let protected = a.is_protected();
    let protection = if protected {
        "sensitive and non-extractable since it was generated: the private key cannot leave \
         the token"
    } else {
        "the private key is, or once was, extractable or not sensitive; do not use it as an \
         operator key"
    };
    let attr = |name, value, meaning| KeyAttribute {
        name,
        value: AttrValue::Bool(value),
        meaning,
    };
    let attributes = vec![
        attr(
            "CKA_TOKEN",
            a.token,
            "stored on the token, not only in the session",
        ),
        attr(
            "CKA_PRIVATE",
            a.private,
            "usable only after login with the user PIN",
        ),
        attr(
            "CKA_SENSITIVE",
            a.sensitive,
            "the token never reveals the key's value",
        ),
        attr(
            "CKA_ALWAYS_SENSITIVE",
            a.always_sensitive,
            "sensitive ever since it was created",
        ),
        attr(
            "CKA_EXTRACTABLE",
            a.extractable,
            "can be wrapped (exported) out of the token",
        ),
        attr(
            "CKA_NEVER_EXTRACTABLE",
            a.never_extractable,
            "never was extractable",
        ),
        attr("CKA_SIGN", a.sign, "may sign"),
    ];
    KeyDetails {
        backend: BACKEND,
        location: location(config, token),
        key: view(a.info),
        attributes,
        protected,
        protection: protection.to_owned(),
    }
}
