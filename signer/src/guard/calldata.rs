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
        handleERC721TransferCall::SELECTOR => erc721_vote(input),
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

/// `handleERC721Transfer`, decoded as strictly as the others but with `bytes` in place of the
/// `string tokenURI` (they encode identically): a URI is bytes, and the agent votes the URI
/// Kaia's node would, UTF-8 or not. Decoding it as `string` refused such a vote, wedging the
/// nonce for every honest operator.
fn erc721_vote(input: &[u8]) -> Result<AllowedCall, Refused> {
    use alloy_primitives::{Address, B256, Bytes, U256};
    use alloy_sol_types::SolValue;
    type Args = (
        B256,
        Address,
        Address,
        Address,
        U256,
        u64,
        u64,
        Bytes,
        Bytes,
    );
    let malformed = |reason: String| Refused::MalformedCall {
        function: handleERC721TransferCall::SIGNATURE,
        reason,
    };
    let body = input.get(4..).unwrap_or_default();
    let args = Args::abi_decode_params_validate(body).map_err(|e| malformed(e.to_string()))?;
    if args.abi_encode_params() != body {
        return Err(malformed(
            "not the canonical ABI encoding (extra or non-zero padding bytes)".into(),
        ));
    }
    Ok(AllowedCall::Vote {
        function: name_of(handleERC721TransferCall::SIGNATURE),
        namespace: Namespace::Request,
        nonce: args.5,
    })
}

fn name_of(signature: &'static str) -> &'static str {
    signature.split('(').next().unwrap_or(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256, Bytes, U256};
    use alloy_sol_types::SolValue;

    /// A token URI that is not UTF-8 is a vote like any other (Kaia's node votes such URIs);
    /// the decode stays strict about everything else.
    #[test]
    fn erc721_uri_is_bytes() {
        let call = |uri: &[u8]| {
            let mut c = handleERC721TransferCall::SELECTOR.to_vec();
            c.extend(
                (
                    B256::repeat_byte(1),
                    Address::repeat_byte(2),
                    Address::repeat_byte(3),
                    Address::repeat_byte(4),
                    U256::from(5),
                    6u64,
                    7u64,
                    Bytes::copy_from_slice(uri),
                    Bytes::from_static(b"x"),
                )
                    .abi_encode_params(),
            );
            c
        };
        for uri in [&b""[..], b"ipfs://a", b"\xff\xfe\x00", &[0x80; 200]] {
            assert_eq!(
                decode(&call(uri)),
                Ok(AllowedCall::Vote {
                    function: "handleERC721Transfer",
                    namespace: Namespace::Request,
                    nonce: 6
                }),
                "{uri:?}"
            );
        }
        // The string binding encodes a UTF-8 URI the same way.
        let binding = handleERC721TransferCall {
            requestTxHash: B256::repeat_byte(1),
            from: Address::repeat_byte(2),
            to: Address::repeat_byte(3),
            tokenAddress: Address::repeat_byte(4),
            tokenId: U256::from(5),
            requestedNonce: 6,
            requestedBlockNumber: 7,
            tokenURI: "ipfs://a".into(),
            extraData: Bytes::from_static(b"x"),
        }
        .abi_encode();
        assert_eq!(binding, call(b"ipfs://a"));
        let mut padded = call(b"\xff");
        padded.push(0);
        assert!(
            matches!(decode(&padded), Err(Refused::MalformedCall { ref reason, .. }) if reason.contains("canonical"))
        );
        let mut dirty = call(b"\xff");
        let last = dirty.len() - 65; // the URI word's last byte: padding after 0xff
        dirty[last] = 1;
        assert!(matches!(decode(&dirty), Err(Refused::MalformedCall { .. })));
        let mut big_nonce = call(b"a");
        big_nonce[4 + 5 * 32 + 10] = 1; // a high byte of the uint64 nonce
        assert!(matches!(
            decode(&big_nonce),
            Err(Refused::MalformedCall { .. })
        ));
    }

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
