//! Property tests of the guard's transaction parser and journal (proptest: cargo-fuzz needs a
//! nightly toolchain, and CI has stable only).
//!
//! - arbitrary calldata, and valid calls mutated (truncated, extended, bytes overwritten): the
//!   parser never panics, and whatever it accepts is the canonical ABI encoding of the call it
//!   reports, with the nonce the journal will key it under;
//! - valid calls with arbitrary arguments are accepted, with the right function and nonce;
//! - the policy fields: a vote is accepted exactly when chain id, `to` and value are right;
//! - random sequences of votes, re-sends, conflicting votes and restarts (journal reopened):
//!   never two different votes signed for one nonce.
//!
//! Cases per property: `PROPTEST_CASES` (default 256; 32 for the journal sequences, which
//! fsync). Longer run: `PROPTEST_CASES=20000 cargo test -p bridge-signer --test proptest_guard`.

mod common;

use std::collections::HashMap;

use alloy::sol;
use alloy::sol_types::{SolCall, SolValue};
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use bridge_signer::guard::{AllowedCall, Journal, Namespace};
use bridge_signer::{Guard, GuardError, Refused};
use common::LocalKey;
use proptest::prelude::*;

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

const CHAIN: u64 = 1001;
const BRIDGE: Address = Address::repeat_byte(0xb1);

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tx(chain_id: u64, to: Address, value: U256, input: Bytes) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce: 0,
        gas_limit: 300_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input,
    }
}

/// One guard for the policy properties (they never touch its journal; opening a journal per
/// case would dominate the run time).
fn policy_guard() -> &'static Guard<LocalKey> {
    static GUARD: std::sync::OnceLock<(Guard<LocalKey>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    &GUARD
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let journal = Journal::open(dir.path().join("votes.sqlite")).unwrap();
            (Guard::new(LocalKey::new(5), CHAIN, BRIDGE, journal), dir)
        })
        .0
}

/// One allowed call, its canonical encoding, and what the parser must report for it.
#[derive(Debug, Clone)]
struct Call {
    input: Vec<u8>,
    expected: AllowedCall,
}

