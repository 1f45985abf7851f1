//! What the guard lets through: the bridge's handle functions and the few named admin calls an
//! operator makes, each decoded strictly to find the nonce its vote is journalled under.

use alloy_sol_types::{SolCall, sol};

use super::Refused;

sol! {
    function handleKLAYTransfer(bytes32 requestTxHash, address from, address to, uint256 value, uint64 requestedNonce, uint64 requestedBlockNumber, bytes extraData);
    function handleERC20Transfer(bytes32 requestTxHash, address from, address to, address tokenAddress, uint256 value, uint64 requestedNonce, uint64 requestedBlockNumber, bytes extraData);
    function handleERC721Transfer(bytes32 requestTxHash, address from, address to, address tokenAddress, uint256 tokenId, uint64 requestedNonce, uint64 requestedBlockNumber, string tokenURI, bytes extraData);
    function proposeOperatorKey(address newOperator);
    function acceptOperatorKey(address oldOperator);
    function replaceOperator(address oldOperator, address newOperator, uint64 nonce);
    function setKLAYFee(uint256 fee, uint64 requestNonce);
    function setERC20Fee(address token, uint256 fee, uint64 requestNonce);
}

/// The journal namespace a vote's nonce belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Value-transfer handles, keyed by the source bridge's request nonce.
    Request,
    /// Configuration votes (replace operator, fees), keyed by their configuration nonce.
    Config,
}

impl Namespace {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Config => "config",
        }
    }
}

/// A call the guard accepts, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedCall {
    /// A vote: journalled under `(namespace, nonce)`.
    Vote {
        /// Solidity function name.
        function: &'static str,
        /// Journal namespace.
        namespace: Namespace,
        /// Request or configuration nonce.
        nonce: u64,
    },
    /// Two-step key rotation (`proposeOperatorKey`, `acceptOperatorKey`): not a vote, not
    /// journalled; the contract only accepts it from the current or proposed key.
    KeyRotation {
        /// Solidity function name.
        function: &'static str,
    },
}

impl AllowedCall {
    /// Solidity function name.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Vote { function, .. } | Self::KeyRotation { function } => function,
        }
    }
}

/// Decodes `input` strictly (canonical ABI encoding only).
pub fn decode(input: &[u8]) -> Result<AllowedCall, Refused> {
    let Some(selector) = input.get(..4) else {
        return Err(Refused::NoSelector);
    };
    let selector: [u8; 4] = selector.try_into().map_err(|_| Refused::NoSelector)?;
    fn vote<C: SolCall>(
        input: &[u8],
        namespace: Namespace,
        nonce: impl FnOnce(&C) -> u64,
    ) -> Result<AllowedCall, Refused> {
        let call = C::abi_decode_validate(input).map_err(|e| Refused::MalformedCall {
            function: C::SIGNATURE,
            reason: e.to_string(),
        })?;
        Ok(AllowedCall::Vote {
            function: name_of(C::SIGNATURE),
            namespace,
            nonce: nonce(&call),
        })
    }
    fn rotation<C: SolCall>(input: &[u8]) -> Result<AllowedCall, Refused> {
        C::abi_decode_validate(input).map_err(|e| Refused::MalformedCall {
            function: C::SIGNATURE,
            reason: e.to_string(),
        })?;
        Ok(AllowedCall::KeyRotation {
            function: name_of(C::SIGNATURE),
        })
    }
    match selector {
        handleKLAYTransferCall::SELECTOR => {
            vote::<handleKLAYTransferCall>(input, Namespace::Request, |c| c.requestedNonce)
        }
        handleERC20TransferCall::SELECTOR => {
            vote::<handleERC20TransferCall>(input, Namespace::Request, |c| c.requestedNonce)
        }
        handleERC721TransferCall::SELECTOR => {
            vote::<handleERC721TransferCall>(input, Namespace::Request, |c| c.requestedNonce)
        }
        replaceOperatorCall::SELECTOR => {
            vote::<replaceOperatorCall>(input, Namespace::Config, |c| c.nonce)
        }
        setKLAYFeeCall::SELECTOR => {
            vote::<setKLAYFeeCall>(input, Namespace::Config, |c| c.requestNonce)
        }
        setERC20FeeCall::SELECTOR => {
            vote::<setERC20FeeCall>(input, Namespace::Config, |c| c.requestNonce)
        }
        proposeOperatorKeyCall::SELECTOR => rotation::<proposeOperatorKeyCall>(input),
        acceptOperatorKeyCall::SELECTOR => rotation::<acceptOperatorKeyCall>(input),
        other => Err(Refused::UnknownSelector(other)),
    }
}

fn name_of(signature: &'static str) -> &'static str {
    signature.split('(').next().unwrap_or(signature)
}
