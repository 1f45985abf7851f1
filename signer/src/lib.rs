//! `bridge-signer`: everything that turns "sign this vote" into an Ethereum signature.
//!
//! This crate will hold the one async `Signer` trait the agent signs through (alloy's shape:
//! `address()` and `sign_hash`), the PKCS#11 backend (SoftHSM2 in CI, a real HSM in production),
//! the AWS KMS backend, signature normalisation (low-S, recovery id by trial recovery), and the
//! signing guard with its durable vote journal that refuses anything that is not a vote for the
//! configured bridge and never signs two different votes for one request. It is empty until
//! issue #3 builds it; nothing here signs yet.
#![forbid(unsafe_code)]
