//! Plugs any [`Signer`] into alloy's `Signer` and `TxSigner` traits, *without* the guard.
//!
//! For tools (the `keys` CLI) and tests. The agent signs votes through [`crate::Guard`], which
//! implements `TxSigner` itself and checks every transaction first.

use alloy_consensus::SignableTransaction;
use alloy_primitives::{Address, B256, ChainId, Signature};
use async_trait::async_trait;

use crate::Signer;

/// Adapter from a [`Signer`] to `alloy_signer::Signer` and `alloy_network::TxSigner`.
#[derive(Debug, Clone)]
pub struct AlloyAdapter<S> {
    inner: S,
    chain_id: Option<ChainId>,
}

impl<S: Signer> AlloyAdapter<S> {
    /// Wraps `inner`; with `chain_id` set, transactions for another chain are refused.
    pub fn new(inner: S, chain_id: Option<ChainId>) -> Self {
        Self { inner, chain_id }
    }

    /// The wrapped signer.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Signer> alloy_signer::Signer for AlloyAdapter<S> {
    async fn sign_hash(&self, hash: &B256) -> alloy_signer::Result<Signature> {
        self.inner
            .sign_hash(hash)
            .await
            .map_err(alloy_signer::Error::other)
    }

    fn address(&self) -> Address {
        self.inner.address()
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

#[async_trait]
impl<S: Signer> alloy_network::TxSigner<Signature> for AlloyAdapter<S> {
    fn address(&self) -> Address {
        self.inner.address()
    }

    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy_signer::Result<Signature> {
        if let Some(chain_id) = self.chain_id
            && !tx.set_chain_id_checked(chain_id)
        {
            return Err(alloy_signer::Error::TransactionChainIdMismatch {
                signer: chain_id,
                tx: tx.chain_id().unwrap_or_default(),
            });
        }
        self.inner
            .sign_hash(&tx.signature_hash())
            .await
            .map_err(alloy_signer::Error::other)
    }
}
