//! Key management over KMS for the `keys` CLI: create a secp256k1 signing key (optionally with
//! an alias), show one key, list the account's secp256k1 signing keys with their addresses.
//!
//! There is deliberately no import of key material: keys are born in KMS and never leave it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use alloy_primitives::Address;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::config::Region;
use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyUsageType};
use k256::ecdsa::VerifyingKey;
use k256::pkcs8::DecodePublicKey;

use super::config::{AwsKmsConfig, default_call_timeout_ms, location_problems, redact_url};
use super::error::{AwsKmsError, EXPECTED_KEY_SPEC, EXPECTED_KEY_USAGE};
use crate::retry::Transient;
use crate::signature::address_of;
use crate::{Health, RetryPolicy};

/// Pages read from `ListKeys`/`ListAliases` at most (100 entries each): a bound on every loop.
const MAX_PAGES: usize = 100;

/// One KMS key as `keys show` / `keys list` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKeyInfo {
    /// The key id (a UUID, or `mrk-…` for multi-Region keys).
    pub key_id: String,
    /// The key ARN.
    pub arn: Option<String>,
    /// Aliases pointing at the key (`alias/…`).
    pub aliases: Vec<String>,
    /// `KeySpec`, e.g. `ECC_SECG_P256K1`.
    pub key_spec: String,
    /// `KeyUsage`, e.g. `SIGN_VERIFY`.
    pub key_usage: String,
    /// `KeyState`, e.g. `Enabled`, `Disabled`, `PendingDeletion`.
    pub key_state: String,
    /// `Description`, if any.
    pub description: Option<String>,
    /// The Ethereum address, for an enabled secp256k1 signing key.
    pub address: Option<Address>,
    /// The uncompressed SEC1 public key (`04‖X‖Y`), for an enabled secp256k1 signing key.
    pub public_key: Option<Vec<u8>>,
}

impl AwsKeyInfo {
    /// True for a secp256k1 signing key, the only kind this backend signs with.
    pub fn is_secp256k1_signing_key(&self) -> bool {
        self.key_spec == EXPECTED_KEY_SPEC && self.key_usage == EXPECTED_KEY_USAGE
    }
}

/// A KMS client for key management (create, show, list), with credentials from the standard
/// AWS chain and the crate's bounded retry of transient errors.
#[derive(Clone)]
pub struct AwsKmsClient {
    pub(crate) kms: aws_sdk_kms::Client,
    pub(crate) retry: RetryPolicy,
    region: String,
    endpoint: Option<String>,
}

impl fmt::Debug for AwsKmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsClient")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("credentials", &"<AWS default chain, REDACTED>")
            .finish_non_exhaustive()
    }
}

