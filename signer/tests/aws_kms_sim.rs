//! The aws-kms backend against hsm-sim (the KMS protocol, in process): signatures, the faults a
//! real server will not make on demand, key management, a vote accepted by anvil, redaction.
#![cfg(feature = "aws-kms")]

#[path = "common/anvil.rs"]
mod anvil;
#[path = "common/kms.rs"]
mod kms;
#[path = "common/votes.rs"]
mod votes;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::rpc::types::TransactionRequest;
use alloy_primitives::{Address, U256, keccak256};
use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsConfig, AwsKmsError, AwsKmsSigner};
use bridge_signer::guard::Journal;
use bridge_signer::signature::{address_of, is_low_s};
use bridge_signer::{Guard, HealthState, SignatureError, Signer, SignerConfig, SignerError};
use hsm_sim::{ErrorCode, FaultConfig, WrongSignature};
use k256::ecdsa::{Signature as K256Signature, signature::hazmat::PrehashVerifier};
use kms::*;

async fn connect(config: &AwsKmsConfig) -> AwsKmsSigner {
    AwsKmsSigner::connect(config)
        .await
        .expect("connect aws-kms signer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_digests_are_low_s_recover_and_verify() {
    bounded(120, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(Some("alias/many")).unwrap();
        let signer = connect(&kms_config(&sim.endpoint(), "alias/many")).await;
        // The alias was resolved and pinned to the key.
        assert!(signer.key_id().ends_with(&key_id), "{}", signer.key_id());
        let vk = *signer.public_key();
        assert_eq!(address_of(&vk), signer.address());
        const N: u32 = 300;
        let mut odd = 0;
        for i in 0..N {
            let digest = keccak256(format!("kms digest {i}"));
            let sig = signer.sign_hash(&digest).await.expect("sign");
            assert!(is_low_s(&sig), "signature {i} is high-s");
            assert_eq!(
                sig.recover_address_from_prehash(&digest).unwrap(),
                signer.address(),
                "signature {i} recovers to another address"
            );
            let k = K256Signature::from_scalars(
                sig.r().to_be_bytes::<32>(),
                sig.s().to_be_bytes::<32>(),
            )
            .unwrap();
            vk.verify_prehash(digest.as_slice(), &k)
                .unwrap_or_else(|e| panic!("signature {i} does not verify with k256: {e}"));
            odd += u32::from(sig.v());
        }
        // Both recovery ids occur, and the sim gave high-s signatures that were normalised.
        assert!((N / 4..N * 3 / 4).contains(&odd), "odd parity {odd} of {N}");
        let stats = sim.stats();
        assert!(stats.high_s_signatures > N as u64 / 4, "{stats:?}");
        assert_eq!(stats.calls_of("Sign"), N as u64);
        let h = signer.health().unwrap().snapshot();
        assert_eq!((h.signatures, h.retries), (N as u64, 0));
        assert_eq!(h.state, HealthState::Usable);
    })
    .await;
}

