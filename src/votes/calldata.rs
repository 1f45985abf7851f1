//! Handle calldata: every honest operator must build byte-identical calldata for a request,
//! because a vote counts for `keccak256(msg.data)`.

use super::Request;
use crate::contracts::{Bridge, TokenType};
use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolCall;

/// The handle calldata for `req` on the destination bridge, where `dest_token` is the
/// counterpart of `req.token` (ignored for the native coin).
pub fn handle_calldata(req: &Request, dest_token: Address) -> Bytes {
    let block = req.block_number;
    match req.token_type {
        TokenType::Native => Bridge::handleKLAYTransferCall {
            requestTxHash: req.tx_hash,
            from: req.from,
            to: req.to,
            value: req.value_or_id,
            requestedNonce: req.nonce,
            requestedBlockNumber: block,
            extraData: req.extra_data.clone(),
        }
        .abi_encode(),
        TokenType::Erc20 => Bridge::handleERC20TransferCall {
            requestTxHash: req.tx_hash,
            from: req.from,
            to: req.to,
            tokenAddress: dest_token,
            value: req.value_or_id,
            requestedNonce: req.nonce,
            requestedBlockNumber: block,
            extraData: req.extra_data.clone(),
        }
        .abi_encode(),
        TokenType::Erc721 => Bridge::handleERC721TransferCall {
            requestTxHash: req.tx_hash,
            from: req.from,
            to: req.to,
            tokenAddress: dest_token,
            tokenId: req.value_or_id,
            requestedNonce: req.nonce,
            requestedBlockNumber: block,
            tokenURI: req.token_uri.clone().unwrap_or_default(),
            extraData: req.extra_data.clone(),
        }
        .abi_encode(),
    }
    .into()
}
