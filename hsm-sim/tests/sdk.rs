//! The simulator seen through the real aws-sdk-kms client: the protocol, then each fault mode.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, SigningAlgorithmSpec};
use common::{bounded, client, create_key, digest, is_high_s, public_key, sign, verifies};
use hsm_sim::{Config, Error, ErrorCode, FaultConfig, HsmSim, Operation, WrongSignature};

async fn sim_with(faults: FaultConfig) -> HsmSim {
    let config = Config {
        faults,
        ..Config::default()
    };
    HsmSim::start(config).await.expect("start hsm-sim")
}

async fn sim() -> HsmSim {
    sim_with(FaultConfig {
        seed: Some(1),
        ..FaultConfig::default()
    })
    .await
}

fn sha256(d: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(d).into()
}

#[tokio::test]
async fn create_key_get_public_key_and_sign_a_digest_that_verifies_as_given() {
    bounded(60, async {
        let sim = sim().await;
        let kms = client(&sim.endpoint(), 1).await;
        let key_id = create_key(&kms).await;

        let described = kms.describe_key().key_id(&key_id).send().await.unwrap();
        let meta = described.key_metadata().unwrap();
        assert_eq!(meta.key_spec(), Some(&KeySpec::EccSecgP256K1));
        assert_eq!(meta.key_usage(), Some(&KeyUsageType::SignVerify));
        assert!(meta.arn().unwrap().ends_with(&format!(":key/{key_id}")));

        let out = kms.get_public_key().key_id(&key_id).send().await.unwrap();
        assert_eq!(out.key_spec(), Some(&KeySpec::EccSecgP256K1));
        assert_eq!(
            out.signing_algorithms(),
            [SigningAlgorithmSpec::EcdsaSha256]
        );
        let pk = public_key(&kms, &key_id).await;

        let mut high = 0;
        for i in 0..32 {
            let d = digest(i);
            let der = sign(&kms, &key_id, &d).await.expect("Sign");
            assert!(verifies(&pk, &d, &der), "signature {i} does not verify");
            // DIGEST means no hashing again: the signature is not over sha256(digest).
            assert!(
                !verifies(&pk, &sha256(&d), &der),
                "signature {i} is over a re-hash"
            );
            high += u64::from(is_high_s(&der));
        }
        // Like real KMS, about half come out high-s (seeded, so this is exact per seed).
        assert!((4..=28).contains(&high), "{high} of 32 high-s");
        let stats = sim.stats();
        assert_eq!(stats.high_s_signatures, high);
        assert_eq!(stats.calls_of("Sign"), 32);
        assert_eq!(stats.succeeded.get("Sign"), Some(&32));
        assert_eq!(stats.calls_of("CreateKey"), 1);
        assert_eq!(stats.calls_of("GetPublicKey"), 2);
        assert!(stats.errors.is_empty(), "{stats:?}");
        assert!(stats.faults.is_empty(), "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn aliases_resolve_and_lists_show_keys_and_aliases() {
    bounded(60, async {
        let sim = sim().await;
        let kms = client(&sim.endpoint(), 1).await;
        let key_id = create_key(&kms).await;
        let other = create_key(&kms).await;
        kms.create_alias()
            .alias_name("alias/bridge")
            .target_key_id(&key_id)
            .send()
            .await
            .expect("CreateAlias");
        let dup = kms
            .create_alias()
            .alias_name("alias/bridge")
            .target_key_id(&other)
            .send()
            .await
            .unwrap_err();
        assert!(dup.into_service_error().is_already_exists_exception());

        let pk = public_key(&kms, &key_id).await;
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/bridge";
        for name in ["alias/bridge", alias_arn] {
            let d = digest(7);
            let der = sign(&kms, name, &d).await.expect("Sign by alias");
            assert!(verifies(&pk, &d, &der), "{name}");
            let meta = kms.describe_key().key_id(name).send().await.unwrap();
            assert_eq!(meta.key_metadata().unwrap().key_id(), key_id);
        }

        let aliases = kms.list_aliases().send().await.unwrap();
        let found: Vec<_> = aliases
            .aliases()
            .iter()
            .map(|a| (a.alias_name().unwrap(), a.target_key_id().unwrap()))
            .collect();
        assert_eq!(found, [("alias/bridge", key_id.as_str())]);
        let of_other = kms.list_aliases().key_id(&other).send().await.unwrap();
        assert!(of_other.aliases().is_empty());

        let keys = kms.list_keys().send().await.unwrap();
        let mut ids: Vec<_> = keys.keys().iter().map(|k| k.key_id().unwrap()).collect();
        ids.sort();
        let mut want = [key_id.as_str(), other.as_str()];
        want.sort();
        assert_eq!(ids, want);
    })
    .await;
}

#[tokio::test]
async fn unknown_keys_and_aliases_are_not_found() {
    bounded(60, async {
        let sim = sim().await;
        let kms = client(&sim.endpoint(), 3).await;
        let e = kms
            .get_public_key()
            .key_id("alias/missing")
            .send()
            .await
            .unwrap_err();
        assert!(e.into_service_error().is_not_found_exception());
        let e = sign(&kms, "0b0e4c0d-1a2b-4c3d-8e9f-000000000000", &digest(1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("NotFoundException"));
        assert!(e.into_service_error().is_not_found_exception());
        let stats = sim.stats();
        // A permanent error: no retry.
        assert_eq!(stats.calls_of("Sign"), 1);
        assert_eq!(stats.errors_of(ErrorCode::NotFoundException), 2);
    })
    .await;
}

#[tokio::test]
async fn a_throttling_burst_is_retried_by_the_sdk_then_succeeds() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 3).await;
        let pk = public_key(&kms, &key_id).await;
        sim.set_faults(FaultConfig {
            throttle_burst: 2,
            ..FaultConfig::default()
        })
        .unwrap();
        let d = digest(3);
        let der = sign(&kms, &key_id, &d)
            .await
            .expect("Sign after 2 throttles");
        assert!(verifies(&pk, &d, &der));
        let stats = sim.stats();
        assert_eq!(stats.calls_of("Sign"), 3);
        assert_eq!(stats.faults_of("throttle_burst"), 2);
        assert_eq!(stats.errors_of(ErrorCode::ThrottlingException), 2);
        assert_eq!(stats.faults_by_operation["Sign"]["throttle_burst"], 2);
        assert_eq!(sim.faults().throttle_burst_left, 0);
    })
    .await;
}