impl AwsKmsClient {
    /// A client for `region` (else the chain's region) and an optional endpoint override, with
    /// the default call timeout and retry policy.
    pub async fn connect(
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<Self, AwsKmsError> {
        Self::build(
            region,
            endpoint,
            Duration::from_millis(default_call_timeout_ms()),
            RetryPolicy::default(),
        )
        .await
    }

    /// A client with the region, endpoint, timeout and retry of an aws-kms config section
    /// (its `key_id` is not used).
    pub async fn from_config(config: &AwsKmsConfig) -> Result<Self, AwsKmsError> {
        Self::build(
            config.region.as_deref(),
            config.endpoint.as_deref(),
            Duration::from_millis(config.call_timeout_ms),
            config.retry.clone(),
        )
        .await
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The region the client talks to.
    pub fn region(&self) -> &str {
        &self.region
    }

    async fn build(
        region: Option<&str>,
        endpoint: Option<&str>,
        call_timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, AwsKmsError> {
        let problems = location_problems("aws-kms", region, endpoint);
        if let Some((path, message)) = problems.into_iter().next() {
            return Err(AwsKmsError::Config(format!("{path}: {message}")));
        }
        // The SDK's own retry is off: RetryPolicy is the one bounded budget, and every attempt
        // is counted in the signer's health.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(call_timeout.min(Duration::from_secs(5)))
                    .operation_attempt_timeout(call_timeout)
                    .operation_timeout(call_timeout)
                    .build(),
            );
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk_config = loader.load().await;
        let region = sdk_config
            .region()
            .ok_or(AwsKmsError::NoRegion)?
            .as_ref()
            .to_owned();
        Ok(Self {
            kms: aws_sdk_kms::Client::new(&sdk_config),
            retry,
            region,
            endpoint: endpoint.map(str::to_owned),
        })
    }

    /// Creates a secp256k1 signing key (`ECC_SECG_P256K1`, `SIGN_VERIFY`) in KMS, with an
    /// optional alias (`name` or `alias/name`) and description; returns its id, address and
    /// public key.
    ///
    /// Only throttling is retried here: after a timeout the key may exist, and a retry would
    /// create a second one. If the alias cannot be created, the error names the new key.
    pub async fn create_key(
        &self,
        alias: Option<&str>,
        description: Option<&str>,
    ) -> Result<AwsKeyInfo, AwsKmsError> {
        let alias = alias.map(normalise_alias).transpose()?;
        let description = description.unwrap_or("bridge-agent signing key (secp256k1)");
        let health = Health::default();
        let created = self
            .retry
            .run(&health, || async {
                self.kms
                    .create_key()
                    .key_spec(KeySpec::EccSecgP256K1)
                    .key_usage(KeyUsageType::SignVerify)
                    .description(description)
                    .send()
                    .await
                    .map_err(|e| OnlyThrottling(AwsKmsError::from_sdk("CreateKey", "<new>", e)))
            })
            .await
            .map_err(|e| e.0)?;
        let key_id = created
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| AwsKmsError::BadResponse {
                operation: "CreateKey",
                reason: "no KeyMetadata.KeyId in the answer".into(),
            })?;
        tracing::info!(%key_id, "created KMS secp256k1 signing key");
        if let Some(alias) = &alias {
            self.retry
                .run(&health, || async {
                    self.kms
                        .create_alias()
                        .alias_name(alias)
                        .target_key_id(&key_id)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| OnlyThrottling(AwsKmsError::from_sdk("CreateAlias", alias, e)))
                })
                .await
                .map_err(|e| AwsKmsError::AliasNotCreated {
                    key_id: key_id.clone(),
                    alias: alias.clone(),
                    reason: e.0.to_string(),
                })?;
        }
        self.describe_key(&key_id).await
    }

