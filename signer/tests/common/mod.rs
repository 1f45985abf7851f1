//! Shared test fixtures: a fresh SoftHSM2 token store per test binary run, and an in-process
//! k256 signer for guard tests that do not need an HSM.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use alloy_primitives::{Address, B256, Signature};
use async_trait::async_trait;
use bridge_devkit::softhsm::SoftHsmDir;
use bridge_signer::pkcs11::{Pkcs11Config, Pkcs11Signer, Pkcs11Token};
use bridge_signer::{Pin, PinSource, Signer, SignerError, signature};
use k256::ecdsa::SigningKey;

pub use bridge_devkit::softhsm::MODULE;
pub const USER_PIN: &str = "user-pin-4711";
pub const SO_PIN: &str = "so-pin-0815";
/// Token most tests share (each test generates its own key on it).
pub const MAIN_TOKEN: &str = "bs-main";
/// Token nobody logs into, so a wrong PIN is really checked (a token already logged in
/// answers CKR_USER_ALREADY_LOGGED_IN before looking at the PIN).
pub const WRONG_PIN_TOKEN: &str = "bs-wrongpin";
/// Token whose sessions a test closes underneath the signer.
pub const REOPEN_TOKEN: &str = "bs-reopen";
/// Env var naming the PIN in configs built by tests.
pub const PIN_ENV: &str = "BRIDGE_SIGNER_TEST_PIN";

static SOFTHSM: OnceLock<PathBuf> = OnceLock::new();

/// Creates a SoftHSM2 config and token directory in a fresh temp dir, points SOFTHSM2_CONF
/// at it and initialises the test tokens. Runs once per test binary, before any test loads
/// the module (SoftHSM reads its token list at C_Initialize). Panics with a clear message if
/// SoftHSM2 is not installed: these tests never skip silently.
pub fn softhsm() -> &'static Path {
    SOFTHSM.get_or_init(|| {
        assert!(
            Path::new(MODULE).is_file(),
            "SoftHSM2 PKCS#11 module {MODULE} is missing: install it with \
             `apt-get install -y softhsm2 opensc`"
        );
        // Kept for the whole run (a static is never dropped), so inside the build's own
        // scratch directory: removed with the build, never left in /tmp.
        let dir = tempfile::Builder::new()
            .prefix("bridge-signer-softhsm-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir")
            .keep();
        let hsm = SoftHsmDir::create(&dir).unwrap();
        let conf = hsm.conf.clone();
        // SAFETY (test only): runs once, inside the OnceLock initialiser, before any test
        // thread has loaded SoftHSM or reads SOFTHSM2_CONF; every test calls softhsm() first.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
            std::env::set_var(PIN_ENV, USER_PIN);
        }
        hsm.init_tokens(
            &[MAIN_TOKEN, WRONG_PIN_TOKEN, REOPEN_TOKEN],
            USER_PIN,
            SO_PIN,
        )
        .unwrap();
        dir
    })
}

pub fn config(token: &str, key_label: &str) -> Pkcs11Config {
    softhsm();
    let mut c = Pkcs11Config::new(MODULE, token, PinSource::Env(PIN_ENV.into()));
    c.key_label = Some(key_label.into());
    c
}

pub async fn token(label: &str) -> Pkcs11Token {
    softhsm();
    Pkcs11Token::open(MODULE, label, Pin::new(USER_PIN))
        .await
        .expect("open test token")
}

/// Generates a key labelled `key_label` on `token_label` and connects a signer to it.
pub async fn signer_with_new_key(token_label: &str, key_label: &str) -> Pkcs11Signer {
    let info = token(token_label)
        .await
        .generate_key(key_label, None)
        .await
        .expect("generate key");
    let signer = Pkcs11Signer::connect(&config(token_label, key_label))
        .await
        .expect("connect signer");
    assert_eq!(signer.address(), info.address);
    signer
}

/// An in-process secp256k1 key behind the crate's Signer trait, for guard tests.
#[derive(Debug)]
pub struct LocalKey(pub SigningKey);

impl LocalKey {
    pub fn new(seed: u8) -> Self {
        Self(SigningKey::from_slice(&[seed; 32]).unwrap())
    }
}

#[async_trait]
impl Signer for LocalKey {
    fn address(&self) -> Address {
        signature::address_of(self.0.verifying_key())
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        let (sig, _) = self
            .0
            .sign_prehash_recoverable(hash.as_slice())
            .expect("k256 signs");
        Ok(signature::recoverable(
            &sig.to_bytes(),
            hash,
            self.0.verifying_key(),
        )?)
    }
}
