//! The AWS KMS backend (cargo feature `aws-kms`): a secp256k1 key in AWS KMS, or in any server
//! speaking its protocol (hsm-sim, moto), through `alloy-signer-aws` and `aws-sdk-kms`.
//!
//! * [`AwsKmsConfig`] — key id or alias, optional region and endpoint override, timeout, retry.
//!   Credentials come from the standard AWS chain only, never from the config file.
//! * [`AwsKmsClient`] — key management for the `keys` CLI: [`AwsKmsClient::create_key`],
//!   [`AwsKmsClient::describe_key`], [`AwsKmsClient::list_keys`].
//! * [`AwsKmsSigner`] — a [`crate::Signer`] over one key.
//!
//! ```text
//! connect:   GetPublicKey(key_id) ─> KeySpec == ECC_SECG_P256K1 ∧ KeyUsage == SIGN_VERIFY ?
//!              │ no: AwsKmsError::WrongKeySpec / WrongKeyUsage (names key and spec)
//!              ▼ yes: SPKI → public key → address; pin the resolved key id (ARN)
//! sign_hash: RetryPolicy ─> KMS Sign(MessageType=DIGEST, ECDSA_SHA_256) ─> DER r‖s
//!              │ ThrottlingException, KMSInternal…, timeouts: back off, bounded
//!              ▼
//!            signature::recoverable (low-s, recovery id vs the pinned key, verify) ─> Signature
//!              └ anything that does not match fails closed: no signature is returned
//! ```
//!
//! The SDK's own retry is switched off so that the crate's [`crate::RetryPolicy`] is the one
//! bounded budget and every attempt shows in [`crate::Health`].

mod config;
mod error;
mod key_store;
mod keys;

use std::fmt;

use alloy_primitives::{Address, B256, Signature};
use alloy_signer_aws::AwsSigner;
use async_trait::async_trait;
use k256::ecdsa::VerifyingKey;

pub use config::AwsKmsConfig;
pub use error::{AwsKmsError, EXPECTED_KEY_SPEC, EXPECTED_KEY_USAGE};
pub use key_store::AwsKmsKeyStore;
pub use keys::{AwsKeyInfo, AwsKmsClient};

use crate::{Health, RetryPolicy, Signer, SignerError, signature};

/// A [`Signer`] over one secp256k1 key in AWS KMS.
pub struct AwsKmsSigner {
    aws: AwsSigner,
    key: VerifyingKey,
    address: Address,
    /// The key as configured (id, ARN or alias).
    configured: String,
    /// The key id KMS resolved it to at start (the key ARN on AWS); every Sign names it.
    resolved: String,
    region: String,
    retry: RetryPolicy,
    health: Health,
}

impl fmt::Debug for AwsKmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsSigner")
            .field("key_id", &self.configured)
            .field("resolved_key_id", &self.resolved)
            .field("region", &self.region)
            .field("address", &self.address)
            .field("credentials", &"<AWS default chain, REDACTED>")
            .finish_non_exhaustive()
    }
}

impl AwsKmsSigner {
    /// Validates the config, builds a client from the AWS chain and connects to the key.
    pub async fn connect(config: &AwsKmsConfig) -> Result<Self, SignerError> {
        crate::ConfigError::from_problems(config.problems("aws-kms"))?;
        let client = AwsKmsClient::from_config(config).await?;
        Ok(Self::with_client(&client, &config.key_id).await?)
    }

    /// Connects to `key_id` (id, ARN, alias or alias ARN) through an existing client, using its
    /// retry policy: reads the public key once, refuses a key that is not an
    /// `ECC_SECG_P256K1`/`SIGN_VERIFY` key, and pins the key an alias points to now.
    pub async fn with_client(client: &AwsKmsClient, key_id: &str) -> Result<Self, AwsKmsError> {
        let health = Health::default();
        let (key, resolved) = client.signing_key(key_id, &health).await?;
        let address = signature::address_of(&key);
        // alloy-signer-aws reads the public key once more; both must agree.
        let aws = client
            .retry
            .run(&health, || async {
                AwsSigner::new(client.kms.clone(), resolved.clone(), None)
                    .await
                    .map_err(|e| AwsKmsError::from_alloy(&resolved, e))
            })
            .await?;
        if alloy_signer::Signer::address(&aws) != address {
            return Err(AwsKmsError::BadResponse {
                operation: "GetPublicKey",
                reason: format!(
                    "key {resolved} answered two public keys ({address} and {})",
                    alloy_signer::Signer::address(&aws)
                ),
            });
        }
        tracing::info!(
            key_id,
            resolved_key_id = %resolved,
            region = client.region(),
            %address,
            "aws-kms signer ready"
        );
        Ok(Self {
            aws,
            key,
            address,
            configured: key_id.to_owned(),
            resolved,
            region: client.region().to_owned(),
            retry: client.retry.clone(),
            health,
        })
    }

    /// The key id KMS resolved the configured name to at start (the key ARN on AWS).
    pub fn key_id(&self) -> &str {
        &self.resolved
    }

    /// The public key read at start.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    async fn sign_once(&self, digest: B256) -> Result<Signature, SignerError> {
        // KMS Sign with MessageType=DIGEST; alloy-signer-aws decodes the DER and lowers s.
        let sig = self
            .aws
            .sign_digest(&digest)
            .await
            .map_err(|e| AwsKmsError::from_alloy(&self.resolved, e))?;
        // Never trust that: recover against the key read at start, verify, fail closed.
        Ok(signature::recoverable(&sig.to_bytes(), &digest, &self.key)?)
    }
}

#[async_trait]
impl Signer for AwsKmsSigner {
    fn address(&self) -> Address {
        self.address
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