#[tokio::test]
async fn throttling_is_classified_retryable_at_http_400_and_validation_is_not() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 3).await;

        sim.set_faults(FaultConfig {
            throttle_burst: 10,
            ..FaultConfig::default()
        })
        .unwrap();
        let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
        assert_eq!(e.code(), Some("ThrottlingException"));
        assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
        // Retried although the status is 400: the SDK read the code as throttling.
        assert_eq!(sim.stats().calls_of("Sign"), 3);

        sim.reset_stats();
        sim.set_faults(FaultConfig {
            error_rate: 1.0,
            error_codes: vec![ErrorCode::ValidationException],
            ..FaultConfig::default()
        })
        .unwrap();
        let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));
        assert_eq!(
            sim.stats().calls_of("Sign"),
            1,
            "a 400 that is not throttling is not retried"
        );
    })
    .await;
}

#[tokio::test]
async fn injected_server_errors_carry_the_kms_code_and_status() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 1).await;
        for (code, status) in [
            (ErrorCode::KmsInternalException, 500),
            (ErrorCode::DependencyTimeoutException, 503),
            (ErrorCode::ThrottlingException, 400),
        ] {
            sim.set_faults(FaultConfig {
                error_rate: 1.0,
                error_codes: vec![code],
                ..FaultConfig::default()
            })
            .unwrap();
            let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
            assert_eq!(e.code(), Some(code.as_str()));
            assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(status));
        }
        let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
        assert!(e.code() == Some("ThrottlingException"));
        sim.set_faults(FaultConfig {
            error_rate: 1.0,
            error_codes: vec![ErrorCode::DependencyTimeoutException],
            ..FaultConfig::default()
        })
        .unwrap();
        let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
        assert!(e.into_service_error().is_dependency_timeout_exception());
        let stats = sim.stats();
        assert_eq!(stats.faults_of("error_rate"), 5);
        assert_eq!(stats.errors_of(ErrorCode::KmsInternalException), 1);
        assert_eq!(stats.errors_of(ErrorCode::DependencyTimeoutException), 2);
        assert_eq!(stats.errors_of(ErrorCode::ThrottlingException), 2);
    })
    .await;
}

/// The outcome (error code or success) of `n` Signs at error rate 0.5 with a given seed.
async fn seeded_outcomes(
    sim: &HsmSim,
    kms: &aws_sdk_kms::Client,
    key: &str,
    seed: u64,
) -> Vec<Option<String>> {
    sim.set_faults(FaultConfig {
        error_rate: 0.5,
        error_codes: vec![
            ErrorCode::KmsInternalException,
            ErrorCode::ThrottlingException,
        ],
        seed: Some(seed),
        ..FaultConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    for i in 0..30 {
        out.push(
            sign(kms, key, &digest(i))
                .await
                .err()
                .map(|e| e.code().unwrap_or("?").to_owned()),
        );
    }
    out
}

#[tokio::test]
async fn the_error_rate_is_reproducible_from_its_seed_and_counted() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 1).await;
        let a = seeded_outcomes(&sim, &kms, &key_id, 7).await;
        let errors = a.iter().filter(|o| o.is_some()).count() as u64;
        assert!(
            (5..=25).contains(&errors),
            "{errors} errors of 30 at rate 0.5"
        );
        assert_eq!(sim.stats().faults_of("error_rate"), errors);
        assert_eq!(a, seeded_outcomes(&sim, &kms, &key_id, 7).await);
        assert_ne!(a, seeded_outcomes(&sim, &kms, &key_id, 8).await);
    })
    .await;
}

