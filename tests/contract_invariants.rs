//! Contract invariants under random operation sequences, against the real bridge pair on the
//! anvil devnet (4 operators, threshold 3 to start).
//!
//! A seeded generator mixes requests (native, ERC-20, ERC-721, both directions), honest and
//! forged votes, late votes, votes from rotated-out keys, two-step key rotations, pauses and
//! threshold changes. A model predicts every outcome; after each step the chains are checked:
//!
//! - **no execution below threshold**: a vote executes exactly when the current seats holding
//!   its vote key reach the current threshold (read back with `voteCount`), never otherwise, and
//!   what executes is the honest calldata;
//! - **no nonce executed twice**: every `HandleValueTransfer` nonce is new, a late vote reverts
//!   with `AlreadyExecuted`, and at the end the bridges' full event logs agree;
//! - **balances cover what is locked**: native balances equal the model's (and cover unclaimed
//!   payouts); the parent's locked ERC-20 equals the child's supply plus what is in flight both
//!   ways; every NFT the parent holds is minted on the child or in flight;
//! - paused bridges refuse requests; `requestNonce`, `lowerHandleNonce`, `upperHandleNonce` and
//!   the operator lists match the model.
//!
//! `BRIDGE_INVARIANT_STEPS` (default 300) sets the length, `BRIDGE_INVARIANT_SEED` replays a run
//! (the seed is printed; a failure shows it).

#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "contracts/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use bridge_agent::contracts::{Bridge, ServiceChainNFT, VOTE_TYPE_VALUE_TRANSFER};
use bridge_devkit::devnet::{Side, seed};
use support::*;

// ---------------------------------------------------------------- a small seeded generator

/// xorshift64*: deterministic, no dependency, plenty for choosing operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum S {
    Parent,
    Child,
}

