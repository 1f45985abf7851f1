//! Helpers shared by the integration tests: a real aws-sdk-kms client pointed at the simulator,
//! signature checks with k256, and a time bound for every test.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{Credentials, Region};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, VerifyingKey};
use k256::pkcs8::DecodePublicKey;

/// Runs a test body, failing it if it takes longer than `secs`.
pub async fn bounded<F: Future<Output = ()>>(secs: u64, body: F) {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .expect("test exceeded its time bound");
}

/// An aws-sdk-kms client as the aws-kms backend would build one: static credentials, a region,
/// the simulator as endpoint, standard retries with short backoff so tests stay fast.
pub async fn client(endpoint: &str, max_attempts: u32) -> aws_sdk_kms::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDHSMSIMTEST",
            "hsm-sim-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .load()
        .await;
    aws_sdk_kms::Client::new(&config)
}

/// Creates a secp256k1 signing key through the SDK and returns its id.
pub async fn create_key(kms: &aws_sdk_kms::Client) -> String {
    let out = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccSecgP256K1)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .expect("CreateKey");
    out.key_metadata().expect("KeyMetadata").key_id().to_owned()
}

/// The key's public key, from GetPublicKey's DER SubjectPublicKeyInfo.
pub async fn public_key(kms: &aws_sdk_kms::Client, key_id: &str) -> VerifyingKey {
    let out = kms
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .expect("GetPublicKey");
    let der = out.public_key().expect("PublicKey").as_ref();
    VerifyingKey::from(k256::PublicKey::from_public_key_der(der).expect("SPKI for secp256k1"))
}

/// Sign over a digest; the DER signature or the SDK error.
pub async fn sign(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    digest: &[u8; 32],
) -> Result<Vec<u8>, aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::sign::SignError>> {
    let out = kms
        .sign()
        .key_id(key_id)
        .message(Blob::new(digest.to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await?;
    Ok(out.signature().expect("Signature").as_ref().to_vec())
}

/// Whether a DER signature verifies over `digest` as given (after normalising s, since KMS,
/// like the simulator, gives high-s signatures about half the time).
pub fn verifies(key: &VerifyingKey, digest: &[u8; 32], der: &[u8]) -> bool {
    let sig = Signature::from_der(der).expect("a DER ECDSA signature");
    let sig = sig.normalize_s().unwrap_or(sig);
    key.verify_prehash(digest, &sig).is_ok()
}

/// Whether a DER signature has high s.
pub fn is_high_s(der: &[u8]) -> bool {
    Signature::from_der(der)
        .expect("DER")
        .normalize_s()
        .is_some()
}

/// A distinct digest per index.
pub fn digest(i: u32) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("hsm-sim test digest {i}")).into()
}