fn vote(function: &'static str, namespace: Namespace, nonce: u64, input: Vec<u8>) -> Call {
    Call {
        input,
        expected: AllowedCall::Vote {
            function,
            namespace,
            nonce,
        },
    }
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

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

/// Every call the guard allows, with arbitrary arguments.
fn allowed_call() -> impl Strategy<Value = Call> {
    let hash = any::<[u8; 32]>().prop_map(B256::from);
    prop_oneof![
        (
            hash.clone(),
            address(),
            address(),
            word(),
            any::<u64>(),
            any::<u64>(),
            bytes()
        )
            .prop_map(|(h, from, to, value, nonce, block, extra)| vote(
                "handleKLAYTransfer",
                Namespace::Request,
                nonce,
                handleKLAYTransferCall {
                    requestTxHash: h,
                    from,
                    to,
                    value,
                    requestedNonce: nonce,
                    requestedBlockNumber: block,
                    extraData: extra,
                }
                .abi_encode()
            )),
        (
            hash.clone(),
            address(),
            address(),
            address(),
            word(),
            any::<u64>(),
            any::<u64>(),
            bytes()
        )
            .prop_map(|(h, from, to, token, value, nonce, block, extra)| vote(
                "handleERC20Transfer",
                Namespace::Request,
                nonce,
                handleERC20TransferCall {
                    requestTxHash: h,
                    from,
                    to,
                    tokenAddress: token,
                    value,
                    requestedNonce: nonce,
                    requestedBlockNumber: block,
                    extraData: extra,
                }
                .abi_encode()
            )),
        (
            hash,
            (address(), address(), address()),
            word(),
            any::<u64>(),
            any::<u64>(),
            ".{0,80}",
            bytes()
        )
            .prop_map(|(h, (from, to, token), id, nonce, block, uri, extra)| vote(
                "handleERC721Transfer",
                Namespace::Request,
                nonce,
                handleERC721TransferCall {
                    requestTxHash: h,
                    from,
                    to,
                    tokenAddress: token,
                    tokenId: id,
                    requestedNonce: nonce,
                    requestedBlockNumber: block,
                    tokenURI: uri,
                    extraData: extra,
                }
                .abi_encode()
            )),
        (address(), address(), any::<u64>()).prop_map(|(old, new, nonce)| vote(
            "replaceOperator",
            Namespace::Config,
            nonce,
            replaceOperatorCall {
                oldOperator: old,
                newOperator: new,
                nonce,
            }
            .abi_encode()
        )),
        (word(), any::<u64>()).prop_map(|(fee, nonce)| vote(
            "setKLAYFee",
            Namespace::Config,
            nonce,
            setKLAYFeeCall {
                fee,
                requestNonce: nonce,
            }
            .abi_encode()
        )),
        (address(), word(), any::<u64>()).prop_map(|(token, fee, nonce)| vote(
            "setERC20Fee",
            Namespace::Config,
            nonce,
            setERC20FeeCall {
                token,
                fee,
                requestNonce: nonce,
            }
            .abi_encode()
        )),
        address().prop_map(|a| Call {
            input: proposeOperatorKeyCall { newOperator: a }.abi_encode(),
            expected: AllowedCall::KeyRotation {
                function: "proposeOperatorKey"
            },
        }),
        address().prop_map(|a| Call {
            input: acceptOperatorKeyCall { oldOperator: a }.abi_encode(),
            expected: AllowedCall::KeyRotation {
                function: "acceptOperatorKey"
            },
        }),
    ]
}

/// What a guard without a rotation permit (the running agent's) answers for a valid call:
/// votes pass; key-rotation calls are signed only by `keys rotate`, under a permit.
fn permitted(call: &Call) -> Result<AllowedCall, Refused> {
    match call.expected {
        AllowedCall::KeyRotation { function } => Err(Refused::RotationNotPermitted { function }),
        vote => Ok(vote),
    }
}

/// The canonical encoding of the call `input` decodes to as `function`, if it decodes.
fn reencoded(function: &str, input: &[u8]) -> Option<Vec<u8>> {
    fn re<C: SolCall>(input: &[u8]) -> Option<Vec<u8>> {
        C::abi_decode(input).ok().map(|c| c.abi_encode())
    }
    match function {
        "handleKLAYTransfer" => re::<handleKLAYTransferCall>(input),
        "handleERC20Transfer" => re::<handleERC20TransferCall>(input),
        // The URI is bytes (a non-UTF-8 URI is a vote too): re-encode it as bytes, not text.
        "handleERC721Transfer" => {
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
            let args = Args::abi_decode_params(input.get(4..)?).ok()?;
            Some([&input[..4], &args.abi_encode_params()[..]].concat())
        }
        "replaceOperator" => re::<replaceOperatorCall>(input),
        "setKLAYFee" => re::<setKLAYFeeCall>(input),
        "setERC20Fee" => re::<setERC20FeeCall>(input),
        "proposeOperatorKey" => re::<proposeOperatorKeyCall>(input),
        "acceptOperatorKey" => re::<acceptOperatorKeyCall>(input),
        _ => None,
    }
}

/// A change to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Append(Vec<u8>),
    Overwrite(usize, u8),
    /// Set one whole 32-byte argument word (offsets, lengths, padding) to a value.
    Word(usize, U256),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..70).prop_map(Mutation::Append),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (any::<usize>(), word()).prop_map(|(i, w)| Mutation::Word(i, w)),
    ]
}

fn mutate(mut input: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Truncate(at) => input.truncate(at % (input.len() + 1)),
        Mutation::Append(extra) => input.extend_from_slice(extra),
        Mutation::Overwrite(i, b) if !input.is_empty() => {
            let i = i % input.len();
            input[i] = *b;
        }
        Mutation::Word(i, w) if input.len() >= 36 => {
            let words = (input.len() - 4) / 32;
            let at = 4 + (i % words) * 32;
            input[at..at + 32].copy_from_slice(&w.to_be_bytes::<32>());
        }
        _ => {}
    }
    input
}

