//! Property tests of request-log decoding (proptest: cargo-fuzz needs a nightly toolchain, and
//! CI has stable only).
//!
//! - arbitrary topics and data: `decode_request` never panics; a log it accepts is consistent
//!   (indexed topics are the decoded addresses, the nonce and token type are in range);
//! - request events with arbitrary field values decode to exactly those values;
//! - valid events mutated (truncated, extended, bytes or whole words overwritten): never a
//!   panic, and an accepted log is still consistent;
//! - and end to end: the handle calldata built from any accepted log passes the signing
//!   guard's parser, which journals it under the request's nonce. An agent can never build a
//!   vote its own guard refuses, nor one journaled under another nonce;
//! - ERC-721 URIs: random URI bytes (any length, not UTF-8, NULs anywhere), encoded twice as
//!   Kaia's bridge does, and random `encodedData` outright: the request always decodes, and its
//!   handle call carries exactly the URI Kaia's rule gives (written again below from the facts
//!   file), on both dialects for the double encoding.
//!
//! Cases per property: `PROPTEST_CASES` (default 256). Longer run:
//! `PROPTEST_CASES=20000 cargo test --test proptest_decode`.

#![forbid(unsafe_code)]

use alloy::primitives::{Address, B256, Bytes, LogData, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::{SolEvent, SolValue};
use async_trait::async_trait;
use bridge_agent::contracts::{Bridge, TokenType};
use bridge_agent::dialect::Dialect;
use bridge_agent::votes::{Request, TokenUri, decode_request, handle_calldata_for};
use bridge_signer::guard::{AllowedCall, Journal, Namespace};
use bridge_signer::{Guard, Signer, SignerError};
use proptest::prelude::*;

const CHAIN: u64 = 31_002;
const BRIDGE: Address = Address::repeat_byte(0xb2);
const TX: B256 = B256::repeat_byte(0xaa);

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A signer that is never asked: these tests only run the guard's policy.
#[derive(Debug)]
struct NeverSigns;

#[async_trait]
impl Signer for NeverSigns {
    fn address(&self) -> Address {
        Address::repeat_byte(0x01)
    }
    async fn sign_hash(&self, _: &B256) -> Result<alloy::primitives::Signature, SignerError> {
        unreachable!("policy checks only")
    }
}

/// One guard for every case (opening a journal per case would dominate the run time).
fn guard() -> &'static Guard<NeverSigns> {
    static GUARD: std::sync::OnceLock<(Guard<NeverSigns>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    &GUARD
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let journal = Journal::open(dir.path().join("j.sqlite")).unwrap();
            (Guard::new(NeverSigns, CHAIN, BRIDGE, journal), dir)
        })
        .0
}

fn rpc_log(data: LogData) -> Log {
    Log {
        inner: alloy::primitives::Log {
            address: Address::repeat_byte(0xb1),
            data,
        },
        block_number: Some(42),
        transaction_hash: Some(TX),
        log_index: Some(3),
        ..Default::default()
    }
}

