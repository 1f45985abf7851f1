//! Bindings of the test-only contracts that stand in for Kaia's deployed service-chain bridge
//! (`contracts/src/test/kaia/`, written from `shared/KAIA-FACTS.md`) and the NFT with arbitrary
//! token URIs (`contracts/src/test/UriTestNFT.sol`). The devnet deploys `KaiaStyleBridge` for
//! [`bridge_agent::dialect::Dialect::Kaia`]; tests drive it through [`bridge_agent::contracts::Bridge`]
//! (the agent-facing ABI is the same) or these bindings for what only it has.

// Generated code: the contracts' own functions and events set the argument counts.
#![allow(clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    KaiaStyleBridge,
    "../contracts/artifacts/test/KaiaStyleBridge.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    KaiaStyleToken,
    "../contracts/artifacts/test/KaiaStyleToken.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    KaiaStyleNFT,
    "../contracts/artifacts/test/KaiaStyleNFT.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    RefusingReceiver,
    "../contracts/artifacts/test/RefusingReceiver.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    UriTestNFT,
    "../contracts/artifacts/test/UriTestNFT.json"
);

/// The token URI Kaia's sub-bridge node votes for an ERC-721 request whose `encodedData` is
/// `abi.encode(string(raw))`, `raw` being the bytes the source bridge got back from
/// `tokenURI` (an ABI-encoded string, or empty when the call failed): the decoded inner bytes
/// if longer than 64, from byte 64 on, NULs trimmed at both ends; else empty. Tests use it as
/// the expected URI; it deliberately works on the raw return data, not on a decoded URI.
pub fn kaia_node_uri(raw_token_uri_return: &[u8]) -> Vec<u8> {
    if raw_token_uri_return.len() <= 64 {
        return Vec::new();
    }
    let rest = &raw_token_uri_return[64..];
    let start = rest.iter().position(|b| *b != 0).unwrap_or(rest.len());
    let end = rest.iter().rposition(|b| *b != 0).map_or(start, |i| i + 1);
    rest[start..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::kaia_node_uri;
    use alloy::sol_types::SolValue;

    /// `tokenURI`'s raw return data for `uri`: offset, length, padded bytes.
    fn raw(uri: &[u8]) -> Vec<u8> {
        (alloy::primitives::Bytes::copy_from_slice(uri),).abi_encode_params()
    }

    #[test]
    fn kaia_node_uri_follows_the_rule_for_every_edge() {
        assert_eq!(kaia_node_uri(&[]), b"");
        assert_eq!(kaia_node_uri(&raw(b"")), b"", "64 bytes: empty");
        for len in [
            1usize, 31, 32, 33, 63, 64, 65, 127, 128, 159, 255, 256, 1000,
        ] {
            let uri: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(kaia_node_uri(&raw(&uri)), uri, "length {len}");
        }
        assert_eq!(kaia_node_uri(&raw(b"\0a\0b\0")), b"a\0b");
        assert_eq!(kaia_node_uri(&raw(&[0xff, 0xfe])), [0xff, 0xfe]);
        assert_eq!(kaia_node_uri(&raw(b"\0\0")), b"");
    }
}
