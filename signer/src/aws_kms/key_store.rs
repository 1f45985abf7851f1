//! [`KeyStore`] over one KMS account and region (or a KMS-protocol endpoint): what
//! `keys generate|list|show`, `keys rotate` and `admin` do with keys there. Credentials come
//! from the standard AWS chain only.

use async_trait::async_trait;

use super::{AwsKeyInfo, AwsKmsClient, AwsKmsConfig};
use crate::keys::{
    AttrValue, Backend, KeyAttribute, KeyDetails, KeyOp, KeyRef, KeyStore, KeyStoreError, KeyView,
};

/// How long a destroyed key waits before KMS deletes it (the shortest KMS allows).
const DELETION_DAYS: i32 = 7;

/// A KMS client and the endpoint it was given (for [`KeyStore::location`]).
#[derive(Debug)]
pub struct AwsKmsKeyStore {
    client: AwsKmsClient,
    endpoint: Option<String>,
}

impl AwsKmsKeyStore {
    /// The account and region of an aws-kms section (its `key_id` is not used here).
    pub async fn from_config(config: &AwsKmsConfig) -> Result<Self, KeyStoreError> {
        Ok(Self {
            client: AwsKmsClient::from_config(config).await?,
            endpoint: config.endpoint.clone(),
        })
    }

    /// `region` (else the chain's region) and an optional endpoint override.
    pub async fn connect(
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<Self, KeyStoreError> {
        Ok(Self {
            client: AwsKmsClient::connect(region, endpoint).await?,
            endpoint: endpoint.map(str::to_owned),
        })
    }

    fn details(&self, info: AwsKeyInfo) -> KeyDetails {
        let text = |name, value: &str, meaning| KeyAttribute {
            name,
            value: AttrValue::Text(value.to_owned()),
            meaning,
        };
        let mut attributes = vec![
            text(
                "KeySpec",
                &info.key_spec,
                "ECC_SECG_P256K1 is secp256k1, Ethereum's curve",
            ),
            text(
                "KeyUsage",
                &info.key_usage,
                "SIGN_VERIFY: signs and verifies, nothing else",
            ),
            text("KeyState", &info.key_state, "only an Enabled key signs"),
        ];
        if let Some(arn) = &info.arn {
            attributes.push(text("Arn", arn, "the key's full name"));
        }
        let protected = info.is_secp256k1_signing_key();
        let protection = if protected {
            "an asymmetric KMS key: KMS has no operation that returns its private key".to_owned()
        } else {
            format!(
                "not a secp256k1 signing key ({} / {} / {}); it cannot sign for the bridge",
                info.key_spec, info.key_usage, info.key_state
            )
        };
        KeyDetails {
            backend: Backend::AwsKms.as_str(),
            location: self.location(),
            key: view(info),
            attributes,
            protected,
            protection,
        }
    }
}

#[async_trait]
impl KeyStore for AwsKmsKeyStore {
    fn backend(&self) -> Backend {
        Backend::AwsKms
    }

    fn location(&self) -> String {
        match &self.endpoint {
            // Only scheme, host and path: a query string is not echoed.
            Some(endpoint) => format!(
                "KMS region {} at {}",
                self.client.region(),
                endpoint.split('?').next().unwrap_or_default()
            ),
            None => format!("KMS region {}", self.client.region()),
        }
    }

    async fn list(&self) -> Result<Vec<KeyView>, KeyStoreError> {
        Ok(self
            .client
            .list_keys()
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    async fn show(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError> {
        Backend::AwsKms.check(KeyOp::Show, key)?;
        let info = self
            .client
            .describe_key(key.id.as_deref().unwrap_or_default())
            .await?;
        Ok(self.details(info))
    }

    async fn generate(&self, key: &KeyRef) -> Result<KeyDetails, KeyStoreError> {
        let info = self.client.create_key(key.label.as_deref(), None).await?;
        Ok(self.details(info))
    }

    async fn destroy(&self, key: &KeyRef) -> Result<String, KeyStoreError> {
        Backend::AwsKms.check(KeyOp::Destroy, key)?;
        let name = key.id.as_deref().unwrap_or_default();
        // ScheduleKeyDeletion takes a key id or ARN, not an alias.
        let id = self.client.describe_key(name).await?.key_id;
        self.client
            .schedule_key_deletion(&id, DELETION_DAYS)
            .await?;
        Ok(format!(
            "KMS key {name} ({id}) scheduled for deletion in {DELETION_DAYS} days"
        ))
    }
}

fn view(info: AwsKeyInfo) -> KeyView {
    KeyView {
        label: (!info.aliases.is_empty()).then(|| info.aliases.join(",")),
        id: info.key_id,
        address: info.address,
        public_key: info.public_key,
    }
}
