//! Handle calldata: every honest operator must build byte-identical calldata for a request,
//! because a vote counts for `keccak256(msg.data)`.
//!
//! `handleERC721Transfer`'s `tokenURI` is a `string` in the ABI, but the URI is bytes (Kaia's
//! node votes whatever its rule yields, UTF-8 or not), so that call is encoded by hand with
//! `bytes` in the string's place: the two encode identically (offset, length, zero-padded
//! bytes), so the result is what `abi.encode` would produce for those bytes.

use super::Request;
use crate::contracts::{Bridge, TokenType};
use crate::dialect::Dialect;
use alloy::primitives::{Address, Bytes};
use alloy::sol_types::{SolCall, SolValue};

/// The handle calldata for `req` on a bridge of our dialect ([`handle_calldata_for`]).
pub fn handle_calldata(req: &Request, dest_token: Address) -> Bytes {
    handle_calldata_for(req, dest_token, Dialect::Ours)
}

/// The handle calldata for `req` on the destination bridge, where `dest_token` is the
/// counterpart of `req.token` (ignored for the native coin) and `dialect` the bridges' (it
/// decides how an ERC-721 URI is read: `uri.rs`).
pub fn handle_calldata_for(req: &Request, dest_token: Address, dialect: Dialect) -> Bytes {
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
        TokenType::Erc721 => {
            let uri = req
                .token_uri
                .as_ref()
                .map(|u| u.for_dialect(dialect))
                .unwrap_or_default();
            let args = (
                req.tx_hash,
                req.from,
                req.to,
                dest_token,
                req.value_or_id,
                req.nonce,
                block,
                uri,
                req.extra_data.clone(),
            );
            let mut out = Bridge::handleERC721TransferCall::SELECTOR.to_vec();
            out.extend_from_slice(&args.abi_encode_params());
            out
        }
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::TokenUri;
    use super::super::uri::tests::{double, kaia_reference, uri_of_len};
    use super::*;
    use alloy::primitives::{B256, U256, keccak256};

    fn erc721(token_uri: Option<TokenUri>) -> Request {
        Request {
            tx_hash: B256::repeat_byte(0xaa),
            block_number: 42,
            token_type: TokenType::Erc721,
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            token: Address::repeat_byte(3),
            value_or_id: U256::from(77),
            nonce: 10,
            fee: U256::ZERO,
            extra_data: Bytes::from_static(b"extra"),
            token_uri,
        }
    }

    /// `handleERC721Transfer` calldata assembled word by word, as the ABI specification lays
    /// it out: selector, nine head words (two of them offsets), then each dynamic argument as
    /// its length and its bytes padded with zeros to a multiple of 32.
    fn expected_calldata(req: &Request, dest_token: Address, uri: &[u8]) -> Vec<u8> {
        let sig = "handleERC721Transfer(bytes32,address,address,address,uint256,uint64,uint64,string,bytes)";
        let word = |n: usize| U256::from(n).to_be_bytes::<32>();
        let addr = |a: Address| {
            let mut w = [0u8; 32];
            w[12..].copy_from_slice(a.as_slice());
            w
        };
        let tail = |b: &[u8]| {
            let mut t = word(b.len()).to_vec();
            t.extend_from_slice(b);
            t.resize(32 + b.len().div_ceil(32) * 32, 0);
            t
        };
        let (uri_tail, extra_tail) = (tail(uri), tail(&req.extra_data));
        let mut out = keccak256(sig)[..4].to_vec();
        out.extend_from_slice(req.tx_hash.as_slice());
        out.extend_from_slice(&addr(req.from));
        out.extend_from_slice(&addr(req.to));
        out.extend_from_slice(&addr(dest_token));
        out.extend_from_slice(&req.value_or_id.to_be_bytes::<32>());
        out.extend_from_slice(&word(req.nonce as usize));
        out.extend_from_slice(&word(req.block_number as usize));
        out.extend_from_slice(&word(9 * 32));
        out.extend_from_slice(&word(9 * 32 + uri_tail.len()));
        out.extend_from_slice(&uri_tail);
        out.extend_from_slice(&extra_tail);
        out
    }

    /// Every URI edge: the calldata carries exactly the bytes Kaia's rule yields (the rule
    /// written again in `uri.rs`'s tests), encoded exactly as the ABI lays them out.
    #[test]
    fn erc721_calldata_carries_kaias_uri_byte_for_byte() {
        let dest = Address::repeat_byte(0xc2);
        let mut uris: Vec<Vec<u8>> = [0, 31, 32, 63, 64, 65, 127, 128, 159, 255, 256, 1000]
            .into_iter()
            .map(uri_of_len)
            .collect();
        uris.extend([
            b"ipfs://\xff\xfe\xc3(".to_vec(),
            b"\0\0ipfs://nul-first".to_vec(),
            b"ipfs://nul-last\0".to_vec(),
            b"\0ipfs://both\0\0".to_vec(),
        ]);
        let mut encodings: Vec<(String, Bytes)> = uris
            .iter()
            .map(|u| {
                (
                    format!("{} bytes {:?}", u.len(), &u[..u.len().min(16)]),
                    double(u),
                )
            })
            .collect();
        // A failing tokenURI (empty answer), and data Kaia's node cannot decode at all.
        encodings.push(("failing tokenURI".into(), Bytes::new().abi_encode().into()));
        encodings.push(("undecodable".into(), Bytes::from_static(&[1, 2, 3])));
        for (name, encoded) in encodings {
            let uri = kaia_reference(&encoded);
            let req = erc721(Some(TokenUri::new(2, encoded)));
            for dialect in Dialect::ALL {
                let got = handle_calldata_for(&req, dest, dialect);
                assert_eq!(
                    got.as_ref(),
                    &expected_calldata(&req, dest, &uri)[..],
                    "{name} ({dialect})"
                );
            }
        }
        // No URI data (a plain RequestValueTransfer of an ERC-721): the empty URI.
        let req = erc721(None);
        assert_eq!(
            handle_calldata(&req, dest).as_ref(),
            &expected_calldata(&req, dest, b"")[..]
        );
    }

    /// For a UTF-8 URI the hand encoding is the generated binding's `string` encoding.
    #[test]
    fn utf8_uri_matches_the_string_binding() {
        let dest = Address::repeat_byte(0xc2);
        for n in [0, 1, 32, 33, 159, 1000] {
            let uri = String::from_utf8(uri_of_len(n)).unwrap();
            let req = erc721(Some(TokenUri::new(2, double(uri.as_bytes()))));
            let binding = Bridge::handleERC721TransferCall {
                requestTxHash: req.tx_hash,
                from: req.from,
                to: req.to,
                tokenAddress: dest,
                tokenId: req.value_or_id,
                requestedNonce: req.nonce,
                requestedBlockNumber: req.block_number,
                tokenURI: uri,
                extraData: req.extra_data.clone(),
            }
            .abi_encode();
            assert_eq!(handle_calldata(&req, dest).as_ref(), &binding[..], "{n}");
        }
    }
}