/// The checks every accepted log must pass, against its own topics and the guard.
fn check_accepted(
    log: &Log,
    req: &Request,
    guard: &Guard<NeverSigns>,
) -> Result<(), TestCaseError> {
    let topics = log.topics();
    prop_assert!(
        topics.len() >= 4,
        "accepted a log with {} topics",
        topics.len()
    );
    prop_assert_eq!(topics[1], req.from.into_word());
    prop_assert_eq!(topics[2], req.to.into_word());
    prop_assert_eq!(topics[3], req.token.into_word());
    prop_assert_eq!((req.tx_hash, req.block_number), (TX, 42));
    prop_assert!(matches!(
        req.token_type,
        TokenType::Native | TokenType::Erc20 | TokenType::Erc721
    ));
    prop_assert_eq!(
        req.token_uri.is_some(),
        topics[0] == Bridge::RequestValueTransferEncoded::SIGNATURE_HASH
    );
    // Canonical: the request re-encodes to exactly the log it came from.
    let token_type = match req.token_type {
        TokenType::Native => 0,
        TokenType::Erc20 => 1,
        TokenType::Erc721 => 2,
    };
    let reencoded = match &req.token_uri {
        None => Bridge::RequestValueTransfer {
            tokenType: token_type,
            from: req.from,
            to: req.to,
            tokenAddress: req.token,
            valueOrTokenId: req.value_or_id,
            requestNonce: req.nonce,
            fee: req.fee,
            extraData: req.extra_data.clone(),
        }
        .encode_log_data(),
        Some(uri) => Bridge::RequestValueTransferEncoded {
            tokenType: token_type,
            from: req.from,
            to: req.to,
            tokenAddress: req.token,
            valueOrTokenId: req.value_or_id,
            requestNonce: req.nonce,
            fee: req.fee,
            extraData: req.extra_data.clone(),
            encodingVer: uri.encoding_ver(),
            encodedData: uri.encoded_data().clone(),
        }
        .encode_log_data(),
    };
    prop_assert_eq!(&reencoded, &log.inner.data, "accepted a non-canonical log");

    for dialect in Dialect::ALL {
        let calldata = handle_calldata_for(req, Address::repeat_byte(0xc2), dialect);
        let tx = alloy::consensus::TxEip1559 {
            chain_id: CHAIN,
            to: alloy::primitives::TxKind::Call(BRIDGE),
            input: calldata,
            gas_limit: 500_000,
            ..Default::default()
        };
        let allowed = guard.check_policy(&tx);
        let function = match req.token_type {
            TokenType::Native => "handleKLAYTransfer",
            TokenType::Erc20 => "handleERC20Transfer",
            TokenType::Erc721 => "handleERC721Transfer",
        };
        prop_assert_eq!(
            allowed,
            Ok(AllowedCall::Vote {
                function,
                namespace: Namespace::Request,
                nonce: req.nonce,
            })
        );
    }
    Ok(())
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn word() -> impl Strategy<Value = U256> {
    prop_oneof![
        any::<u64>().prop_map(U256::from),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A request event with arbitrary fields, and the request it must decode to (if the token type
/// and encoding are ones the agent knows).
fn request_event() -> impl Strategy<Value = (LogData, Option<Request>)> {
    let plain = (
        0u8..4,
        (address(), address(), address()),
        word(),
        any::<u64>(),
        word(),
        bytes(300),
    )
        .prop_map(|(tt, (from, to, token), value, nonce, fee, extra)| {
            let data = Bridge::RequestValueTransfer {
                tokenType: tt,
                from,
                to,
                tokenAddress: token,
                valueOrTokenId: value,
                requestNonce: nonce,
                fee,
                extraData: extra.clone(),
            }
            .encode_log_data();
            let expected = TokenType::try_from(tt).ok().map(|token_type| Request {
                tx_hash: TX,
                block_number: 42,
                token_type,
                from,
                to,
                token,
                value_or_id: value,
                nonce,
                fee,
                extra_data: extra,
                token_uri: None,
            });
            (data, expected)
        });
    let encoded = (
        prop_oneof![Just(2u8), 0u8..4],
        (address(), address(), address()),
        word(),
        any::<u64>(),
        bytes(100),
        prop_oneof![2 => Just(2u8), 1 => any::<u8>()],
        encoded_data(),
    )
        .prop_map(|(tt, (from, to, token), id, nonce, extra, ver, encoded)| {
            let data = Bridge::RequestValueTransferEncoded {
                tokenType: tt,
                from,
                to,
                tokenAddress: token,
                valueOrTokenId: id,
                requestNonce: nonce,
                fee: U256::ZERO,
                extraData: extra.clone(),
                encodingVer: ver,
                encodedData: encoded.clone(),
            }
            .encode_log_data();
            // No URI data and no encodingVer is a reason to refuse: Kaia's node votes them.
            let expected = TokenType::try_from(tt).ok().map(|token_type| Request {
                tx_hash: TX,
                block_number: 42,
                token_type,
                from,
                to,
                token,
                value_or_id: id,
                nonce,
                fee: U256::ZERO,
                extra_data: extra,
                token_uri: Some(TokenUri::new(ver, encoded)),
            });
            (data, expected)
        });
    prop_oneof![plain, encoded]
}

/// URI bytes as a token might answer: any length across the 64-byte edge, any byte, and
/// NULs at either end often.
fn uri_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(0u8..3, 0..3),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(any::<u8>(), 0..70),
            "[a-z:/.0-9]{0,200}".prop_map(String::into_bytes),
        ],
        prop::collection::vec(0u8..3, 0..3),
    )
        .prop_map(|(lead, mid, trail)| {
            let nul = |v: Vec<u8>| v.into_iter().map(|b| if b == 0 { 0 } else { b'x' });
            nul(lead).chain(mid).chain(nul(trail)).collect()
        })
}

/// `abi.encode(string(abi.encode(uri)))`: Kaia's bridge (and ours since issue 13).
fn double(uri: &[u8]) -> Bytes {
    Bytes::copy_from_slice(uri).abi_encode().abi_encode().into()
}

/// `encodedData` as bridges emit it (double; ours before issue 13: single) and as nothing
/// should (raw bytes).
fn encoded_data() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => uri_bytes().prop_map(|u| double(&u)),
        1 => uri_bytes().prop_map(|u| Bytes::from(u).abi_encode().into()),
        1 => bytes(200),
    ]
}