#[tokio::test]
async fn signer_config_section_connects_to_aws_kms() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        sim.create_key(Some("alias/from-toml")).unwrap();
        let toml = format!(
            "backend = \"aws-kms\"\nkey_id = \"alias/from-toml\"\nregion = \"{REGION}\"\n\
             endpoint = \"{}\"\nretry = {{ max_attempts = 3 }}\n",
            sim.endpoint()
        );
        let config: SignerConfig = toml::from_str(&toml).unwrap();
        config.validate("signer").unwrap();
        let signer = config.connect().await.expect("connect from config");
        let digest = keccak256(b"from toml");
        let sig = signer.sign_hash(&digest).await.unwrap();
        assert_eq!(
            sig.recover_address_from_prehash(&digest).unwrap(),
            signer.address()
        );
        // Credentials in the file are refused, not ignored.
        let with_secret = format!("{toml}secret_access_key = \"x\"\n");
        let err = toml::from_str::<SignerConfig>(&with_secret).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn throttling_and_transient_errors_are_retried_then_succeed() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        // Throttled at connect too: GetPublicKey is retried.
        sim.set_faults(FaultConfig {
            throttle_burst: 2,
            ..FaultConfig::default()
        })
        .unwrap();
        let mut config = kms_config(&sim.endpoint(), &key_id);
        config.retry = fast_retry(6);
        let signer = connect(&config).await;
        assert_eq!(sim.stats().faults_of("throttle_burst"), 2);
        let at_start = signer.health().unwrap().snapshot().retries;
        assert_eq!(at_start, 2);

        // Three throttled Signs, then one that succeeds.
        sim.reset_stats();
        sim.set_faults(FaultConfig {
            throttle_burst: 3,
            operations: vec![hsm_sim::Operation::Sign],
            ..FaultConfig::default()
        })
        .unwrap();
        let digest = keccak256(b"throttled");
        let sig = signer
            .sign_hash(&digest)
            .await
            .expect("sign after throttling");
        assert_eq!(
            sig.recover_address_from_prehash(&digest).unwrap(),
            signer.address()
        );
        let stats = sim.stats();
        assert_eq!(stats.faults_of("throttle_burst"), 3);
        assert_eq!(stats.errors_of(ErrorCode::ThrottlingException), 3);
        assert_eq!(stats.calls_of("Sign"), 4);
        let h = signer.health().unwrap().snapshot();
        assert_eq!(h.retries - at_start, 3);
        assert_eq!(h.state, HealthState::Usable);

        // KMSInternalException and DependencyTimeoutException (500/503) are retried the same.
        for code in [
            ErrorCode::KmsInternalException,
            ErrorCode::DependencyTimeoutException,
        ] {
            let mut retrying = kms_config(&sim.endpoint(), &key_id);
            retrying.retry.max_attempts = 12;
            // Connected first: on a busy machine connecting could outlast a short outage.
            let signer = connect(&retrying).await;
            sim.reset_stats();
            sim.set_faults(FaultConfig {
                outage_secs: 0.2,
                outage_code: code,
                operations: vec![hsm_sim::Operation::Sign],
                ..FaultConfig::default()
            })
            .unwrap();
            let digest = keccak256(format!("{code:?}"));
            let sig = signer.sign_hash(&digest).await.expect("sign after outage");
            assert_eq!(
                sig.recover_address_from_prehash(&digest).unwrap(),
                signer.address()
            );
            let stats = sim.stats();
            let failed = stats.errors_of(code);
            assert!(failed >= 1, "{code:?}: {stats:?}");
            assert_eq!(stats.calls_of("Sign"), failed + 1, "{stats:?}");
            assert_eq!(signer.health().unwrap().snapshot().retries, failed);
        }
    })
    .await;
}

#[tokio::test]
async fn outage_longer_than_the_retry_budget_is_a_clear_transient_error() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        let mut config = kms_config(&sim.endpoint(), &key_id);
        config.retry = fast_retry(3);
        let signer = connect(&config).await;
        sim.set_faults(FaultConfig {
            outage_secs: 30.0,
            outage_code: ErrorCode::DependencyTimeoutException,
            ..FaultConfig::default()
        })
        .unwrap();
        let err = signer
            .sign_hash(&keccak256(b"during outage"))
            .await
            .expect_err("an outage longer than the budget must fail");
        assert!(err.is_transient(), "{err}");
        assert!(
            matches!(
                &err,
                SignerError::AwsKms(AwsKmsError::Unavailable { code, operation: "Sign", .. })
                    if code == "DependencyTimeoutException"
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("temporarily unavailable") && msg.contains("DependencyTimeoutException"),
            "{msg}"
        );
        assert_eq!(
            sim.stats().calls_of("Sign"),
            3,
            "bounded: exactly max_attempts"
        );
        let h = signer.health().unwrap().snapshot();
        assert_eq!(h.state, HealthState::Degraded);
        assert_eq!((h.transient_errors, h.retries, h.signatures), (3, 2, 0));

        // The outage ends: the same signer signs again and is usable.
        sim.set_faults(FaultConfig::default()).unwrap();
        signer.sign_hash(&keccak256(b"after")).await.unwrap();
        assert_eq!(signer.health().unwrap().state(), HealthState::Usable);
    })
    .await;
}

