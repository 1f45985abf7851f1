//! The aws-kms branch of `keys generate|list|show`: one function per command, over
//! [`AwsKmsClient`]. Credentials come from the standard AWS chain only.

use bridge_signer::aws_kms::{AwsKeyInfo, AwsKmsClient};

use super::error::KeysError;
use super::report::{AttrValue, KeyAttribute, KeyDetails, KeyList, KeyView};
use super::signer_args::AwsKmsTarget;

const BACKEND: &str = "aws-kms";

/// `keys generate --backend aws-kms [--label ALIAS] [--region R] [--endpoint URL]`: a new
/// `ECC_SECG_P256K1` / `SIGN_VERIFY` key, with the alias `alias/ALIAS` if given.
pub async fn generate(target: &AwsKmsTarget) -> Result<KeyDetails, KeysError> {
    let client = client(target).await?;
    let info = client.create_key(target.label.as_deref(), None).await?;
    Ok(details(target, &client, info))
}

/// `keys list --backend aws-kms [--region R] [--endpoint URL]`: the secp256k1 signing keys.
pub async fn list(target: &AwsKmsTarget) -> Result<KeyList, KeysError> {
    let client = client(target).await?;
    let keys = client.list_keys().await?;
    Ok(KeyList {
        backend: BACKEND,
        location: location(target, &client),
        keys: keys.into_iter().map(view).collect(),
    })
}

/// `keys show --backend aws-kms --key-id ID [--region R] [--endpoint URL]`.
pub async fn show(target: &AwsKmsTarget) -> Result<KeyDetails, KeysError> {
    if target.label.is_some() {
        return Err(KeysError::usage(
            "--label selects a PKCS#11 key; select a KMS key with --key-id ID (or alias/NAME)",
        ));
    }
    let key_id = target.key_id.as_deref().ok_or_else(|| {
        KeysError::usage(
            "keys show --backend aws-kms needs --key-id ID (key id, ARN or alias/NAME); \
             `bridge-agent keys list --backend aws-kms` shows them",
        )
    })?;
    let client = client(target).await?;
    let info = client.describe_key(key_id).await?;
    Ok(details(target, &client, info))
}

async fn client(target: &AwsKmsTarget) -> Result<AwsKmsClient, KeysError> {
    Ok(AwsKmsClient::connect(target.region.as_deref(), target.endpoint.as_deref()).await?)
}

fn location(target: &AwsKmsTarget, client: &AwsKmsClient) -> String {
    match &target.endpoint {
        // Only scheme, host and path: a query string is not echoed.
        Some(endpoint) => format!(
            "KMS region {} at {}",
            client.region(),
            endpoint.split('?').next().unwrap_or_default()
        ),
        None => format!("KMS region {}", client.region()),
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

fn details(target: &AwsKmsTarget, client: &AwsKmsClient, info: AwsKeyInfo) -> KeyDetails {
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
        "an asymmetric KMS key: KMS has no operation that returns its private key"
    } else {
        "not a secp256k1 signing key; it cannot sign for the bridge"
    };
    KeyDetails {
        backend: BACKEND,
        location: location(target, client),
        key: view(info),
        attributes,
        protected,
        protection: protection.to_owned(),
    }
}
