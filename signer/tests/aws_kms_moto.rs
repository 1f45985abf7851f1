//! The aws-kms backend against moto, a real AWS-KMS-protocol server from the pinned venv
//! (`./scripts/setup`). moto ≤ 5.2.5 hashes the digest again despite `MessageType=DIGEST`
//! (upstream PR #10202); the server is started through `tests/support/moto_kms_server.py`, which
//! corrects that (see `common/kms.rs`).
#![cfg(feature = "aws-kms")]

#[path = "common/kms.rs"]
mod kms;

use alloy_primitives::keccak256;
use aws_sdk_kms::types::KeySpec;
use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsError, AwsKmsSigner};
use bridge_signer::signature::{address_of, is_low_s};
use bridge_signer::{HealthState, Signer, SignerError};
use k256::ecdsa::{Signature as K256Signature, signature::hazmat::PrehashVerifier};
use kms::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_key_signs_digests_that_recover_to_its_address() {
    let moto = Moto::start();
    bounded(120, async {
        let client = AwsKmsClient::connect(Some(REGION), Some(&moto.endpoint()))
            .await
            .unwrap();
        let created = client
            .create_key(Some("alias/bridge-moto"), None)
            .await
            .expect("CreateKey in moto");
        assert_eq!(created.key_spec, "ECC_SECG_P256K1");
        let address = created.address.expect("address");

        let signer = AwsKmsSigner::connect(&kms_config(&moto.endpoint(), "alias/bridge-moto"))
            .await
            .expect("connect to the moto key");
        assert_eq!(signer.address(), address);
        let vk = *signer.public_key();
        assert_eq!(address_of(&vk), address);
        let mut odd = 0;
        for i in 0u32..64 {
            let digest = keccak256(format!("moto digest {i}"));
            let sig = signer
                .sign_hash(&digest)
                .await
                .unwrap_or_else(|e| panic!("sign {i}: {e}\nmoto log:\n{}", moto.log()));
            assert!(is_low_s(&sig), "signature {i} is high-s");
            assert_eq!(
                sig.recover_address_from_prehash(&digest).unwrap(),
                address,
                "signature {i}"
            );
            let k = K256Signature::from_scalars(
                sig.r().to_be_bytes::<32>(),
                sig.s().to_be_bytes::<32>(),
            )
            .unwrap();
            vk.verify_prehash(digest.as_slice(), &k).unwrap();
            odd += u32::from(sig.v());
        }
        assert!((8..56).contains(&odd), "odd parity {odd} of 64");
        let h = signer.health().unwrap().snapshot();
        assert_eq!((h.signatures, h.state), (64, HealthState::Usable));

        // keys show / keys list through moto.
        assert_eq!(
            client.describe_key("alias/bridge-moto").await.unwrap(),
            created
        );
        let listed = client.list_keys().await.unwrap();
        assert_eq!(listed, vec![created]);
    })
    .await;
}

#[tokio::test]
async fn moto_key_of_the_wrong_spec_is_rejected_at_start() {
    let moto = Moto::start();
    bounded(60, async {
        let p256 = create_raw_key(&moto.endpoint(), KeySpec::EccNistP256).await;
        let err = AwsKmsSigner::connect(&kms_config(&moto.endpoint(), &p256))
            .await
            .expect_err("a P-256 key must be refused");
        assert!(!err.is_transient());
        assert!(
            matches!(
                &err,
                SignerError::AwsKms(AwsKmsError::WrongKeySpec { key_id, found })
                    if *key_id == p256 && found == "ECC_NIST_P256"
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&p256) && msg.contains("ECC_NIST_P256") && msg.contains("ECC_SECG_P256K1"),
            "{msg}"
        );

        // keys show explains it; keys list leaves it out.
        let client = AwsKmsClient::connect(Some(REGION), Some(&moto.endpoint()))
            .await
            .unwrap();
        let shown = client.describe_key(&p256).await.unwrap();
        assert_eq!(shown.key_spec, "ECC_NIST_P256");
        assert!(!shown.is_secp256k1_signing_key());
        assert_eq!(shown.address, None);
        assert!(client.list_keys().await.unwrap().is_empty());

        // A key that does not exist is a clear permanent error too.
        let err = AwsKmsSigner::connect(&kms_config(&moto.endpoint(), "alias/absent"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SignerError::AwsKms(AwsKmsError::KeyNotFound { .. })),
            "{err:?}"
        );
    })
    .await;
}
