//! Request events, decoded from a source bridge's logs.
//!
//! Both request events (`RequestValueTransfer` and, for ERC-721 with its URI,
//! `RequestValueTransferEncoded`) become one [`Request`]. A log that does not decode is an error
//! naming the log and what is wrong; callers skip it, log it and count it. The token URI is
//! never such a reason: it is kept as the log carries it ([`TokenUri`]) and read, as bytes, the
//! way Kaia's node reads it (`uri.rs`), down to the empty URI for data that node cannot read.

use super::TokenUri;
use crate::contracts::{Bridge, TokenType};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;

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
    /// The URI data of `RequestValueTransferEncoded` (`None` for `RequestValueTransfer`, whose
    /// ERC-721 handle carries the empty URI, as Kaia's node votes it).
    pub token_uri: Option<TokenUri>,
}

/// Why a log is not a request this agent can vote on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log {tx_hash}#{log_index}: {reason}")]
pub struct DecodeError {
    pub tx_hash: B256,
    pub log_index: u64,
    pub reason: String,
}

/// Decodes one request log; anything malformed is an error naming the log. Only the canonical
/// encoding is accepted (clean padding in topics and data, no extra bytes or topics): the
/// bridge emits nothing else, so anything else did not come from it.
pub fn decode_request(log: &Log) -> Result<Request, DecodeError> {
    let bad = |reason: String| DecodeError {
        tx_hash: log.transaction_hash.unwrap_or_default(),
        log_index: log.log_index.unwrap_or_default(),
        reason,
    };
    let tx_hash = log
        .transaction_hash
        .ok_or_else(|| bad("log has no transaction hash".into()))?;
    let block_number = log
        .block_number
        .ok_or_else(|| bad("log has no block number (pending log?)".into()))?;
    let token_type =
        |t: u8| TokenType::try_from(t).map_err(|t| bad(format!("unknown token type {t}")));
    let canonical = |encoded: alloy::primitives::LogData| {
        if encoded == log.inner.data {
            Ok(())
        } else {
            Err(bad(
                "not the canonical encoding of the event (dirty padding in a topic or \
                     the data, extra bytes or topics)"
                    .into(),
            ))
        }
    };
    match log.topic0() {
        Some(&Bridge::RequestValueTransfer::SIGNATURE_HASH) => {
            let e = log
                .log_decode::<Bridge::RequestValueTransfer>()
                .map_err(|e| bad(e.to_string()))?;
            let e = e.inner.data;
            canonical(e.encode_log_data())?;
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
                .map_err(|e| bad(e.to_string()))?;
            let e = e.inner.data;
            canonical(e.encode_log_data())?;
            let token_type = token_type(e.tokenType)?;
            let uri = TokenUri::new(e.encodingVer, e.encodedData);
            if token_type == TokenType::Erc721
                && let Some(why) = uri.anomaly()
            {
                // Kaia's node votes the empty URI here; so does the agent, or the nonce
                // would never reach its threshold.
                tracing::warn!(
                    tx_hash = %tx_hash, log_index = log.log_index.unwrap_or_default(),
                    nonce = e.requestNonce, problem = %why,
                    "ERC-721 request's token URI data is unreadable: voting the empty URI, as Kaia's node does"
                );
            }
            Ok(Request {
                tx_hash,
                block_number,
                token_type,
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
        _ => Err(bad("not a request event".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use alloy::primitives::{LogData, address, b256};
    use alloy::sol_types::SolValue;

    const TX: B256 = b256!("00000000000000000000000000000000000000000000000000000000000000aa");

    fn rpc_log(data: LogData) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: address!("00000000000000000000000000000000000000b1"),
                data,
            },
            block_number: Some(42),
            transaction_hash: Some(TX),
            log_index: Some(3),
            ..Default::default()
        }
    }

    fn native(token_type: u8) -> LogData {
        Bridge::RequestValueTransfer {
            tokenType: token_type,
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            tokenAddress: Address::ZERO,
            valueOrTokenId: U256::from(5),
            requestNonce: 9,
            fee: U256::from(1),
            extraData: Bytes::from_static(b"x"),
        }
        .encode_log_data()
    }

    fn encoded(ver: u8, data: Bytes) -> LogData {
        Bridge::RequestValueTransferEncoded {
            tokenType: 2,
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            tokenAddress: Address::repeat_byte(3),
            valueOrTokenId: U256::from(77),
            requestNonce: 10,
            fee: U256::ZERO,
            extraData: Bytes::new(),
            encodingVer: ver,
            encodedData: data,
        }
        .encode_log_data()
    }

    #[test]
    fn decodes_both_events() {
        let r = decode_request(&rpc_log(native(0))).unwrap();
        assert_eq!(
            (r.tx_hash, r.block_number, r.token_type, r.nonce, r.fee),
            (TX, 42, TokenType::Native, 9, U256::from(1))
        );
        assert_eq!(r.extra_data.as_ref(), b"x");
        let uri = "ipfs://token/77".to_string();
        let double: Bytes = uri.abi_encode().abi_encode().into();
        let r = decode_request(&rpc_log(encoded(2, double.clone()))).unwrap();
        assert_eq!(r.token_type, TokenType::Erc721);
        assert_eq!(r.token_uri, Some(TokenUri::new(2, double)));
        let uri_bytes = r.token_uri.unwrap().for_dialect(Dialect::Kaia);
        assert_eq!(uri_bytes.as_ref(), uri.as_bytes());
    }

    /// URI data is never a reason to refuse a request: what Kaia's node cannot read (another
    /// encodingVer, data that does not decode) it votes with the empty URI, and so does this;
    /// bytes that are not UTF-8 are a URI like any other.
    #[test]
    fn uri_data_never_refuses_a_request() {
        let not_utf8: Bytes = Bytes::from_static(b"\xff\xfe")
            .abi_encode()
            .abi_encode()
            .into();
        let cases = [
            (3, double_of(b"ipfs://x"), &b""[..]),
            (2, Bytes::new(), &b""[..]),
            (2, Bytes::from_static(&[1, 2, 3]), &b""[..]),
            (2, not_utf8, &b"\xff\xfe"[..]),
        ];
        for (ver, data, uri) in cases {
            let r = decode_request(&rpc_log(encoded(ver, data.clone()))).unwrap();
            let t = r.token_uri.unwrap();
            assert_eq!(t, TokenUri::new(ver, data));
            assert_eq!(t.for_dialect(Dialect::Kaia).as_ref(), uri);
            assert_eq!(t.for_dialect(Dialect::Ours).as_ref(), uri);
        }
    }

    fn double_of(uri: &[u8]) -> Bytes {
        Bytes::copy_from_slice(uri).abi_encode().abi_encode().into()
    }

    /// Malformed logs are errors naming the log and the reason, never panics.
    #[test]
    fn malformed_logs_are_named_errors() {
        let reason = |log: Log| decode_request(&log).unwrap_err().reason;
        assert_eq!(reason(rpc_log(native(7))), "unknown token type 7");
        let mut truncated = native(0);
        let data = truncated.data[..40].to_vec();
        truncated = LogData::new_unchecked(truncated.topics().to_vec(), data.into());
        assert!(!reason(rpc_log(truncated)).is_empty());
        // Found by tests/proptest_decode.rs: an address topic with dirty high bytes decoded
        // (truncated) instead of being refused.
        let mut dirty = native(0);
        let mut topics = dirty.topics().to_vec();
        topics[1].0[0] = 0x59;
        dirty = LogData::new_unchecked(topics, dirty.data.clone());
        assert!(reason(rpc_log(dirty)).starts_with("not the canonical encoding"));
        let mut padded = native(0);
        let mut data = padded.data.to_vec();
        data.extend_from_slice(&[0; 32]);
        padded = LogData::new_unchecked(padded.topics().to_vec(), data.into());
        assert!(reason(rpc_log(padded)).starts_with("not the canonical encoding"));
        let other = LogData::new_unchecked(vec![B256::repeat_byte(9)], Bytes::new());
        assert_eq!(reason(rpc_log(other)), "not a request event");
        let mut pending = rpc_log(native(0));
        pending.block_number = None;
        let err = decode_request(&pending).unwrap_err();
        assert_eq!((err.tx_hash, err.log_index), (TX, 3));
        assert!(err.to_string().contains("no block number"));
    }
}
