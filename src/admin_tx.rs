//! One administrative transaction at a time, from the CLI (`keys rotate`, `admin …`): build,
//! estimate, sign (through the guard for an operator key, through the plain backend for the
//! owner key), send, wait for the receipt.
//!
//! ```text
//! AdminTx { to, value, input } ─> estimate (revert → Reverted with the decoded custom error,
//!                                 nothing signed)
//!   ─> nonce = pending count of the sender ─> fees per the chain's FeePolicy
//!   ─> sign (Guard | owner backend) ─> eth_sendRawTransaction
//!   ─> receipt (bounded wait); "nonce too low" or a nonce taken by another tx of the same
//!      account (the running agent votes from it too) ─> rebuilt with the next nonce
//! ```
//!
//! The tx manager's queue is not used (it runs for the agent's votes, and these are one-off
//! calls whose sender may be the owner or a key the agent does not hold yet), but its parts
//! are: fees ([`Fees`]), the transaction built from them ([`TxFields`]) and what a node's
//! refusal means ([`SendRejection`]), so a CLI call and a vote are built and judged alike.

use crate::chain::{BlockTag, ChainClient, ChainError};
use crate::config::FeePolicy;
use crate::contracts::Bridge;
use crate::txmgr::{Fees, GuardedSigner, SendRejection, TxFields};
use alloy::consensus::{SignableTransaction, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolInterface;
use bridge_signer::Signer;
use std::time::{Duration, Instant};

/// Gas for a plain coin transfer.
pub const TRANSFER_GAS: u64 = 21_000;
/// Attempts after a node said the nonce was taken.
const MAX_NONCE_RETRIES: u32 = 8;
/// Longest wait for one receipt.
const RECEIPT_WAIT: Duration = Duration::from_secs(120);

/// What signs.
pub enum TxSigner<'a> {
    /// An operator key, through its guard (policy + journal).
    Guarded(&'a GuardedSigner),
    /// The owner key, through its backend (never a raw key).
    Plain(&'a dyn Signer),
}

impl TxSigner<'_> {
    pub fn address(&self) -> Address {
        match self {
            Self::Guarded(g) => g.signer().address(),
            Self::Plain(s) => s.address(),
        }
    }

    async fn sign(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> Result<Signature, AdminTxError> {
        match self {
            Self::Guarded(g) => g
                .sign_transaction(tx)
                .await
                .map_err(|e| AdminTxError::Sign(e.to_string())),
            Self::Plain(s) => s
                .sign_hash(&tx.signature_hash())
                .await
                .map_err(|e| AdminTxError::Sign(e.to_string())),
        }
    }
}

/// One call or transfer.
#[derive(Debug, Clone)]
pub struct AdminTx {
    pub to: Address,
    pub value: U256,
    pub input: Bytes,
    /// What it does, for the progress lines (`proposeOperatorKey(0x…)`).
    pub what: String,
}

/// A mined, successful transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    pub tx_hash: B256,
    pub block: u64,
    pub gas_used: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminTxError {
    #[error("{what}: {source}")]
    Chain {
        what: String,
        #[source]
        source: ChainError,
    },
    #[error("{what} would revert: {reason} (nothing was sent)")]
    WouldRevert { what: String, reason: String },
    #[error("{what} reverted in tx {tx_hash}: {reason}")]
    Reverted {
        what: String,
        tx_hash: B256,
        reason: String,
    },
    #[error("signing refused or failed: {0}")]
    Sign(String),
    #[error("{what}: no receipt for {tx_hash} after {secs} s")]
    NoReceipt {
        what: String,
        tx_hash: B256,
        secs: u64,
    },
    #[error("{what}: the sender's nonce kept being taken by other transactions")]
    NonceChurn { what: String },
}

/// Decodes revert data as the bridge's custom errors, else shows it in hex.
pub fn revert_reason(data: Option<&Bytes>) -> String {
    match data {
        None => "no revert data".into(),
        Some(d) => match Bridge::BridgeErrors::abi_decode(d) {
            Ok(e) => format!("{e:?}"),
            Err(_) => match alloy::sol_types::decode_revert_reason(d) {
                Some(r) => r,
                None => format!("revert data {d}"),
            },
        },
    }
}

/// Gas limit for `tx` from `from` (with margin), or why it would revert.
pub async fn estimate(
    client: &ChainClient,
    from: Address,
    tx: &AdminTx,
) -> Result<u64, AdminTxError> {
    if tx.input.is_empty() {
        return Ok(TRANSFER_GAS);
    }
    let req = TransactionRequest::default()
        .with_from(from)
        .with_to(tx.to)
        .with_value(tx.value)
        .with_input(tx.input.clone());
    match client.estimate_gas(req).await {
        Ok(gas) => Ok(gas + gas / 4 + 50_000),
        Err(e) => match e.revert_data() {
            Some(d) => Err(AdminTxError::WouldRevert {
                what: tx.what.clone(),
                reason: revert_reason(Some(d)),
            }),
            None => Err(AdminTxError::Chain {
                what: format!("estimating {}", tx.what),
                source: e,
            }),
        },
    }
}

/// The most `gas` units cost with the chain's fee policy now.
pub async fn max_cost(
    client: &ChainClient,
    fees: &FeePolicy,
    gas: u64,
) -> Result<U256, ChainError> {
    let f = Fees::initial(fees, client).await?;
    Ok(U256::from(f.max_per_gas()) * U256::from(gas))
}

/// Estimates, signs, sends and waits for `tx`; a revert is an error naming the custom error.
pub async fn send(
    client: &ChainClient,
    fees: &FeePolicy,
    signer: &TxSigner<'_>,
    tx: &AdminTx,
) -> Result<Mined, AdminTxError> {
    let from = signer.address();
    let chain_err = |what: &str| {
        let what = format!("{what} ({})", tx.what);
        move |source| AdminTxError::Chain { what, source }
    };
    let gas = estimate(client, from, tx).await?;
    for _ in 0..MAX_NONCE_RETRIES {
        let nonce = client
            .transaction_count(from, BlockTag::Pending)
            .await
            .map_err(chain_err("reading the sender's nonce"))?;
        let fee = Fees::initial(fees, client)
            .await
            .map_err(chain_err("reading fees"))?;
        let envelope = sign(client.chain_id(), signer, tx, nonce, gas, fee).await?;
        let hash = *envelope.tx_hash();
        if let Err(e) = client.send_raw_transaction(&envelope.encoded_2718()).await {
            match SendRejection::of(&e) {
                // Another transaction of this account (the agent votes from it too) holds
                // the nonce, mined or pending: build again with the next one.
                SendRejection::NonceTooLow | SendRejection::Underpriced => {
                    tracing::debug!(nonce, error = %e, "nonce taken; rebuilding");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                // A first attempt that timed out reached the node: wait for it.
                SendRejection::AlreadyKnown => {}
                SendRejection::NonceTooHigh | SendRejection::Other => {
                    return Err(AdminTxError::Chain {
                        what: format!("sending {}", tx.what),
                        source: e,
                    });
                }
            }
        }
        match wait_receipt(client, from, nonce, hash, &tx.what).await? {
            Some(m) => return Ok(m),
            None => continue, // another tx of this account took the nonce
        }
    }
    Err(AdminTxError::NonceChurn {
        what: tx.what.clone(),
    })
}

async fn sign(
    chain_id: u64,
    signer: &TxSigner<'_>,
    tx: &AdminTx,
    nonce: u64,
    gas: u64,
    fees: Fees,
) -> Result<TxEnvelope, AdminTxError> {
    let mut unsigned = TxFields {
        chain_id,
        nonce,
        gas_limit: gas,
        fees,
        to: tx.to,
        value: tx.value,
        input: tx.input.clone(),
    }
    .unsigned();
    let signature = signer.sign(unsigned.signable()).await?;
    Ok(unsigned.into_signed(signature))
}

/// `Some` when mined successfully, `None` when the nonce went to another transaction.
async fn wait_receipt(
    client: &ChainClient,
    from: Address,
    nonce: u64,
    hash: B256,
    what: &str,
) -> Result<Option<Mined>, AdminTxError> {
    let start = Instant::now();
    loop {
        match client.transaction_receipt(hash).await {
            Ok(Some(r)) => {
                let block = r.block_number.unwrap_or_default();
                if r.status() {
                    return Ok(Some(Mined {
                        tx_hash: hash,
                        block,
                        gas_used: r.gas_used,
                    }));
                }
                return Err(AdminTxError::Reverted {
                    what: what.into(),
                    tx_hash: hash,
                    reason: "see the transaction on a block explorer; the estimate passed".into(),
                });
            }
            Ok(None) => {
                if let Ok(latest) = client.transaction_count(from, BlockTag::Latest).await
                    && latest > nonce
                    && matches!(client.transaction_receipt(hash).await, Ok(None))
                {
                    return Ok(None);
                }
            }
            Err(e) => tracing::debug!(error = %e, "receipt poll failed; retrying"),
        }
        if start.elapsed() > RECEIPT_WAIT {
            return Err(AdminTxError::NoReceipt {
                what: what.into(),
                tx_hash: hash,
                secs: RECEIPT_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