/// Kaia's rule, written from the facts file (independently of `src/votes/uri.rs`): decode
/// `encodedData` once as a string (the offset word, the length word it points at, the bytes
/// after it; no UTF-8 check; anything else: undecodable → ""), ≤ 64 bytes → "", else bytes
/// 64.. with NULs trimmed from both ends.
fn kaia_rule(encoded: &[u8]) -> Vec<u8> {
    let as_index = |w: &[u8]| -> Option<usize> {
        let v = U256::from_be_slice(w);
        (v <= U256::from(u32::MAX)).then(|| v.to::<usize>())
    };
    let inner = (|| {
        let offset = as_index(encoded.get(..32)?)?;
        let length = as_index(encoded.get(offset..offset + 32)?)?;
        encoded.get(offset + 32..offset + 32 + length)
    })();
    match inner {
        Some(s) if s.len() > 64 => {
            let s = &s[64..];
            let start = s.iter().take_while(|&&b| b == 0).count();
            let end = s.len() - s.iter().rev().take_while(|&&b| b == 0).count();
            s[start..end.max(start)].to_vec()
        }
        _ => vec![],
    }
}

/// The `tokenURI` argument of a `handleERC721Transfer` call, as bytes.
fn voted_uri(calldata: &[u8]) -> Bytes {
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
    Args::abi_decode_params(&calldata[4..]).unwrap().7
}

fn erc721_log(encoded: Bytes) -> Log {
    rpc_log(
        Bridge::RequestValueTransferEncoded {
            tokenType: 2,
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            tokenAddress: Address::repeat_byte(3),
            valueOrTokenId: U256::from(7),
            requestNonce: 11,
            fee: U256::ZERO,
            extraData: Bytes::new(),
            encodingVer: 2,
            encodedData: encoded,
        }
        .encode_log_data(),
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Append(Vec<u8>),
    Overwrite(usize, u8),
    Word(usize, U256),
    Topic(usize, B256),
    DropTopic(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..70).prop_map(Mutation::Append),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (any::<usize>(), word()).prop_map(|(i, w)| Mutation::Word(i, w)),
        (any::<usize>(), any::<[u8; 32]>()).prop_map(|(i, t)| Mutation::Topic(i, B256::from(t))),
        any::<usize>().prop_map(Mutation::DropTopic),
    ]
}