#[tokio::test]
async fn slow_kms_times_out_as_a_transient_error() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        let mut config = kms_config(&sim.endpoint(), &key_id);
        config.call_timeout_ms = 300;
        config.retry = fast_retry(2);
        let signer = connect(&config).await;
        sim.set_faults(FaultConfig {
            latency_ms: 1_500,
            ..FaultConfig::default()
        })
        .unwrap();
        let err = signer.sign_hash(&keccak256(b"slow")).await.unwrap_err();
        assert!(
            matches!(err, SignerError::AwsKms(AwsKmsError::Timeout { .. })),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert_eq!(signer.health().unwrap().snapshot().transient_errors, 2);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_signature_is_never_returned() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        let signer = connect(&kms_config(&sim.endpoint(), &key_id)).await;
        let mut refused = 0;
        for mode in [WrongSignature::OtherDigest, WrongSignature::OtherKey] {
            sim.set_faults(FaultConfig {
                wrong_signature: mode,
                ..FaultConfig::default()
            })
            .unwrap();
            for i in 0..8 {
                let digest = keccak256(format!("{mode:?} {i}"));
                match signer.sign_hash(&digest).await {
                    Err(SignerError::Signature(SignatureError::WrongKey { expected })) => {
                        assert_eq!(expected, signer.address());
                        refused += 1;
                    }
                    Err(e) => panic!("{mode:?}: unexpected error {e}"),
                    Ok(sig) => panic!(
                        "{mode:?}: a signature recovering to {:?} was returned",
                        sig.recover_address_from_prehash(&digest)
                    ),
                }
            }
        }
        assert_eq!(refused, 16);
        let stats = sim.stats();
        assert_eq!(stats.faults_of("wrong_signature"), 16);
        // Not retried: a wrong signature is permanent, and the backend is unusable.
        assert_eq!(stats.calls_of("Sign"), 16);
        let h = signer.health().unwrap().snapshot();
        assert_eq!((h.permanent_errors, h.signatures), (16, 0));
        assert_eq!(h.state, HealthState::Unusable);
    })
    .await;
}

#[tokio::test]
async fn unknown_key_is_a_clear_permanent_error() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let err = AwsKmsSigner::connect(&kms_config(&sim.endpoint(), "alias/nope"))
            .await
            .unwrap_err();
        assert!(!err.is_transient());
        assert!(
            matches!(&err, SignerError::AwsKms(AwsKmsError::KeyNotFound { key_id, .. }) if key_id == "alias/nope"),
            "{err:?}"
        );
        assert!(err.to_string().contains("alias/nope"), "{err}");
        // Not retried.
        assert_eq!(sim.stats().calls_of("GetPublicKey"), 1);

        // A config with problems is refused before any call, naming every one.
        let mut bad = kms_config(&sim.endpoint(), "");
        bad.call_timeout_ms = 0;
        let err = AwsKmsSigner::connect(&bad).await.unwrap_err();
        let SignerError::Config(c) = err else {
            panic!("{err:?}")
        };
        assert_eq!(c.problems.len(), 2, "{c}");
    })
    .await;
}

