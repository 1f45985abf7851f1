//! [`KeyStore`] over one PKCS#11 token: what `keys generate|list|show`, `keys rotate` and
//! `admin` do with keys on it.

use async_trait::async_trait;

use super::{KeyAttributes, KeyInfo, KeySelector, Pkcs11Config, Pkcs11Token};
use crate::keys::{
    AttrValue, Backend, KeyAttribute, KeyDetails, KeyOp, KeyRef, KeyStore, KeyStoreError, KeyView,
};

/// An opened token and the section that named it.
#[derive(Debug)]
pub struct Pkcs11KeyStore {
    config: Pkcs11Config,
    token: Pkcs11Token,
}

impl Pkcs11KeyStore {
    /// Loads the module, finds the token and reads the PIN from its source.
    pub async fn open(config: &Pkcs11Config) -> Result<Self, KeyStoreError> {
        let pin = config.pin.load()?;
        let token = Pkcs11Token::open(&config.module, &config.token_label, pin).await?;
        Ok(Self {
            config: config.clone(),
            token,
        })
    }

    fn details(&self, a: KeyAttributes) -> KeyDetails {
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
            backend: Backend::Pkcs11.as_str(),
            location: self.location(),
            key: view(a.info),
            attributes,
            protected,
            protection: protection.to_owned(),
        }
    }
}

#[async_trait]
impl KeyStore for Pkcs11KeyStore {
    fn backend(&self) -> Backend {
        Backend::Pkcs11
    }

    fn location(&self) -> String {
        format!(
            "token {:?} (slot {}) of {}",
            self.config.token_label,
            self.token.slot_id(),
            self.config.module.display()
        )
    }

    async fn list(&self) -> Result<Vec<KeyView>, KeyStoreError> {
        Ok(self
            .token
            .list_keys()
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    async fn show(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError> {
        Backend::Pkcs11.check(KeyOp::Show, key)?;
        let selector = selector(key).map_err(KeyStoreError::Usage)?;
        let attributes = self.token.key_attributes(&selector).await?;
        Ok(self.details(attributes))
    }

    async fn generate(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError> {
        Backend::Pkcs11.check(KeyOp::Generate, key)?;
        let label = key.label.clone().unwrap_or_default();
        let id = key.id.as_deref().map(decode_id).transpose()?;
        let info = self.token.generate_key(&label, id).await?;
        let attributes = self.token.key_attributes(&KeySelector::id(info.id)).await?;
        Ok(self.details(attributes))
    }

    async fn destroy(&self, key: &KeyRef) -> Result<String, KeyStoreError> {
        Backend::Pkcs11.check(KeyOp::Destroy, key)?;
        let selector = selector(key).map_err(KeyStoreError::Usage)?;
        self.token.destroy_key(&selector).await?;
        Ok(format!(
            "key {selector} destroyed on token {:?}",
            self.config.token_label
        ))
    }
}

fn selector(key: &KeyRef) -> Result<KeySelector, String> {
    let id = key
        .id
        .as_deref()
        .map(|h| decode_id(h).map_err(|e| e.to_string()))
        .transpose()?;
    KeySelector::new(key.label.clone(), id)
}

fn decode_id(hex_id: &str) -> Result<Vec<u8>, KeyStoreError> {
    hex::decode(hex_id.trim_start_matches("0x"))
        .map_err(|e| KeyStoreError::Usage(format!("key id {hex_id:?} is not hex: {e}")))
}

fn view(info: KeyInfo) -> KeyView {
    KeyView {
        label: Some(info.label),
        id: hex::encode(info.id),
        address: Some(info.address),
        public_key: Some(info.public_key),
    }
}