#[tokio::test]
async fn an_outage_fails_every_attempt_then_ends() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 3).await;
        sim.set_faults(FaultConfig {
            outage_secs: 2.0,
            ..FaultConfig::default()
        })
        .unwrap();
        let started = Instant::now();
        let e = sign(&kms, &key_id, &digest(1)).await.unwrap_err();
        assert_eq!(e.code(), Some("DependencyTimeoutException"));
        assert_eq!(
            sim.stats().faults_of("outage"),
            3,
            "every retry hit the outage"
        );
        let left = Duration::from_secs(2).saturating_sub(started.elapsed());
        tokio::time::sleep(left + Duration::from_millis(100)).await;
        assert_eq!(sim.faults().outage_secs_left, 0.0);
        sign(&kms, &key_id, &digest(1))
            .await
            .expect("Sign after the outage");
        assert_eq!(sim.stats().faults_of("outage"), 3);
    })
    .await;
}

#[tokio::test]
async fn latency_delays_answers_by_at_least_the_configured_time() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 1).await;
        sim.set_faults(FaultConfig {
            latency_ms: 250,
            jitter_ms: 50,
            operations: vec![Operation::Sign],
            ..FaultConfig::default()
        })
        .unwrap();
        for i in 0..3 {
            let started = Instant::now();
            sign(&kms, &key_id, &digest(i)).await.expect("Sign");
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(250), "took {took:?}");
            assert!(took < Duration::from_secs(5), "took {took:?}");
        }
        public_key(&kms, &key_id).await;
        let stats = sim.stats();
        assert_eq!(stats.faults_of("latency"), 3);
        // GetPublicKey is not in `operations`: served, but neither delayed nor counted as faulted.
        assert_eq!(stats.calls_of("GetPublicKey"), 1);
        assert!(!stats.faults_by_operation.contains_key("GetPublicKey"));
    })
    .await;
}

#[tokio::test]
async fn wrong_signature_modes_return_valid_der_that_does_not_verify() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(None).unwrap();
        let kms = client(&sim.endpoint(), 1).await;
        let pk = public_key(&kms, &key_id).await;
        for mode in [WrongSignature::OtherDigest, WrongSignature::OtherKey] {
            sim.set_faults(FaultConfig {
                wrong_signature: mode,
                ..FaultConfig::default()
            })
            .unwrap();
            for i in 0..8 {
                let d = digest(i);
                let der = sign(&kms, &key_id, &d).await.expect("Sign");
                assert!(!verifies(&pk, &d, &der), "{mode:?} signature {i} verified");
            }
        }
        sim.set_faults(FaultConfig::default()).unwrap();
        let d = digest(99);
        assert!(verifies(&pk, &d, &sign(&kms, &key_id, &d).await.unwrap()));
        let stats = sim.stats();
        assert_eq!(stats.faults_of("wrong_signature"), 16);
        assert_eq!(stats.succeeded["Sign"], 17);
    })
    .await;
}

#[tokio::test]
async fn non_loopback_addresses_and_bad_faults_are_refused() {
    bounded(30, async {
        let config = Config {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..Config::default()
        };
        let e = HsmSim::start(config).await.unwrap_err();
        assert!(matches!(e, Error::NonLoopback(_)), "{e}");
        assert!(e.to_string().contains("loopback"), "{e}");

        let sim = sim().await;
        let e = sim
            .set_faults(FaultConfig {
                error_rate: 2.0,
                ..FaultConfig::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("error_rate"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn the_admin_endpoint_sets_faults_and_reads_counters() {
    bounded(60, async {
        let sim = sim().await;
        let key_id = sim.create_key(Some("alias/admin")).unwrap();
        let http = reqwest::Client::new();
        let base = sim.endpoint();
        let r = http
            .post(format!("{base}/admin/faults"))
            .body(r#"{"throttle_burst": 1, "error_rate": 3}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["errors"][0].as_str().unwrap().contains("error_rate"),
            "{body}"
        );

        let r = http
            .post(format!("{base}/admin/faults"))
            .body(r#"{"throttle_burst": 1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let kms = client(&base, 2).await;
        sign(&kms, "alias/admin", &digest(1))
            .await
            .expect("Sign after one throttle");

        let stats: serde_json::Value = http
            .get(format!("{base}/admin/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["calls"]["Sign"], 2, "{stats}");
        assert_eq!(stats["faults"]["throttle_burst"], 1, "{stats}");
        assert_eq!(stats["errors"]["ThrottlingException"], 1, "{stats}");
        assert_eq!(serde_json::to_value(sim.stats()).unwrap(), stats);

        let r = http
            .post(format!("{base}/admin/stats/reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(sim.stats(), hsm_sim::Stats::default());
        let r = http.get(format!("{base}/admin/nope")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert_ne!(key_id, "");
    })
    .await;
}