impl S {
    fn other(self) -> S {
        match self {
            S::Parent => S::Child,
            S::Child => S::Parent,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Native(U256),
    Erc20(U256),
    Erc721(U256),
}

#[derive(Debug, Clone)]
struct Req {
    source: S,
    nonce: u64,
    to: Address,
    kind: Kind,
    /// The handle calldata every honest operator builds.
    honest: Bytes,
    executed: bool,
}

struct Model {
    paused: [bool; 2],
    threshold: [u8; 2],
    /// Current seat keys on each side's bridge, by operator index.
    seats: [Vec<PrivateKeySigner>; 2],
    /// Keys rotated out, per side (they must not vote any more).
    retired: [Vec<PrivateKeySigner>; 2],
    requests: Vec<Req>,
    /// (destination, nonce) → operator address → vote key, as the contract records it.
    votes: HashMap<(S, u64), HashMap<Address, B256>>,
    /// (destination, nonce) executed.
    executed: BTreeSet<(S, u64)>,
    native_balance: [U256; 2],
    /// NFT id → where it is: Some(side) held by a user on that side, None in flight.
    nft_at: BTreeMap<U256, Option<S>>,
    /// NFT ids owned per user index per side.
    nft_owner: BTreeMap<(S, U256), usize>,
}

fn ix(s: S) -> usize {
    match s {
        S::Parent => 0,
        S::Child => 1,
    }
}

struct World<'a> {
    n: &'a Net,
    m: Model,
    rng: Rng,
    /// Counters of what happened, printed at the end (and checked: the run did things).
    stats: BTreeMap<&'static str, u32>,
}

impl<'a> World<'a> {
    /// The chain of side `s`; borrows the devnet, not the world.
    fn side(&self, s: S) -> &'a Side {
        match s {
            S::Parent => &self.n.d.parent,
            S::Child => &self.n.d.child,
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }
}

/// Sends and returns the receipt; the devnet automines, so it is there at once (polled
/// briefly instead of the provider's block watcher, to keep the test fast).
async fn send(
    side: &Side,
    key: &PrivateKeySigner,
    to: Address,
    data: Bytes,
    value: U256,
) -> TransactionReceipt {
    let p = side.provider_with(key.clone());
    let tx = TransactionRequest::default()
        .with_to(to)
        .with_input(data)
        .with_value(value);
    let hash = *p
        .send_transaction(tx)
        .await
        .unwrap_or_else(|e| panic!("transaction from {} refused: {e}", key.address()))
        .tx_hash();
    for _ in 0..500 {
        if let Some(r) = p.get_transaction_receipt(hash).await.unwrap() {
            assert!(r.status(), "transaction {hash} reverted");
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no receipt for {hash}");
}

fn handled(receipt: &TransactionReceipt) -> Vec<Bridge::HandleValueTransfer> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<Bridge::HandleValueTransfer>().ok())
        .map(|l| l.inner.data)
        .collect()
}

// ---------------------------------------------------------------- operations

async fn op_request(w: &mut World<'_>) {
    let s = if w.rng.chance(50) {
        S::Parent
    } else {
        S::Child
    };
    let u = w.rng.below(w.n.users.len());
    let user = w.n.users[u].clone();
    let to_user = w.rng.below(w.n.users.len());
    let to = w.n.users[to_user].address();
    let side = w.side(s);
    if w.m.paused[ix(s)] {
        let data = encode(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(1),
            extraData: Bytes::new(),
        });
        match revert_of(side, user.address(), side.bridge, data, U256::from(1)).await {
            Bridge::BridgeErrors::BridgeNotRunning(_) => {}
            other => panic!("paused bridge: expected BridgeNotRunning, got {other:?}"),
        }
        w.count("request refused while paused");
        return;
    }
    // ERC-721 when this user holds one here, else native or ERC-20.
    let nft =
        w.m.nft_owner
            .iter()
            .filter(|((side, _), owner)| *side == s && **owner == u)
            .map(|((_, id), _)| *id)
            .next();
    let pick = w.rng.below(3);
    let (req, kind) = if pick == 2
        && let Some(id) = nft
    {
        let r = request_erc721(side, &user, to, id).await;
        w.m.nft_owner.remove(&(s, id));
        w.m.nft_at.insert(id, None);
        w.count("request erc721");
        (r, Kind::Erc721(id))
    } else if pick == 1 {
        let value = U256::from(1 + w.rng.below(1_000_000));
        let r = request_erc20(side, &user, to, value, U256::ZERO).await;
        w.count("request erc20");
        (r, Kind::Erc20(value))
    } else {
        let value = U256::from(1 + w.rng.below(1_000_000_000));
        // Pay a little more: the change is refunded (no fee receiver on the devnet).
        let r = request_native(side, &user, to, value, value + U256::from(7)).await;
        w.m.native_balance[ix(s)] += value;
        w.count("request native");
        (r, Kind::Native(value))
    };
    let expected_nonce = w.m.requests.iter().filter(|r| r.source == s).count() as u64;
    assert_eq!(
        req.nonce, expected_nonce,
        "request nonces are dense per side"
    );
    let honest = handle_data(side, &req).await;
    w.m.requests.push(Req {
        source: s,
        nonce: req.nonce,
        to,
        kind,
        honest,
        executed: false,
    });
}

/// Calldata no honest agent builds: the recipient replaced by one per operator, so no two
/// operators ever forge the same key (a forged key never has more than one vote).
fn forged(honest: &Bytes, op: usize) -> Bytes {
    let mut data = honest.to_vec();
    // Third argument of every handle function: `to`.
    let at = 4 + 2 * 32 + 12;
    let fake = fresh_address(&format!("forged-to-{op}"));
    data[at..at + 20].copy_from_slice(fake.as_slice());
    data.into()
}

