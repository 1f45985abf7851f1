//! The one signing trait every backend implements.

use std::sync::Arc;

use alloy_primitives::{Address, B256, Signature};
use async_trait::async_trait;

use crate::{Health, SignerError};

/// An async ECDSA/secp256k1 signer in alloy's shape: one required primitive, [`sign_hash`],
/// plus the address it signs for.
///
/// Implementations return only signatures that are low-s, carry the right recovery id and
/// verify against [`address`]; they never sign without a caller asking for one specific hash.
/// The agent does not call this directly for transactions: it goes through [`crate::Guard`].
///
/// [`sign_hash`]: Signer::sign_hash
/// [`address`]: Signer::address
#[async_trait]
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The Ethereum address of the key.
    fn address(&self) -> Address;

    /// Signs a 32-byte digest (already hashed; never hashed again).
    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError>;

    /// Health state and counters, for `/readyz` and Prometheus. Backends that keep none
    /// return `None`.
    fn health(&self) -> Option<&Health> {
        None
    }
}

#[async_trait]
impl<T: Signer + ?Sized> Signer for Arc<T> {
    fn address(&self) -> Address {
        (**self).address()
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        (**self).sign_hash(hash).await
    }

    fn health(&self) -> Option<&Health> {
        (**self).health()
    }
}

#[async_trait]
impl<T: Signer + ?Sized> Signer for Box<T> {
    fn address(&self) -> Address {
        (**self).address()
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        (**self).sign_hash(hash).await
    }

    fn health(&self) -> Option<&Health> {
        (**self).health()
    }
}