    /// Shows one key (id, ARN, alias or alias ARN): id, ARN, aliases, spec, usage, state, and
    /// for an enabled secp256k1 signing key its address and public key. A key of another
    /// spec is shown too (so an operator sees why it cannot sign); it has no address.
    pub async fn describe_key(&self, key_id: &str) -> Result<AwsKeyInfo, AwsKmsError> {
        let out = self
            .call(|| async {
                self.kms
                    .describe_key()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|e| AwsKmsError::from_sdk("DescribeKey", key_id, e))
            })
            .await?;
        let meta = out.key_metadata().ok_or_else(|| AwsKmsError::BadResponse {
            operation: "DescribeKey",
            reason: "no KeyMetadata in the answer".into(),
        })?;
        let aliases = self.aliases(Some(meta.key_id())).await?;
        self.key_info(meta, &aliases).await
    }

    /// The account's secp256k1 signing keys in this region, each with its aliases and, when
    /// enabled, its address. Keys of other specs or usages are left out.
    pub async fn list_keys(&self) -> Result<Vec<AwsKeyInfo>, AwsKmsError> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .call(|| async {
                    self.kms
                        .list_keys()
                        .limit(100)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| AwsKmsError::from_sdk("ListKeys", "*", e))
                })
                .await?;
            ids.extend(
                page.keys()
                    .iter()
                    .filter_map(|k| k.key_id().map(str::to_owned)),
            );
            marker = page.next_marker().map(str::to_owned);
            if !page.truncated() || marker.is_none() {
                break;
            }
        }
        let aliases = self.aliases(None).await?;
        let mut out = Vec::new();
        for id in ids {
            let described = self
                .call(|| async {
                    self.kms
                        .describe_key()
                        .key_id(&id)
                        .send()
                        .await
                        .map_err(|e| AwsKmsError::from_sdk("DescribeKey", &id, e))
                })
                .await;
            let meta = match described {
                Ok(out) => match out.key_metadata() {
                    Some(meta) => meta.clone(),
                    None => continue,
                },
                // Keys this principal may list but not describe are not ours to sign with.
                Err(AwsKmsError::AccessDenied { .. } | AwsKmsError::KeyNotFound { .. }) => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if metadata_spec(&meta) != EXPECTED_KEY_SPEC
                || meta.key_usage().map(KeyUsageType::as_str) != Some(EXPECTED_KEY_USAGE)
            {
                continue;
            }
            out.push(self.key_info(&meta, &aliases).await?);
        }
        Ok(out)
    }

    /// `GetPublicKey` with the spec and usage checked: the key's verifying key and the id KMS
    /// resolved the name to (the key ARN on AWS).
    pub(crate) async fn signing_key(
        &self,
        key_id: &str,
        health: &Health,
    ) -> Result<(VerifyingKey, String), AwsKmsError> {
        let out = self
            .retry
            .run(health, || async {
                self.kms
                    .get_public_key()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|e| AwsKmsError::from_sdk("GetPublicKey", key_id, e))
            })
            .await?;
        let key = checked_public_key(key_id, &out)?;
        let resolved = out
            .key_id()
            .filter(|id| !id.is_empty())
            .unwrap_or(key_id)
            .to_owned();
        Ok((key, resolved))
    }

    /// Runs one read-only call with the retry policy (its health counters are thrown away).
    /// Schedules the deletion of `key_id` after `days` (KMS allows 7 to 30); the key cannot
    /// sign from now on. For retiring a rotated-out operator key.
    pub async fn schedule_key_deletion(&self, key_id: &str, days: i32) -> Result<(), AwsKmsError> {
        self.call(|| async {
            self.kms
                .schedule_key_deletion()
                .key_id(key_id)
                .pending_window_in_days(days)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsKmsError::from_sdk("ScheduleKeyDeletion", key_id, e))
        })
        .await
    }

    async fn call<T, F, Fut>(&self, op: F) -> Result<T, AwsKmsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsKmsError>>,
    {
        self.retry.run(&Health::default(), op).await
    }

    /// Alias names by target key id (of one key, or of all).
    async fn aliases(
        &self,
        key_id: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<String>>, AwsKmsError> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .call(|| async {
                    self.kms
                        .list_aliases()
                        .set_key_id(key_id.map(str::to_owned))
                        .limit(100)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| AwsKmsError::from_sdk("ListAliases", key_id.unwrap_or("*"), e))
                })
                .await?;
            for alias in page.aliases() {
                if let (Some(name), Some(target)) = (alias.alias_name(), alias.target_key_id()) {
                    by_key
                        .entry(target.to_owned())
                        .or_default()
                        .push(name.to_owned());
                }
            }
            marker = page.next_marker().map(str::to_owned);
            if !page.truncated() || marker.is_none() {
                break;
            }
        }
        Ok(by_key)
    }

    async fn key_info(
        &self,
        meta: &KeyMetadata,
        aliases: &BTreeMap<String, Vec<String>>,
    ) -> Result<AwsKeyInfo, AwsKmsError> {
        let key_state = meta
            .key_state()
            .map_or("<unknown>", |s| s.as_str())
            .to_owned();
        let mut info = AwsKeyInfo {
            key_id: meta.key_id().to_owned(),
            arn: meta.arn().map(str::to_owned),
            aliases: {
                let mut names = aliases.get(meta.key_id()).cloned().unwrap_or_default();
                names.sort();
                names
            },
            key_spec: metadata_spec(meta),
            key_usage: meta
                .key_usage()
                .map_or("<none>", KeyUsageType::as_str)
                .to_owned(),
            key_state,
            description: meta
                .description()
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            address: None,
            public_key: None,
        };
        if info.is_secp256k1_signing_key() && info.key_state == "Enabled" {
            let (key, _) = self.signing_key(&info.key_id, &Health::default()).await?;
            info.address = Some(address_of(&key));
            info.public_key = Some(key.to_encoded_point(false).as_bytes().to_vec());
        }
        Ok(info)
    }
}

