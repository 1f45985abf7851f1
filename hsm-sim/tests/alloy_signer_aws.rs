//! The consumer the simulator exists for: alloy-signer-aws (as the aws-kms backend uses it),
//! pointed at the simulator without any change.

mod common;

use alloy_primitives::B256;
use alloy_signer::Signer as _;
use alloy_signer_aws::AwsSigner;
use common::{bounded, client, digest};
use hsm_sim::{Config, FaultConfig, HsmSim, WrongSignature};

async fn start() -> HsmSim {
    let faults = FaultConfig {
        seed: Some(3),
        ..FaultConfig::default()
    };
    HsmSim::start(Config {
        faults,
        ..Config::default()
    })
    .await
    .expect("start hsm-sim")
}

#[tokio::test]
async fn alloy_signer_aws_signs_hashes_that_recover_to_its_address() {
    bounded(60, async {
        let sim = start().await;
        sim.create_key(Some("alias/bridge")).unwrap();
        let kms = client(&sim.endpoint(), 3).await;
        let signer = AwsSigner::new(kms, "alias/bridge".to_owned(), Some(1001))
            .await
            .expect("AwsSigner::new");
        for i in 0..24 {
            let hash = B256::from(digest(i));
            let sig = signer.sign_hash(&hash).await.expect("sign_hash");
            let from = sig.recover_address_from_prehash(&hash).unwrap();
            assert_eq!(from, signer.address(), "hash {i}");
        }
        // Half of them came high-s from the sim, as from real KMS; alloy normalised them.
        assert!(sim.stats().high_s_signatures > 0);
    })
    .await;
}

#[tokio::test]
async fn alloy_signer_aws_never_returns_a_wrong_signature() {
    bounded(60, async {
        let sim = start().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 1).await;
        let signer = AwsSigner::new(kms, key_id, None)
            .await
            .expect("AwsSigner::new");
        for mode in [WrongSignature::OtherDigest, WrongSignature::OtherKey] {
            sim.set_faults(FaultConfig {
                wrong_signature: mode,
                ..FaultConfig::default()
            })
            .unwrap();
            for i in 0..4 {
                let hash = B256::from(digest(i));
                match signer.sign_hash(&hash).await {
                    Err(_) => {}
                    Ok(sig) => {
                        let from = sig.recover_address_from_prehash(&hash).unwrap();
                        panic!("{mode:?}: a signature recovering to {from} was returned");
                    }
                }
            }
        }
        assert_eq!(sim.stats().faults_of("wrong_signature"), 8);
    })
    .await;
}
