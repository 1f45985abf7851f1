//! Helpers for tests that vote by hand with throw-away devnet keys (contract tests, tx manager
//! tests): the vote building blocks of [`bridge_agent::votes`], and the counterpart token read from
//! the *source* bridge's registry (the agent reads the destination's, see `planner::tokens`).
//! Never point these at a chain holding real value.

use super::DevnetError;
use alloy::primitives::Address;
use alloy::providers::DynProvider;
use bridge_agent::contracts::{Bridge, TokenType};
pub use bridge_agent::votes::{
    Request, TokenUri, decode_request, handle_calldata, handle_calldata_for,
};

fn bad(what: &str, reason: impl ToString) -> DevnetError {
    DevnetError::Chain {
        chain: "source".into(),
        what: what.into(),
        reason: reason.to_string(),
    }
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