async fn op_vote(w: &mut World<'_>) {
    if w.m.requests.is_empty() {
        return;
    }
    // Mostly requests still open, sometimes a late vote.
    let open: Vec<usize> = (0..w.m.requests.len())
        .filter(|&i| !w.m.requests[i].executed)
        .collect();
    let i = if !open.is_empty() && w.rng.chance(85) {
        open[w.rng.below(open.len())]
    } else {
        w.rng.below(w.m.requests.len())
    };
    let req = w.m.requests[i].clone();
    let dest = req.source.other();
    let op = w.rng.below(4);
    let key = w.m.seats[ix(dest)][op].clone();
    let forge = w.rng.chance(15);
    let data = if forge {
        forged(&req.honest, op)
    } else {
        req.honest.clone()
    };
    let side = w.side(dest);

    if req.executed {
        match revert_of(side, key.address(), side.bridge, data, U256::ZERO).await {
            Bridge::BridgeErrors::AlreadyExecuted(e) => assert_eq!(e.requestNonce, req.nonce),
            other => panic!("late vote: expected AlreadyExecuted, got {other:?}"),
        }
        w.count("late vote refused");
        return;
    }

    // The model's prediction: after this vote, how many current seats hold its key?
    let vote_key = keccak256(&data);
    let votes = w.m.votes.entry((dest, req.nonce)).or_default();
    votes.insert(key.address(), vote_key);
    let holders = w.m.seats[ix(dest)]
        .iter()
        .filter(|k| votes.get(&k.address()) == Some(&vote_key))
        .count();
    let t = w.m.threshold[ix(dest)];
    let expect_exec = holders >= usize::from(t);
    assert!(
        !(expect_exec && forge),
        "model error: a forged key reached the threshold"
    );

    let receipt = send(side, &key, side.bridge, data.clone(), U256::ZERO).await;
    let done = handled(&receipt);
    let b = bridge(side);
    let on_chain_count = b
        .voteCount(VOTE_TYPE_VALUE_TRANSFER, req.nonce, vote_key)
        .call()
        .await
        .unwrap();
    let on_chain_t = b
        .operatorThresholds(VOTE_TYPE_VALUE_TRANSFER)
        .call()
        .await
        .unwrap();
    assert_eq!(
        on_chain_count,
        U256::from(holders),
        "voteCount disagrees with the model"
    );
    assert_eq!(on_chain_t, t, "threshold disagrees with the model");
    if done.is_empty() {
        assert!(
            !expect_exec,
            "nonce {} reached {holders}/{t} votes but did not execute",
            req.nonce
        );
        w.count(if forge {
            "forged vote (no effect)"
        } else {
            "vote below threshold"
        });
        return;
    }
    // It executed: never below threshold, exactly once, and what the request asked for.
    assert!(
        expect_exec,
        "nonce {} executed with {holders} of {t} votes",
        req.nonce
    );
    assert!(
        on_chain_count >= U256::from(on_chain_t),
        "executed below the on-chain threshold"
    );
    assert_eq!(done.len(), 1);
    let ev = &done[0];
    assert_eq!(ev.handleNonce, req.nonce);
    assert_eq!(
        ev.to, req.to,
        "executed a handle whose recipient is not the request's"
    );
    assert!(
        w.m.executed.insert((dest, req.nonce)),
        "nonce {} executed twice on {dest:?}",
        req.nonce
    );
    w.m.requests[i].executed = true;
    match req.kind {
        Kind::Native(v) => {
            assert_eq!(ev.valueOrTokenId, v);
            w.m.native_balance[ix(dest)] -= v;
        }
        Kind::Erc20(v) => assert_eq!(ev.valueOrTokenId, v),
        Kind::Erc721(id) => {
            assert_eq!(ev.valueOrTokenId, id);
            w.m.nft_at.insert(id, Some(dest));
            let owner =
                w.n.users
                    .iter()
                    .position(|u| u.address() == req.to)
                    .unwrap();
            w.m.nft_owner.insert((dest, id), owner);
        }
    }
    w.count("executed");
}

async fn op_rotate(w: &mut World<'_>) {
    let s = if w.rng.chance(50) {
        S::Parent
    } else {
        S::Child
    };
    let op = w.rng.below(4);
    let side = w.side(s);
    let old = w.m.seats[ix(s)][op].clone();
    let new = PrivateKeySigner::random();
    side.reader()
        .anvil_set_balance(new.address(), seed::coins(10))
        .await
        .unwrap();
    send(
        side,
        &old,
        side.bridge,
        encode(Bridge::proposeOperatorKeyCall {
            newOperator: new.address(),
        }),
        U256::ZERO,
    )
    .await;
    let accept = encode(Bridge::acceptOperatorKeyCall {
        oldOperator: old.address(),
    });
    // Someone else cannot take the proposed seat.
    let stranger = w.n.users[w.rng.below(w.n.users.len())].address();
    match revert_of(side, stranger, side.bridge, accept.clone(), U256::ZERO).await {
        Bridge::BridgeErrors::NoPendingOperatorKey(_) => {}
        other => panic!("stranger accepted a seat: {other:?}"),
    }
    send(side, &new, side.bridge, accept, U256::ZERO).await;
    w.m.seats[ix(s)][op] = new;
    w.m.retired[ix(s)].push(old);
    w.count("rotation");
}