/// Whatever the parser accepts is canonical, and its nonce is the one in the arguments.
fn check_parse(guard: &Guard<LocalKey>, input: Vec<u8>) -> Result<(), TestCaseError> {
    let t = tx(CHAIN, BRIDGE, U256::ZERO, input.clone().into());
    let Ok(allowed) = guard.check_policy(&t) else {
        return Ok(());
    };
    let canonical = reencoded(allowed.function(), &input);
    prop_assert_eq!(
        canonical.as_deref(),
        Some(&input[..]),
        "accepted a non-canonical encoding of {}",
        allowed.function()
    );
    // Deterministic: the same bytes always give the same call and nonce.
    prop_assert_eq!(guard.check_policy(&t), Ok(allowed));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_calldata_never_panics(
        selector in prop_oneof![
            Just(handleKLAYTransferCall::SELECTOR),
            Just(handleERC20TransferCall::SELECTOR),
            Just(handleERC721TransferCall::SELECTOR),
            Just(replaceOperatorCall::SELECTOR),
            Just(setKLAYFeeCall::SELECTOR),
            Just(setERC20FeeCall::SELECTOR),
            Just(proposeOperatorKeyCall::SELECTOR),
            Just(acceptOperatorKeyCall::SELECTOR),
            any::<[u8; 4]>(),
        ],
        tail in prop::collection::vec(any::<u8>(), 0..400),
        raw in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let guard = policy_guard();
        check_parse(guard, raw)?;
        let mut input = selector.to_vec();
        input.extend_from_slice(&tail);
        check_parse(guard, input)?;
    }

    #[test]
    fn valid_calls_are_accepted_with_their_nonce(call in allowed_call()) {
        let guard = policy_guard();
        let t = tx(CHAIN, BRIDGE, U256::ZERO, call.input.clone().into());
        prop_assert_eq!(guard.check_policy(&t), permitted(&call));
    }

    #[test]
    fn mutated_calls_are_refused_or_canonical(
        call in allowed_call(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let guard = policy_guard();
        let mut input = call.input.clone();
        for m in &mutations {
            input = mutate(input, m);
        }
        check_parse(guard, input)?;
    }

    #[test]
    fn policy_fields_decide(
        call in allowed_call(),
        chain in prop_oneof![Just(CHAIN), any::<u64>()],
        to in prop_oneof![Just(BRIDGE), address()],
        value in prop_oneof![Just(U256::ZERO), word()],
    ) {
        let guard = policy_guard();
        let t = tx(chain, to, value, call.input.clone().into());
        let got = guard.check_policy(&t);
        let expected: Result<AllowedCall, Refused> = if chain != CHAIN {
            Err(Refused::WrongChain { expected: CHAIN, got: Some(chain) })
        } else if to != BRIDGE {
            Err(Refused::WrongTo { expected: BRIDGE, got: to })
        } else if !value.is_zero() {
            Err(Refused::NonZeroValue(value))
        } else {
            permitted(&call)
        };
        prop_assert_eq!(got, expected);
    }
}

/// One step of a journal sequence.
#[derive(Debug, Clone)]
enum Step {
    /// Sign a vote: request or config namespace, a nonce from a small range (so collisions
    /// happen), and one of a few variants (different variants are conflicting votes).
    Vote {
        config: bool,
        nonce: u64,
        variant: u64,
    },
    /// Drop the guard and open the journal again, as after a restart.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<bool>(), 0..4u64, 0..3u64)
            .prop_map(|(config, nonce, variant)| Step::Vote { config, nonce, variant }),
        1 => Just(Step::Restart),
    ]
}

fn vote_input(config: bool, nonce: u64, variant: u64) -> Bytes {
    if config {
        setKLAYFeeCall {
            fee: U256::from(variant),
            requestNonce: nonce,
        }
        .abi_encode()
        .into()
    } else {
        handleKLAYTransferCall {
            requestTxHash: B256::repeat_byte(0x11),
            from: Address::repeat_byte(0x22),
            to: Address::repeat_byte(0x33),
            value: U256::from(1000 + variant),
            requestedNonce: nonce,
            requestedBlockNumber: 7,
            extraData: Bytes::new(),
        }
        .abi_encode()
        .into()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(32), ..ProptestConfig::default() })]

    /// The journal's promise, across restarts: per (namespace, nonce), the first vote signed
    /// is the only one ever signed; the same vote again is a re-send; any other is refused.
    #[test]
    fn never_two_different_votes_for_one_nonce(steps in prop::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.sqlite");
        let open = || Guard::new(LocalKey::new(7), CHAIN, BRIDGE, Journal::open(&path).unwrap());
        let mut guard = open();
        // (config?, nonce) -> the vote hash signed first.
        let mut first: HashMap<(bool, u64), B256> = HashMap::new();
        let mut signed: HashMap<(bool, u64), Vec<B256>> = HashMap::new();
        for s in &steps {
            let (config, nonce, variant) = match *s {
                Step::Restart => {
                    drop(guard);
                    guard = open();
                    continue;
                }
                Step::Vote { config, nonce, variant } => (config, nonce, variant),
            };
            let input = vote_input(config, nonce, variant);
            let hash = keccak256(&input);
            let mut t = tx(CHAIN, BRIDGE, U256::ZERO, input);
            let got = rt.block_on(guard.sign_transaction(&mut t));
            let ok = got.is_ok();
            match first.get(&(config, nonce)) {
                None => {
                    prop_assert!(got.is_ok(), "first vote refused: {:?}", got);
                    first.insert((config, nonce), hash);
                }
                Some(h) if *h == hash => prop_assert!(got.is_ok(), "re-send refused: {:?}", got),
                Some(h) => match got {
                    Err(GuardError::Refused(Refused::ConflictingVote { recorded, attempted, .. })) => {
                        prop_assert_eq!(recorded, *h);
                        prop_assert_eq!(attempted, hash);
                    }
                    other => prop_assert!(false, "conflicting vote not refused: {:?}", other),
                },
            }
            if ok {
                signed.entry((config, nonce)).or_default().push(hash);
            }
        }
        for (key, hashes) in &signed {
            prop_assert!(hashes.iter().all(|h| h == &hashes[0]), "two votes signed for {:?}", key);
        }
    }
}
