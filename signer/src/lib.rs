//! `bridge-signer`: everything that turns "sign this vote" into an Ethereum signature, and
//! refuses what must not be signed.
//!
//! The agent holds no private key. It signs through one small async trait, [`Signer`]
//! (alloy's shape: [`Signer::address`] and [`Signer::sign_hash`]), implemented by pluggable
//! backends chosen at run time from [`SignerConfig`]:
//!
//! * `pkcs11` (cargo feature `pkcs11`, default): a PKCS#11 HSM through `cryptoki`
//!   (SoftHSM2 in CI; YubiHSM, Thales, CloudHSM in production).
//! * `aws-kms` (cargo feature `aws-kms`, default): a secp256k1 key in AWS KMS (or a server
//!   speaking its protocol: hsm-sim, moto) through `alloy-signer-aws`; credentials from the
//!   standard AWS chain, the key spec checked to be `ECC_SECG_P256K1` at start.
//!
//! Every backend's raw ECDSA output goes through [`signature::recoverable`]: s is normalised
//! to the low half, the recovery id is found by trial recovery against the public key read once
//! at start, and the result is verified; anything that does not match fails closed.
//!
//! The agent never hands a backend a bare hash. It signs transactions through [`Guard`]:
//!
//! ```text
//!  unsigned tx ──> Guard::sign_transaction
//!                    │ policy: chain id, to == bridge, selector ∈ {handle…, named admin}, value 0
//!                    │ journal (SQLite WAL, synchronous=FULL, one exclusive transaction):
//!                    │   (chain, bridge, namespace, nonce) → keccak(calldata)
//!                    │   new → record · same → re-send allowed · different → Refused::ConflictingVote
//!                    ▼
//!                  Signer::sign_hash ──> backend (retry transient errors, health counters)
//!                    ▼
//!                  signature::recoverable (low-s, recovery id, verify) ──> alloy Signature
//! ```
//!
//! Key management (`keys generate|list|show`, a rotation's new key, destroy) sits behind a
//! second trait, [`KeyStore`], made from a [`SignerConfig`] by [`SignerConfig::key_store`]:
//! the crate's users never match on a backend.
//!
//! [`AlloyAdapter`] plugs any backend into alloy's `Signer`/`TxSigner` *without* the guard (for
//! tools and tests); [`Guard`] itself implements alloy's `TxSigner`, so
//! `EthereumWallet::new(guard)` is how the agent sends votes.
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "pkcs11", feature = "aws-kms")))]
compile_error!(
    "bridge-signer needs at least one signing backend: enable the `pkcs11` and/or the `aws-kms` \
     cargo feature"
);

mod alloy_adapter;
#[cfg(feature = "aws-kms")]
pub mod aws_kms;
pub mod config;
pub mod error;
pub mod guard;
pub mod health;
pub mod keys;
pub mod pin;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod retry;
pub mod signature;
mod traits;

pub use alloy_adapter::AlloyAdapter;
pub use config::{ConfigError, ConfigProblem, SignerConfig};
pub use error::{SignatureError, SignerError};
pub use guard::{Guard, GuardConfig, GuardError, Refused, Safe};
pub use health::{Health, HealthSnapshot, HealthState};
pub use keys::{Backend, KeyName, KeyOp, KeyRef, KeyStore, KeyStoreError};
pub use pin::{Pin, PinError, PinSource};
pub use retry::RetryPolicy;
pub use traits::Signer;