async fn op_retired_votes(w: &mut World<'_>) {
    let s = if w.rng.chance(50) {
        S::Parent
    } else {
        S::Child
    };
    let Some(old) = w.m.retired[ix(s)].last().cloned() else {
        return;
    };
    let Some(req) =
        w.m.requests
            .iter()
            .find(|r| r.source == s.other() && !r.executed)
            .cloned()
    else {
        return;
    };
    let side = w.side(s);
    match revert_of(
        side,
        old.address(),
        side.bridge,
        req.honest.clone(),
        U256::ZERO,
    )
    .await
    {
        Bridge::BridgeErrors::NotOperator(e) => assert_eq!(e.caller, old.address()),
        other => panic!("a rotated-out key voted: {other:?}"),
    }
    w.count("retired key refused");
}

async fn op_pause(w: &mut World<'_>) {
    let s = if w.rng.chance(50) {
        S::Parent
    } else {
        S::Child
    };
    let status = w.m.paused[ix(s)]; // resume when paused, pause when running
    let side = w.side(s);
    send(
        side,
        &w.n.owner,
        side.bridge,
        encode(Bridge::startCall { status }),
        U256::ZERO,
    )
    .await;
    w.m.paused[ix(s)] = !status;
    w.count(if status { "resume" } else { "pause" });
}

async fn op_threshold(w: &mut World<'_>) {
    let s = if w.rng.chance(50) {
        S::Parent
    } else {
        S::Child
    };
    let t = 2 + w.rng.below(3) as u8; // 2..=4 of 4 seats
    let side = w.side(s);
    send(
        side,
        &w.n.owner,
        side.bridge,
        encode(Bridge::setOperatorThresholdCall {
            voteType: VOTE_TYPE_VALUE_TRANSFER,
            threshold: t,
        }),
        U256::ZERO,
    )
    .await;
    w.m.threshold[ix(s)] = t;
    w.count("threshold change");
}

// ---------------------------------------------------------------- invariants on chain

struct Baseline {
    /// parent bridge's locked ERC-20 minus the child token's supply, before the run.
    erc20_gap: U256,
}

async fn check(w: &World<'_>, base: &Baseline) {
    for s in [S::Parent, S::Child] {
        let side = w.side(s);
        let b = bridge(side);
        let requests = w.m.requests.iter().filter(|r| r.source == s).count() as u64;
        assert_eq!(
            b.requestNonce().call().await.unwrap(),
            requests,
            "{s:?} requestNonce"
        );
        assert_eq!(
            b.isRunning().call().await.unwrap(),
            !w.m.paused[ix(s)],
            "{s:?} isRunning"
        );
        // Handle nonces on this side as destination.
        let done: Vec<u64> =
            w.m.executed
                .iter()
                .filter(|(d, _)| *d == s)
                .map(|(_, n)| *n)
                .collect();
        // Every nonce below lowerHandleNonce executed; it stops at the first gap (or earlier:
        // the contract advances it at most MAX_HANDLE_NONCE_ADVANCE per handle).
        let gap = (0..).find(|n| !done.contains(n)).unwrap();
        let lower = b.lowerHandleNonce().call().await.unwrap();
        assert!(
            lower <= gap,
            "{s:?} lowerHandleNonce {lower} passes the unexecuted {gap}"
        );
        if done.len() < 200 {
            assert_eq!(lower, gap, "{s:?} lowerHandleNonce");
        }
        assert_eq!(
            b.upperHandleNonce().call().await.unwrap(),
            done.iter().max().copied().unwrap_or(0),
            "{s:?} upperHandleNonce"
        );
        let seats: BTreeSet<Address> = w.m.seats[ix(s)].iter().map(|k| k.address()).collect();
        let list: BTreeSet<Address> = b
            .getOperatorList()
            .call()
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(list, seats, "{s:?} operator list");
        // Native: exactly the model's balance, and it covers every unclaimed payout.
        let native = balance(side, side.bridge).await;
        assert_eq!(
            native,
            w.m.native_balance[ix(s)],
            "{s:?} bridge native balance"
        );
        let unclaimed = b.totalUnclaimedNative().call().await.unwrap();
        assert!(
            native >= unclaimed,
            "{s:?}: native {native} below unclaimed {unclaimed}"
        );
    }
    // ERC-20: the parent locks what the child minted, plus what is in flight both ways.
    let (p, c) = (&w.n.d.parent, &w.n.d.child);
    let locked = erc20(p).balanceOf(p.bridge).call().await.unwrap();
    let supply = erc20(c).totalSupply().call().await.unwrap();
    let in_flight: U256 =
        w.m.requests
            .iter()
            .filter(|r| !r.executed)
            .filter_map(|r| match r.kind {
                Kind::Erc20(v) => Some(v),
                _ => None,
            })
            .sum();
    assert!(
        locked >= supply,
        "parent locks {locked} ERC-20 but the child has {supply}"
    );
    assert_eq!(
        locked - supply,
        base.erc20_gap + in_flight,
        "ERC-20 locked on the parent != child supply + in flight"
    );
    // ERC-721: the parent holds exactly the tracked ids that are on the child or in flight.
    let held = erc721(p).balanceOf(p.bridge).call().await.unwrap();
    let expected =
        w.m.nft_at
            .values()
            .filter(|at| **at != Some(S::Parent))
            .count();
    assert_eq!(held, U256::from(expected), "NFTs locked on the parent");
}