#[tokio::test]
async fn key_management_creates_shows_and_lists_secp256k1_keys() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let kms = AwsKmsClient::connect(Some(REGION), Some(&sim.endpoint()))
            .await
            .unwrap();
        let created = kms
            .create_key(Some("ops-1"), Some("test key"))
            .await
            .unwrap();
        assert_eq!(created.key_spec, "ECC_SECG_P256K1");
        assert_eq!(created.key_usage, "SIGN_VERIFY");
        assert_eq!(created.key_state, "Enabled");
        assert_eq!(created.aliases, ["alias/ops-1"]);
        let address = created.address.expect("address of a new key");
        let public_key = created.public_key.clone().unwrap();
        assert_eq!(public_key.len(), 65);
        assert_eq!(
            address_of(&k256::ecdsa::VerifyingKey::from_sec1_bytes(&public_key).unwrap()),
            address
        );

        let shown = kms.describe_key("alias/ops-1").await.unwrap();
        assert_eq!(shown, created);
        let other = kms.create_key(None, None).await.unwrap();
        let listed = kms.list_keys().await.unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&created) && listed.contains(&other));

        // A signer on the alias signs for the address create_key printed.
        let signer = connect(&kms_config(&sim.endpoint(), "alias/ops-1")).await;
        assert_eq!(signer.address(), address);

        // Invalid aliases are refused before a key is created.
        let before = sim.stats().calls_of("CreateKey");
        let err = kms.create_key(Some("alias/aws/x"), None).await.unwrap_err();
        assert!(matches!(err, AwsKmsError::InvalidAlias { .. }), "{err:?}");
        assert_eq!(sim.stats().calls_of("CreateKey"), before);
        // An alias that exists already: the key is made, the error names it.
        let err = kms.create_key(Some("ops-1"), None).await.unwrap_err();
        assert!(
            matches!(err, AwsKmsError::AliasNotCreated { ref alias, .. } if alias == "alias/ops-1"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn debug_output_never_contains_credentials() {
    bounded(60, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        let config = kms_config(&sim.endpoint(), &key_id);
        let signer = connect(&config).await;
        let client = AwsKmsClient::from_config(&config).await.unwrap();
        let section = SignerConfig::AwsKms(config.clone());
        let err = AwsKmsSigner::connect(&kms_config(&sim.endpoint(), "alias/missing"))
            .await
            .unwrap_err();
        // The signer really authenticated with the environment's credentials.
        assert_eq!(
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            SECRET_ACCESS_KEY
        );
        for (what, text) in [
            ("config", format!("{config:?}")),
            ("section", format!("{section:?}")),
            ("signer", format!("{signer:?}")),
            ("signer (alternate)", format!("{signer:#?}")),
            ("client", format!("{client:?}")),
            ("error", format!("{err:?} {err}")),
        ] {
            assert!(
                !text.contains(SECRET_ACCESS_KEY),
                "{what} Debug leaks the secret: {text}"
            );
            assert!(
                !text.contains(ACCESS_KEY_ID),
                "{what} Debug shows the access key id: {text}"
            );
        }
        assert!(format!("{signer:?}").contains(&key_id));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_kms_vote_is_accepted_by_anvil() {
    bounded(120, async {
        let sim = sim(FaultConfig::default()).await;
        let key_id = sim.create_key(None).unwrap();
        let signer = connect(&kms_config(&sim.endpoint(), &key_id)).await;
        let from = signer.address();
        let bridge = Address::repeat_byte(0xb3);
        let dir = tempfile::tempdir().unwrap();
        let guard = Guard::new(
            signer,
            31337,
            bridge,
            Journal::open(dir.path().join("votes.sqlite")).unwrap(),
        );
        let anvil = anvil::start_anvil();
        let port = anvil.port;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::new(guard))
            .connect_http(format!("http://127.0.0.1:{port}").parse().unwrap());
        provider
            .anvil_set_balance(from, U256::from(10u128.pow(18)))
            .await
            .unwrap();
        let request = TransactionRequest::default()
            .with_from(from)
            .with_to(bridge)
            .with_input(votes::klay_vote(1, 100));
        let receipt = provider
            .send_transaction(request)
            .await
            .expect("anvil accepts the KMS-signed tx")
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        assert_eq!(receipt.from, from);
        assert_eq!(provider.get_transaction_count(from).await.unwrap(), 1);
        assert!(sim.stats().calls_of("Sign") >= 1);
    })
    .await;
}
