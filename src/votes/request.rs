//! Request events, decoded from a source bridge's logs.
//!
//! Both request events (`RequestValueTransfer` and, for ERC-721 with its URI,
//! `RequestValueTransferEncoded` with encodingVer 2) become one [`Request`]. A log that does not
//! decode is an error naming the log and what is wrong; callers skip it, log it and count it.

use crate::contracts::{Bridge, ENCODING_VER_ERC721_URI, TokenType};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::{SolEvent, SolValue};

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
            if e.encodingVer != ENCODING_VER_ERC721_URI {
                return Err(bad(format!("unsupported encodingVer {}", e.encodingVer)));
            }
            // Strictly: `abi.encode(string)` exactly, and UTF-8. A lossy decode would mint
            // the token with a URI its owner never had.
            let raw =
                Bytes::abi_decode(&e.encodedData).map_err(|e| bad(format!("token URI: {e}")))?;
            if raw.abi_encode() != e.encodedData.as_ref() {
                return Err(bad("token URI: not the canonical abi.encode(string)".into()));
            }
            let uri = String::from_utf8(raw.to_vec())
                .map_err(|e| bad(format!("token URI is not UTF-8: {e}")))?;
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
        _ => Err(bad("not a request event".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{LogData, address, b256};

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
        let r = decode_request(&rpc_log(encoded(2, uri.abi_encode().into()))).unwrap();
        assert_eq!(r.token_type, TokenType::Erc721);
        assert_eq!(r.token_uri, Some(uri));
    }

    /// Malformed logs are errors naming the log and the reason, never panics.
    #[test]
    fn malformed_logs_are_named_errors() {
        let reason = |log: Log| decode_request(&log).unwrap_err().reason;
        assert_eq!(reason(rpc_log(native(7))), "unknown token type 7");
        assert_eq!(
            reason(rpc_log(encoded(3, Bytes::new()))),
            "unsupported encodingVer 3"
        );
        assert!(
            reason(rpc_log(encoded(2, Bytes::from_static(&[1, 2, 3])))).starts_with("token URI")
        );
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
        // Also found there: a token URI that is not UTF-8 was decoded lossily (U+FFFD).
        let not_utf8 = Bytes::from_static(b"\xff\xfe").abi_encode();
        assert!(reason(rpc_log(encoded(2, not_utf8.into()))).starts_with("token URI is not UTF-8"));
        let other = LogData::new_unchecked(vec![B256::repeat_byte(9)], Bytes::new());
        assert_eq!(reason(rpc_log(other)), "not a request event");
        let mut pending = rpc_log(native(0));
        pending.block_number = None;
        let err = decode_request(&pending).unwrap_err();
        assert_eq!((err.tx_hash, err.log_index), (TX, 3));
        assert!(err.to_string().contains("no block number"));
    }
}
