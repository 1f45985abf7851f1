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

/// Decodes `input` strictly: canonical ABI encoding only. The decoder's own validation lets
/// trailing bytes through, so the call must also re-encode to exactly `input` (found by
/// `tests/proptest_guard.rs`): the vote key is `keccak256(calldata)`, and a padded vote would
/// be journaled for its nonce yet never match the other operators' votes.
pub fn decode(input: &[u8]) -> Result<AllowedCall, Refused> {
    let Some(selector) = input.get(..4) else {
        return Err(Refused::NoSelector);
    };
    let selector: [u8; 4] = selector.try_into().map_err(|_| Refused::NoSelector)?;
    fn strict<C: SolCall>(input: &[u8]) -> Result<C, Refused> {
        let call = C::abi_decode_validate(input).map_err(|e| Refused::MalformedCall {
            function: C::SIGNATURE,
            reason: e.to_string(),
        })?;
        if call.abi_encode() != input {
            return Err(Refused::MalformedCall {
                function: C::SIGNATURE,
                reason: "not the canonical ABI encoding (extra or non-zero padding bytes)".into(),
            });
        }
        Ok(call)
    }
    fn vote<C: SolCall>(
        input: &[u8],
        namespace: Namespace,
        nonce: impl FnOnce(&C) -> u64,
    ) -> Result<AllowedCall, Refused> {
        let call = strict::<C>(input)?;
        Ok(AllowedCall::Vote {
            function: name_of(C::SIGNATURE),
            namespace,
            nonce: nonce(&call),
        })
    }
    fn rotation<C: SolCall>(input: &[u8]) -> Result<AllowedCall, Refused> {
        strict::<C>(input)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256, Bytes, U256};

    /// Found by tests/proptest_guard.rs: trailing bytes after a valid call were accepted.
    #[test]
    fn trailing_bytes_are_refused() {
        let call = handleKLAYTransferCall {
            requestTxHash: B256::repeat_byte(1),
            from: Address::repeat_byte(2),
            to: Address::repeat_byte(3),
            value: U256::from(4),
            requestedNonce: 5,
            requestedBlockNumber: 6,
            extraData: Bytes::new(),
        }
        .abi_encode();
        assert!(matches!(
            decode(&call),
            Ok(AllowedCall::Vote { nonce: 5, .. })
        ));
        for extra in [&[0u8][..], &[0; 32], &[5, 126, 186]] {
            let mut padded = call.clone();
            padded.extend_from_slice(extra);
            assert!(
                matches!(decode(&padded), Err(Refused::MalformedCall { ref reason, .. }) if reason.contains("canonical")),
                "{extra:?}"
            );
        }
    }
}
