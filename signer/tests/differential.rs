//! Differential test: the same digests (and the same vote transaction hashes) through pkcs11
//! (SoftHSM), aws-kms on moto and aws-kms on hsm-sim. Every signature is low-s, recovers to its
//! own backend's address and verifies with k256 against the public key that backend reported.
#![cfg(all(feature = "pkcs11", feature = "aws-kms"))]

mod common;
#[path = "common/kms.rs"]
mod kms;
#[path = "common/votes.rs"]
mod votes;

use std::sync::Arc;

use alloy_consensus::SignableTransaction;
use alloy_primitives::{Address, B256, keccak256};
use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsSigner};
use bridge_signer::signature::{address_of, is_low_s};
use bridge_signer::{Signer, SignerError};
use hsm_sim::FaultConfig;
use k256::ecdsa::{Signature as K256Signature, VerifyingKey, signature::hazmat::PrehashVerifier};

fn digests() -> Vec<B256> {
    let mut out: Vec<B256> = (0u32..40)
        .map(|i| keccak256(format!("differential {i}")))
        .collect();
    // The signature hashes of real votes, as the guard would pass them on.
    for nonce in 1..=8 {
        let tx = votes::tx(votes::CHAIN, votes::BRIDGE, 0, votes::klay_vote(nonce, 100));
        out.push(tx.signature_hash());
    }
    // Edge digests: all zero, all ones.
    out.push(B256::ZERO);
    out.push(B256::repeat_byte(0xff));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_digests_through_pkcs11_moto_and_hsm_sim() {
    // SoftHSM first: its fixture sets SOFTHSM2_CONF before anything else runs.
    common::softhsm();
    kms::aws_env();
    let moto = kms::Moto::start();
    kms::bounded(180, async {
        let pkcs11 = common::signer_with_new_key(common::MAIN_TOKEN, "differential").await;
        let pkcs11_key = VerifyingKey::from_sec1_bytes(&pkcs11.key_info().public_key).unwrap();

        let moto_kms = AwsKmsClient::connect(Some(kms::REGION), Some(&moto.endpoint()))
            .await
            .unwrap();
        let moto_key = moto_kms
            .create_key(Some("differential"), None)
            .await
            .unwrap();
        let on_moto = AwsKmsSigner::connect(&kms::kms_config(&moto.endpoint(), &moto_key.key_id))
            .await
            .expect("aws-kms on moto");

        let sim = kms::sim(FaultConfig::default()).await;
        let sim_key = sim.create_key(None).unwrap();
        let on_sim = AwsKmsSigner::connect(&kms::kms_config(&sim.endpoint(), &sim_key))
            .await
            .expect("aws-kms on hsm-sim");

        let (moto_vk, sim_vk) = (*on_moto.public_key(), *on_sim.public_key());
        let backends: Vec<(&str, Arc<dyn Signer>, VerifyingKey)> = vec![
            ("pkcs11/softhsm", Arc::new(pkcs11), pkcs11_key),
            ("aws-kms/moto", Arc::new(on_moto), moto_vk),
            ("aws-kms/hsm-sim", Arc::new(on_sim), sim_vk),
        ];
        // Three different keys: a mix-up of backends would show as a wrong recovery.
        let addresses: Vec<Address> = backends.iter().map(|b| b.1.address()).collect();
        assert_ne!(addresses[0], addresses[1]);
        assert_ne!(addresses[1], addresses[2]);
        assert_ne!(addresses[0], addresses[2]);
        assert_eq!(moto_key.address, Some(addresses[1]));

        let digests = digests();
        for (name, signer, key) in &backends {
            assert_eq!(address_of(key), signer.address(), "{name}");
            let mut odd = 0;
            for (i, digest) in digests.iter().enumerate() {
                let sig = signer
                    .sign_hash(digest)
                    .await
                    .unwrap_or_else(|e: SignerError| panic!("{name} digest {i}: {e}"));
                assert!(is_low_s(&sig), "{name} digest {i}: high-s");
                assert_eq!(
                    sig.recover_address_from_prehash(digest).unwrap(),
                    signer.address(),
                    "{name} digest {i}: recovers to another address"
                );
                let k = K256Signature::from_scalars(
                    sig.r().to_be_bytes::<32>(),
                    sig.s().to_be_bytes::<32>(),
                )
                .unwrap();
                key.verify_prehash(digest.as_slice(), &k)
                    .unwrap_or_else(|e| panic!("{name} digest {i}: k256 verify: {e}"));
                // …and never against another backend's key.
                for (other, other_signer, _) in &backends {
                    if other != name {
                        assert_ne!(
                            sig.recover_address_from_prehash(digest).unwrap(),
                            other_signer.address()
                        );
                    }
                }
                odd += usize::from(sig.v());
            }
            assert!(
                odd > 0 && odd < digests.len(),
                "{name}: parity always the same"
            );
            let h = signer.health().unwrap().snapshot();
            assert_eq!(h.signatures, digests.len() as u64, "{name}");
        }
    })
    .await;
}