fn mutate(log: LogData, m: &Mutation) -> LogData {
    let mut topics = log.topics().to_vec();
    let mut data = log.data.to_vec();
    match m {
        Mutation::Truncate(at) => data.truncate(at % (data.len() + 1)),
        Mutation::Append(extra) => data.extend_from_slice(extra),
        Mutation::Overwrite(i, b) if !data.is_empty() => {
            let i = i % data.len();
            data[i] = *b;
        }
        Mutation::Word(i, w) if data.len() >= 32 => {
            let at = (i % (data.len() / 32)) * 32;
            data[at..at + 32].copy_from_slice(&w.to_be_bytes::<32>());
        }
        Mutation::Topic(i, t) if !topics.is_empty() => {
            // Topic 0 selects the event: leave it, so the decoder's field checks are reached.
            let i = 1 + i % topics.len().max(1);
            if i < topics.len() {
                topics[i] = *t;
            }
        }
        Mutation::DropTopic(i) if topics.len() > 1 => {
            topics.remove(1 + i % (topics.len() - 1));
        }
        _ => {}
    }
    LogData::new_unchecked(topics, data.into())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_logs_never_panic(
        topic0 in prop_oneof![
            Just(Bridge::RequestValueTransfer::SIGNATURE_HASH),
            Just(Bridge::RequestValueTransferEncoded::SIGNATURE_HASH),
            Just(Bridge::HandleValueTransfer::SIGNATURE_HASH),
            any::<[u8; 32]>().prop_map(B256::from),
        ],
        more in prop::collection::vec(any::<[u8; 32]>().prop_map(B256::from), 0..5),
        data in bytes(700),
        no_topics in any::<bool>(),
    ) {
        let guard = guard();
        let mut topics = if no_topics { vec![] } else { vec![topic0] };
        topics.extend(more);
        let log = rpc_log(LogData::new_unchecked(topics, data));
        if let Ok(req) = decode_request(&log) {
            check_accepted(&log, &req, guard)?;
        }
    }

    #[test]
    fn request_events_decode_to_their_fields((data, expected) in request_event()) {
        let guard = guard();
        let log = rpc_log(data);
        match (decode_request(&log), expected) {
            (Ok(req), Some(expected)) => {
                prop_assert_eq!(&req, &expected);
                check_accepted(&log, &req, guard)?;
            }
            (Err(e), None) => prop_assert!(!e.reason.is_empty()),
            (got, expected) => prop_assert!(false, "decoded {:?}, expected {:?}", got, expected),
        }
    }

    /// Any URI, encoded twice: the vote carries Kaia's rule's bytes on either dialect, which
    /// for a URI without NULs at its ends is the URI itself (when longer than 0 bytes).
    #[test]
    fn double_encoded_uris_vote_kaias_uri(uri in uri_bytes()) {
        let guard = guard();
        let encoded = double(&uri);
        let log = erc721_log(encoded.clone());
        let req = decode_request(&log).expect("a URI is never a reason to refuse");
        check_accepted(&log, &req, guard)?;
        let expected = kaia_rule(&encoded);
        let start = uri.iter().take_while(|&&b| b == 0).count();
        let end = uri.len() - uri.iter().rev().take_while(|&&b| b == 0).count();
        prop_assert_eq!(&expected[..], &uri[start..end.max(start)]);
        for dialect in Dialect::ALL {
            let calldata = handle_calldata_for(&req, Address::repeat_byte(0xc2), dialect);
            let voted = voted_uri(&calldata);
            prop_assert_eq!(voted.as_ref(), &expected[..], "{}", dialect);
        }
    }

    /// Any `encodedData` at all: the request decodes, and on a Kaia bridge the vote carries
    /// Kaia's rule's bytes (empty when it does not decode), as Kaia's node votes.
    #[test]
    fn any_encoded_data_votes_kaias_uri_on_kaia(encoded in encoded_data()) {
        let guard = guard();
        let log = erc721_log(encoded.clone());
        let req = decode_request(&log).expect("a URI is never a reason to refuse");
        check_accepted(&log, &req, guard)?;
        let calldata = handle_calldata_for(&req, Address::repeat_byte(0xc2), Dialect::Kaia);
        let (voted, expected) = (voted_uri(&calldata), kaia_rule(&encoded));
        prop_assert_eq!(voted.as_ref(), &expected[..]);
    }

    #[test]
    fn mutated_events_are_refused_or_consistent(
        (data, _) in request_event(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let guard = guard();
        let mut data = data;
        for m in &mutations {
            data = mutate(data, m);
        }
        let log = rpc_log(data);
        match decode_request(&log) {
            Ok(req) => check_accepted(&log, &req, guard)?,
            Err(e) => {
                prop_assert_eq!((e.tx_hash, e.log_index), (TX, 3));
                prop_assert!(!e.reason.is_empty());
            }
        }
    }
}
