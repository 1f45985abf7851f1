//! Votes read from the destination's blocks, for a bridge that emits no `Voted` event (Kaia's).
//!
//! ```text
//! eth_getBlockByNumber(n, full) ─> tx.to == bridge and selector ∈ handle*Transfer
//!   ─> receipt: failed ─> not a vote (a late or refused vote changes nothing)
//!   ─> decode: requestedNonce; vote key = keccak256(input); operator = tx.from
//!   ─> not decodable but successful ─> a vote no honest agent builds (forged, nonce unknown)
//! ```
//!
//! One full block per destination block and one receipt per candidate: bounded per check by
//! [`MAX_BLOCKS`], so a long way behind catches up over several checks.

use super::{AuditError, Vote};
use crate::chain::ChainClient;
use crate::contracts::Bridge;
use alloy::consensus::Transaction as _;
use alloy::network::TransactionResponse as _;
use alloy::primitives::{Address, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::BlockNumberOrTag;
use alloy::sol_types::{SolCall, SolInterface};

/// Destination blocks read per check at most.
pub const MAX_BLOCKS: u64 = 32;

/// A successful handle call whose calldata does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub operator: Address,
    pub tx_hash: alloy::primitives::B256,
}

/// What the blocks `from..=to` hold: the votes, the undecodable handle calls, and the first
/// block not read (less than `to + 1` when a block is not available yet).
pub async fn read(
    dest: &ChainClient,
    bridge: Address,
    from: u64,
    to: u64,
) -> Result<(Vec<Vote>, Vec<Undecodable>, u64), AuditError> {
    let mut votes = Vec::new();
    let mut bad = Vec::new();
    for n in from..=to {
        let block = dest
            .run("eth_getBlockByNumber", move |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(n))
                    .full()
                    .await
            })
            .await?;
        let Some(block) = block else {
            return Ok((votes, bad, n));
        };
        for tx in block.transactions.txns() {
            if tx.to() != Some(bridge) || !is_handle(tx.input()) {
                continue;
            }
            let hash = tx.tx_hash();
            let ok = dest
                .transaction_receipt(hash)
                .await?
                .is_some_and(|r| r.status());
            if !ok {
                continue;
            }
            match requested_nonce(tx.input()) {
                Some(nonce) => votes.push(Vote {
                    nonce,
                    operator: tx.from(),
                    key: keccak256(tx.input()),
                    tx_hash: Some(hash),
                    block: Some(n),
                }),
                None => bad.push(Undecodable {
                    operator: tx.from(),
                    tx_hash: hash,
                }),
            }
        }
    }
    Ok((votes, bad, to + 1))
}

fn is_handle(input: &[u8]) -> bool {
    input.get(..4).is_some_and(|s| {
        [
            Bridge::handleKLAYTransferCall::SELECTOR,
            Bridge::handleERC20TransferCall::SELECTOR,
            Bridge::handleERC721TransferCall::SELECTOR,
        ]
        .iter()
        .any(|h| h.as_slice() == s)
    })
}

/// The request nonce a handle call votes on, if the calldata decodes.
pub fn requested_nonce(input: &[u8]) -> Option<u64> {
    match Bridge::BridgeCalls::abi_decode(input).ok()? {
        Bridge::BridgeCalls::handleKLAYTransfer(c) => Some(c.requestedNonce),
        Bridge::BridgeCalls::handleERC20Transfer(c) => Some(c.requestedNonce),
        Bridge::BridgeCalls::handleERC721Transfer(c) => Some(c.requestedNonce),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, Bytes, U256};

    #[test]
    fn handle_calls_are_recognised_and_their_nonce_read() {
        let call = Bridge::handleKLAYTransferCall {
            requestTxHash: B256::repeat_byte(1),
            from: Address::repeat_byte(2),
            to: Address::repeat_byte(3),
            value: U256::from(4),
            requestedNonce: 77,
            requestedBlockNumber: 5,
            extraData: Bytes::new(),
        }
        .abi_encode();
        assert!(is_handle(&call));
        assert_eq!(requested_nonce(&call), Some(77));
        // Right selector, truncated arguments: a handle, but undecodable.
        assert!(is_handle(&call[..40]));
        assert_eq!(requested_nonce(&call[..40]), None);
        let other = Bridge::requestNonceCall {}.abi_encode();
        assert!(!is_handle(&other));
        assert!(!is_handle(&[0x01]));
    }
}