/// Checks a `GetPublicKey` answer is a secp256k1 signing key and decodes its public key.
pub(crate) fn checked_public_key(
    key_id: &str,
    out: &GetPublicKeyOutput,
) -> Result<VerifyingKey, AwsKmsError> {
    let spec = public_key_spec(out);
    if spec != EXPECTED_KEY_SPEC {
        return Err(AwsKmsError::WrongKeySpec {
            key_id: key_id.to_owned(),
            found: spec,
        });
    }
    // KMS always reports the usage of an asymmetric key; a missing one is not trusted either.
    let usage = out.key_usage().map_or("<none>", KeyUsageType::as_str);
    if usage != EXPECTED_KEY_USAGE {
        return Err(AwsKmsError::WrongKeyUsage {
            key_id: key_id.to_owned(),
            found: usage.to_owned(),
        });
    }
    let der = out.public_key().ok_or_else(|| AwsKmsError::BadResponse {
        operation: "GetPublicKey",
        reason: "no PublicKey in the answer".into(),
    })?;
    let key = k256::PublicKey::from_public_key_der(der.as_ref()).map_err(|e| {
        AwsKmsError::BadResponse {
            operation: "GetPublicKey",
            reason: format!("PublicKey is not a secp256k1 SubjectPublicKeyInfo: {e}"),
        }
    })?;
    Ok(VerifyingKey::from(key))
}

/// The key spec of a `GetPublicKey` answer. moto (≤ 5.2.5) sends only the deprecated
/// `CustomerMasterKeySpec` there, so it is the fallback.
fn public_key_spec(out: &GetPublicKeyOutput) -> String {
    #[allow(deprecated)]
    let legacy = out
        .customer_master_key_spec()
        .map(|s| s.as_str().to_owned());
    out.key_spec()
        .map(|s| s.as_str().to_owned())
        .or(legacy)
        .unwrap_or_else(|| "<none>".into())
}

/// The key spec of `KeyMetadata`, with the same fallback.
fn metadata_spec(meta: &KeyMetadata) -> String {
    #[allow(deprecated)]
    let legacy = meta
        .customer_master_key_spec()
        .map(|s| s.as_str().to_owned());
    meta.key_spec()
        .map(|s| s.as_str().to_owned())
        .or(legacy)
        .unwrap_or_else(|| "<none>".into())
}

/// `name` or `alias/name` → `alias/name`; KMS's rules on the name, checked before any key is
/// created.
fn normalise_alias(alias: &str) -> Result<String, AwsKmsError> {
    let name = alias.strip_prefix("alias/").unwrap_or(alias);
    let invalid = |reason: &str| AwsKmsError::InvalidAlias {
        alias: alias.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > 250 {
        return Err(invalid("the name after alias/ must be 1 to 250 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
    {
        return Err(invalid(
            "only letters, digits, '/', '_' and '-' are allowed",
        ));
    }
    if name.starts_with("aws/") {
        return Err(invalid("alias/aws/ is reserved for AWS managed keys"));
    }
    Ok(format!("alias/{name}"))
}

/// Makes only throttling retryable (for calls that must not be repeated after an ambiguous
/// failure, such as `CreateKey`).
struct OnlyThrottling(AwsKmsError);

impl Transient for OnlyThrottling {
    fn is_transient(&self) -> bool {
        self.0.is_throttling()
    }
}

impl fmt::Display for OnlyThrottling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_normalised_and_checked() {
        assert_eq!(normalise_alias("bridge-1").unwrap(), "alias/bridge-1");
        assert_eq!(normalise_alias("alias/ops/b_2").unwrap(), "alias/ops/b_2");
        for bad in ["", "alias/", "alias/aws/x", "with space", "ä"] {
            assert!(
                matches!(normalise_alias(bad), Err(AwsKmsError::InvalidAlias { .. })),
                "{bad:?}"
            );
        }
    }
}
