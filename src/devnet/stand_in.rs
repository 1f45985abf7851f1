//! A stand-in operator for the devnet: reads request events from one bridge and builds the
//! matching handle call for the other, signing with a throw-away anvil key.
//!
//! It exists so that the contracts can be exercised end to end before the real agent (issue
//! #4), which replaces it: the real agent signs through the guarded HSM/KMS signer, waits for
//! confirmations, pre-checks, and recovers. Never point this at a chain holding real value.

use super::DevnetError;
use crate::contracts::{Bridge, ENCODING_VER_ERC721_URI, TokenType};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent, SolValue};

/// One request read from a source bridge's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub tx_hash: B256,
    pub block_number: u64,
    pub token_type: TokenType,
    pub from: Address,
    pub to: Address,
    /// The token on the source chain (zero for the native coin).
    pub token: Address,
    pub value_or_id: U256,
    pub nonce: u64,
    pub fee: U256,
    pub extra_data: Bytes,
    /// The ERC-721 token URI carried by `RequestValueTransferEncoded` (encodingVer 2).
    pub token_uri: Option<String>,
}

fn bad(what: &str, reason: impl ToString) -> DevnetError {
    DevnetError::Chain {
        chain: "source".into(),
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Every request event the bridge emitted in `from_block..=latest`, in log order.
pub async fn requests_since(
    source: &DynProvider,
    bridge: Address,
    from_block: u64,
) -> Result<Vec<Request>, DevnetError> {
    let filter = Filter::new()
        .address(bridge)
        .from_block(from_block)
        .events([
            Bridge::RequestValueTransfer::SIGNATURE,
            Bridge::RequestValueTransferEncoded::SIGNATURE,
        ]);
    let logs = source
        .get_logs(&filter)
        .await
        .map_err(|e| bad("eth_getLogs", e))?;
    logs.iter().map(decode_request).collect()
}

/// Decodes one request log; anything malformed is an error naming the log.
pub fn decode_request(log: &Log) -> Result<Request, DevnetError> {
    let where_ = format!(
        "decode log {}#{}",
        log.transaction_hash.unwrap_or_default(),
        log.log_index.unwrap_or_default()
    );
    let tx_hash = log
        .transaction_hash
        .ok_or_else(|| bad(&where_, "log has no transaction hash"))?;
    let block_number = log
        .block_number
        .ok_or_else(|| bad(&where_, "log has no block number"))?;
    let token_type =
        |t: u8| TokenType::try_from(t).map_err(|t| bad(&where_, format!("unknown token type {t}")));
    match log.topic0() {
        Some(&Bridge::RequestValueTransfer::SIGNATURE_HASH) => {
            let e = log
                .log_decode::<Bridge::RequestValueTransfer>()
                .map_err(|e| bad(&where_, e))?;
            let e = e.inner.data;
            Ok(Request {
                tx_hash,
                block_number,
                token_type: token_type(e.tokenType)?,
                from: e.from,
                to: e.to,
                token: e.tokenAddress,
                value_or_id: e.valueOrTokenId,
                nonce: e.requestNonce,
                fee: e.fee,
                extra_data: e.extraData,
                token_uri: None,
            })
        }
        Some(&Bridge::RequestValueTransferEncoded::SIGNATURE_HASH) => {
            let e = log
                .log_decode::<Bridge::RequestValueTransferEncoded>()
                .map_err(|e| bad(&where_, e))?;
            let e = e.inner.data;
            if e.encodingVer != ENCODING_VER_ERC721_URI {
                return Err(bad(
                    &where_,
                    format!("unsupported encodingVer {}", e.encodingVer),
                ));
            }
            let uri = String::abi_decode(&e.encodedData)
                .map_err(|e| bad(&where_, format!("token URI: {e}")))?;
            Ok(Request {
                tx_hash,
                block_number,
                token_type: token_type(e.tokenType)?,
                from: e.from,
                to: e.to,
                token: e.tokenAddress,
                value_or_id: e.valueOrTokenId,
                nonce: e.requestNonce,
                fee: e.fee,
                extra_data: e.extraData,
                token_uri: Some(uri),
            })
        }
        _ => Err(bad(&where_, "not a request event")),
    }
}

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

/// The destination-chain token for `req`, from the source bridge's registry.
pub async fn counterpart_token(
    source: &DynProvider,
    source_bridge: Address,
    req: &Request,
) -> Result<Address, DevnetError> {
    if req.token_type == TokenType::Native {
        return Ok(Address::ZERO);
    }
    Bridge::new(source_bridge, source)
        .registeredTokens(req.token)
        .call()
        .await
        .map_err(|e| bad("registeredTokens", e))
}

/// Sends one vote (`calldata` to `dest_bridge`) from the provider's wallet and returns the
/// receipt, whatever its status.
pub async fn send_vote(
    dest: &DynProvider,
    dest_bridge: Address,
    calldata: Bytes,
) -> Result<TransactionReceipt, DevnetError> {
    let tx = TransactionRequest::default()
        .to(dest_bridge)
        .input(calldata.into());
    let pending = dest
        .send_transaction(tx)
        .await
        .map_err(|e| bad("send vote", e))?;
    pending
        .get_receipt()
        .await
        .map_err(|e| bad("vote receipt", e))
}