/// At the end: every id sits where the model says, and the full event logs of both bridges
/// show each nonce executed at most once, exactly the executed set.
async fn final_check(w: &World<'_>) {
    for (&id, &at) in &w.m.nft_at {
        match at {
            Some(s) => {
                let side = w.side(s);
                let owner = ServiceChainNFT::new(side.erc721, side.reader())
                    .ownerOf(id)
                    .call()
                    .await
                    .unwrap();
                let expected = w.n.users[w.m.nft_owner[&(s, id)]].address();
                assert_eq!(owner, expected, "NFT {id} on {s:?}");
            }
            None => {
                let owner = erc721(&w.n.d.parent).ownerOf(id).call().await.ok();
                // In flight: locked on the parent, or not (yet) existing on the child.
                assert!(
                    owner.is_none() || owner == Some(w.n.d.parent.bridge),
                    "NFT {id} in flight"
                );
            }
        }
    }
    for s in [S::Parent, S::Child] {
        let side = w.side(s);
        let logs = side
            .reader()
            .get_logs(
                &Filter::new()
                    .address(side.bridge)
                    .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH)
                    .from_block(0),
            )
            .await
            .unwrap();
        let mut seen = BTreeSet::new();
        for l in logs {
            let n = l
                .log_decode::<Bridge::HandleValueTransfer>()
                .unwrap()
                .inner
                .data
                .handleNonce;
            assert!(
                seen.insert(n),
                "{s:?}: nonce {n} executed twice (event log)"
            );
        }
        let model: BTreeSet<u64> =
            w.m.executed
                .iter()
                .filter(|(d, _)| *d == s)
                .map(|(_, n)| *n)
                .collect();
        assert_eq!(seen, model, "{s:?}: executed nonces in the event log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_votes_rotations_and_pauses_keep_the_invariants() {
    let seed = env_u64("BRIDGE_INVARIANT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }) | 1;
    let steps = env_u64("BRIDGE_INVARIANT_STEPS").unwrap_or(300);
    println!("contract invariants: BRIDGE_INVARIANT_SEED={seed} BRIDGE_INVARIANT_STEPS={steps}");

    let n = net().await;
    let mut nft_at = BTreeMap::new();
    let mut nft_owner = BTreeMap::new();
    for u in 0..n.users.len() {
        for id in seed::parent_nft_ids(u) {
            nft_at.insert(id, Some(S::Parent));
            nft_owner.insert((S::Parent, id), u);
        }
        for id in seed::child_nft_ids(u) {
            nft_at.insert(id, Some(S::Child));
            nft_owner.insert((S::Child, id), u);
        }
    }
    let (p, c) = (&n.d.parent, &n.d.child);
    let model = Model {
        paused: [false, false],
        threshold: [n.d.value_transfer_threshold; 2],
        seats: [n.ops.clone(), n.ops.clone()],
        retired: [Vec::new(), Vec::new()],
        requests: Vec::new(),
        votes: HashMap::new(),
        executed: BTreeSet::new(),
        native_balance: [balance(p, p.bridge).await, balance(c, c.bridge).await],
        nft_at,
        nft_owner,
    };
    let locked = erc20(p).balanceOf(p.bridge).call().await.unwrap();
    let supply = erc20(c).totalSupply().call().await.unwrap();
    assert!(
        locked >= supply,
        "the devnet starts with the child's ERC-20 backed"
    );
    let base = Baseline {
        erc20_gap: locked - supply,
    };
    let mut w = World {
        n: &n,
        m: model,
        rng: Rng(seed),
        stats: BTreeMap::new(),
    };
    check(&w, &base).await;
    for _ in 0..steps {
        match w.rng.below(100) {
            0..30 => op_request(&mut w).await,
            30..82 => op_vote(&mut w).await,
            82..88 => op_rotate(&mut w).await,
            88..91 => op_retired_votes(&mut w).await,
            91..96 => op_pause(&mut w).await,
            _ => op_threshold(&mut w).await,
        }
        check(&w, &base).await;
    }
    // Drive every open request home with honest votes from current seats, then check again:
    // what was locked is released or minted, and nothing is left in flight.
    for s in [S::Parent, S::Child] {
        if w.m.paused[ix(s)] {
            op_pause_side(&mut w, s).await;
        }
    }
    while let Some(i) = w.m.requests.iter().position(|r| !r.executed) {
        let req = w.m.requests[i].clone();
        // Every seat votes the honest calldata in turn (again, if it already did: a re-vote
        // re-counts, which executes a nonce whose threshold was lowered after its votes).
        for op in 0..4 {
            if w.m.requests[i].executed {
                break;
            }
            honest_vote(&mut w, i, op).await;
        }
        assert!(
            w.m.requests[i].executed,
            "nonce {} did not execute with every seat voting",
            req.nonce
        );
    }
    check(&w, &base).await;
    final_check(&w).await;
    println!("contract invariants: {:?}", w.stats);
    for what in ["executed", "rotation", "request native", "request erc20"] {
        assert!(
            w.stats.get(what).copied().unwrap_or(0) > 0 || steps < 50,
            "the run never did {what:?}: {:?}",
            w.stats
        );
    }
}

async fn op_pause_side(w: &mut World<'_>, s: S) {
    let side = w.side(s);
    send(
        side,
        &w.n.owner,
        side.bridge,
        encode(Bridge::startCall { status: true }),
        U256::ZERO,
    )
    .await;
    w.m.paused[ix(s)] = false;
}

/// An honest vote by seat `op` for request `i` (the drain phase): the same checks as op_vote.
async fn honest_vote(w: &mut World<'_>, i: usize, op: usize) {
    let req = w.m.requests[i].clone();
    let dest = req.source.other();
    let key = w.m.seats[ix(dest)][op].clone();
    let vote_key = keccak256(&req.honest);
    let votes = w.m.votes.entry((dest, req.nonce)).or_default();
    votes.insert(key.address(), vote_key);
    let holders = w.m.seats[ix(dest)]
        .iter()
        .filter(|k| votes.get(&k.address()) == Some(&vote_key))
        .count();
    let expect_exec = holders >= usize::from(w.m.threshold[ix(dest)]);
    let side = w.side(dest);
    let receipt = send(side, &key, side.bridge, req.honest.clone(), U256::ZERO).await;
    let done = handled(&receipt);
    assert_eq!(
        !done.is_empty(),
        expect_exec,
        "drain: nonce {} with {holders} votes",
        req.nonce
    );
    if let Some(ev) = done.first() {
        assert!(
            w.m.executed.insert((dest, req.nonce)),
            "nonce executed twice"
        );
        assert_eq!(ev.to, req.to);
        w.m.requests[i].executed = true;
        match req.kind {
            Kind::Native(v) => w.m.native_balance[ix(dest)] -= v,
            Kind::Erc20(_) => {}
            Kind::Erc721(id) => {
                w.m.nft_at.insert(id, Some(dest));
                let owner =
                    w.n.users
                        .iter()
                        .position(|u| u.address() == req.to)
                        .unwrap();
                w.m.nft_owner.insert((dest, id), owner);
            }
        }
        w.count("executed");
    }
}
