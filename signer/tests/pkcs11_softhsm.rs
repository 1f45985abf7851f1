//! The PKCS#11 backend against a real SoftHSM2 token (fresh token store per run).
#![cfg(feature = "pkcs11")]

mod common;

use std::sync::Arc;

use alloy_primitives::{B256, keccak256};
use bridge_signer::pkcs11::{KeySelector, Pkcs11Config, Pkcs11Error, Pkcs11Signer, Pkcs11Token};
use bridge_signer::signature::{address_of, is_low_s};
use bridge_signer::{HealthState, Pin, PinSource, Signer, SignerConfig, SignerError};
use common::*;
use k256::ecdsa::{Signature as K256Signature, VerifyingKey, signature::hazmat::PrehashVerifier};

fn verifying_key(public_key: &[u8]) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(public_key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_digests_low_s_recover_and_verify() {
    let signer = signer_with_new_key(MAIN_TOKEN, "thousand").await;
    let vk = verifying_key(&signer.key_info().public_key);
    assert_eq!(address_of(&vk), signer.address());
    let mut odd = 0;
    for i in 0u32..1000 {
        let digest = keccak256(i.to_be_bytes());
        let sig = signer.sign_hash(&digest).await.expect("sign");
        assert!(is_low_s(&sig), "signature {i} is high-s");
        assert_eq!(
            sig.recover_address_from_prehash(&digest).unwrap(),
            signer.address(),
            "signature {i} recovers to another address"
        );
        let k =
            K256Signature::from_scalars(sig.r().to_be_bytes::<32>(), sig.s().to_be_bytes::<32>())
                .unwrap();
        vk.verify_prehash(digest.as_slice(), &k)
            .unwrap_or_else(|e| panic!("signature {i} does not verify with k256: {e}"));
        odd += usize::from(sig.v());
    }
    // Both recovery ids occur: the trial recovery is really exercised.
    assert!((300..700).contains(&odd), "y parity odd {odd} of 1000");
    let h = signer.health().unwrap().snapshot();
    assert_eq!(h.signatures, 1000);
    assert_eq!(h.state, HealthState::Usable);
    assert_eq!(h.latency_count, 1000);
}

#[tokio::test]
async fn generated_key_is_sensitive_and_not_extractable() {
    let token = token(MAIN_TOKEN).await;
    let info = token
        .generate_key("attrs", Some(vec![0xa1, 0x7e]))
        .await
        .unwrap();
    assert_eq!(info.id, vec![0xa1, 0x7e]);
    let attrs = token
        .key_attributes(&KeySelector::id(vec![0xa1, 0x7e]))
        .await
        .unwrap();
    assert_eq!(attrs.info, info);
    assert!(attrs.sensitive && attrs.always_sensitive, "{attrs:?}");
    assert!(!attrs.extractable && attrs.never_extractable, "{attrs:?}");
    assert!(attrs.token && attrs.private && attrs.sign, "{attrs:?}");
    assert!(attrs.is_protected());
    // The same label again is refused rather than shadowed.
    assert!(matches!(
        token.generate_key("attrs", None).await,
        Err(Pkcs11Error::KeyExists { .. })
    ));
    let listed = token.list_keys().await.unwrap();
    assert!(listed.contains(&info), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_tasks() {
    let signer = Arc::new(signer_with_new_key(MAIN_TOKEN, "concurrent").await);
    let mut tasks = Vec::new();
    for t in 0u32..64 {
        let signer = Arc::clone(&signer);
        tasks.push(tokio::spawn(async move {
            for j in 0u32..5 {
                let digest = keccak256([t.to_be_bytes(), j.to_be_bytes()].concat());
                let sig = signer.sign_hash(&digest).await.expect("sign");
                assert_eq!(
                    sig.recover_address_from_prehash(&digest).unwrap(),
                    signer.address()
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(signer.health().unwrap().snapshot().signatures, 320);
}

/// Closes every session of the token through a second handle to the module, then logs the
/// application out: the signer must re-open and re-login without the caller noticing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_closed_underneath_signing_continues() {
    let mut config = config(REOPEN_TOKEN, "reopen");
    config.sessions = 3;
    token(REOPEN_TOKEN)
        .await
        .generate_key("reopen", None)
        .await
        .unwrap();
    let signer = Arc::new(Pkcs11Signer::connect(&config).await.unwrap());
    // Fill the pool with several sessions.
    let warm: Vec<_> = (0u8..6)
        .map(|i| {
            let s = Arc::clone(&signer);
            tokio::spawn(async move { s.sign_hash(&keccak256([i])).await.unwrap() })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }
    let slot = token(REOPEN_TOKEN).await.slot_id();
    for round in 0u8..3 {
        let rv = tokio::task::spawn_blocking(move || {
            // SAFETY (test only): loads the same module again and calls C_CloseAllSessions
            // on the test token's slot; the module is initialised by the signer already.
            unsafe {
                let lib = cryptoki_sys::Pkcs11::new(MODULE).expect("load module");
                lib.C_CloseAllSessions(slot)
            }
        })
        .await
        .unwrap();
        assert_eq!(
            rv,
            cryptoki_sys::CKR_OK,
            "C_CloseAllSessions failed: {rv:#x}"
        );
        for i in 0u8..10 {
            let digest = keccak256([round, i, 0xcc]);
            let sig = signer
                .sign_hash(&digest)
                .await
                .unwrap_or_else(|e| panic!("round {round} digest {i}: {e}"));
            assert_eq!(
                sig.recover_address_from_prehash(&digest).unwrap(),
                signer.address()
            );
        }
    }
    assert!(
        signer.sessions_reopened() >= 3,
        "expected re-opened sessions, got {}",
        signer.sessions_reopened()
    );
    // No call failed: the loss was invisible to callers.
    assert_eq!(signer.health().unwrap().snapshot().permanent_errors, 0);
}

#[tokio::test]
async fn wrong_pin_is_a_clear_permanent_error() {
    softhsm();
    token(MAIN_TOKEN).await; // the module is loaded; WRONG_PIN_TOKEN is never logged into
    let pin_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pin_file.path(), "not-the-pin\n").unwrap();
    let mut cfg = Pkcs11Config::new(
        MODULE,
        WRONG_PIN_TOKEN,
        PinSource::File(pin_file.path().into()),
    );
    cfg.key_label = Some("whatever".into());
    let err = Pkcs11Signer::connect(&cfg).await.unwrap_err();
    assert!(
        matches!(&err, SignerError::Pkcs11(Pkcs11Error::WrongPin { token }) if token == WRONG_PIN_TOKEN),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("wrong PIN") && !text.contains("not-the-pin"),
        "{text}"
    );
}

#[tokio::test]
async fn missing_token_names_the_label_and_what_is_present() {
    softhsm();
    let err = Pkcs11Token::open(MODULE, "no-such-token", Pin::new(USER_PIN))
        .await
        .unwrap_err();
    match &err {
        Pkcs11Error::TokenNotFound { label, present, .. } => {
            assert_eq!(label, "no-such-token");
            assert!(present.iter().any(|p| p == MAIN_TOKEN), "{present:?}");
        }
        other => panic!("expected TokenNotFound, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("no token labelled \"no-such-token\"")
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn missing_module_is_a_clear_error() {
    let err = Pkcs11Token::open("/nonexistent/libpkcs11.so", MAIN_TOKEN, Pin::new(USER_PIN))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Pkcs11Error::ModuleMissing { path, .. } if path.ends_with("libpkcs11.so")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("/nonexistent/libpkcs11.so cannot be loaded")
    );
    // A file that exists but is no PKCS#11 module.
    let bogus = tempfile::NamedTempFile::new().unwrap();
    let err = Pkcs11Token::open(bogus.path(), MAIN_TOKEN, Pin::new(USER_PIN))
        .await
        .unwrap_err();
    assert!(matches!(err, Pkcs11Error::ModuleMissing { .. }), "{err:?}");
}

#[tokio::test]
async fn unknown_key_is_a_clear_error() {
    let err = Pkcs11Signer::connect(&config(MAIN_TOKEN, "never-generated"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SignerError::Pkcs11(Pkcs11Error::KeyNotFound { selector, .. }) if selector.contains("never-generated")),
        "{err:?}"
    );
}

#[tokio::test]
async fn debug_of_configs_and_signers_never_shows_the_pin() {
    let signer = signer_with_new_key(MAIN_TOKEN, "redaction").await;
    let token = token(MAIN_TOKEN).await;
    let toml_cfg = format!(
        "backend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{MAIN_TOKEN}\"\n\
         key_label = \"redaction\"\npin = {{ env = \"{PIN_ENV}\" }}\n"
    );
    let cfg: SignerConfig = toml::from_str(&toml_cfg).unwrap();
    let dyn_signer = cfg.connect().await.unwrap();
    let rendered = [
        format!("{signer:?}"),
        format!("{signer:#?}"),
        format!("{token:?}"),
        format!("{cfg:?}"),
        format!("{dyn_signer:?}"),
        format!("{:?}", Pin::new(USER_PIN)),
    ];
    for r in &rendered {
        assert!(!r.contains(USER_PIN), "PIN leaked in {r}");
    }
    assert!(rendered[0].contains("REDACTED"), "{}", rendered[0]);
    assert_eq!(dyn_signer.address(), signer.address());
}

#[test]
fn config_rejects_unknown_fields_and_reports_every_problem() {
    let unknown: Result<SignerConfig, _> = toml::from_str(
        "backend = \"pkcs11\"\nmodule = \"/m.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\n\
         pin = { env = \"P\" }\npin_inline = \"1234\"\n",
    );
    assert!(unknown.unwrap_err().to_string().contains("pin_inline"));
    let other_backend: Result<SignerConfig, _> = toml::from_str("backend = \"yubikey\"\n");
    assert!(other_backend.is_err());
    let cfg: SignerConfig = toml::from_str(
        "backend = \"pkcs11\"\nmodule = \"\"\ntoken_label = \"\"\npin = { file = \"/p\" }\n\
         sessions = 0\n",
    )
    .unwrap();
    let err = cfg.validate("signer").unwrap_err();
    let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "signer.module",
            "signer.token_label",
            "signer.key_label",
            "signer.sessions"
        ]
    );
}

#[tokio::test]
async fn signing_key_is_shared_by_label_and_id_selectors() {
    let token = token(MAIN_TOKEN).await;
    let info = token.generate_key("by-id", None).await.unwrap();
    let mut cfg = config(MAIN_TOKEN, "by-id");
    cfg.key_label = None;
    cfg.key_id = Some(hex::encode(&info.id));
    let signer = Pkcs11Signer::connect(&cfg).await.unwrap();
    assert_eq!(signer.address(), info.address);
    let digest = B256::repeat_byte(0x42);
    let sig = signer.sign_hash(&digest).await.unwrap();
    assert_eq!(
        sig.recover_address_from_prehash(&digest).unwrap(),
        info.address
    );
}
