//! A stand-in operator for the devnet: reads request events from one bridge and builds the
//! matching handle call for the other, signing with a throw-away anvil key.
//!
//! It exists so that the contracts can be exercised end to end before the real agent (issue
//! #4), which replaces it: the real agent signs through the guarded HSM/KMS signer, waits for
//! confirmations, pre-checks, and recovers. Never point this at a chain holding real value.

use super::DevnetError;
use crate::contracts::{Bridge, TokenType};
pub use crate::votes::{Request, decode_request, handle_calldata};
use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent;

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
    logs.iter()
        .map(|l| decode_request(l).map_err(|e| bad("decode request log", e)))
        .collect()
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
