//! The Kaia-style bridge (`contracts/src/test/kaia/`): that it behaves like Kaia's deployed
//! bridge in every point of `shared/KAIA-FACTS.md` the agent meets, so the agent's Kaia rules are
//! tested against contract behaviour rather than assumptions. Votes are built here from the raw
//! request events (not through the agent's decoder), so these tests check the contract alone.

use crate::support::*;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolValue;
use bridge_agent::contracts::{Bridge, ServiceChainNFT, ServiceChainToken};
use bridge_agent::dialect::Dialect;
use bridge_devkit::devnet::kaia::{
    KaiaStyleBridge, KaiaStyleNFT, KaiaStyleToken, RefusingReceiver, UriTestNFT,
};
use bridge_devkit::devnet::{DevnetOptions, Side};
use serde_json::Value;
use std::collections::BTreeMap;

async fn kaia_net(opts: DevnetOptions) -> Net {
    net_with(DevnetOptions {
        dialect: Dialect::Kaia,
        ..opts
    })
    .await
}

/// A request as its event tells it, with the fields a handle call carries.
#[derive(Clone, Debug)]
struct Req {
    tx: B256,
    block: u64,
    token_type: u8,
    from: Address,
    to: Address,
    token: Address,
    value: U256,
    nonce: u64,
    fee: U256,
    extra: Bytes,
    /// (encodingVer, encodedData) of `RequestValueTransferEncoded`.
    encoded: Option<(u8, Bytes)>,
}

fn req_of(r: &TransactionReceipt) -> Req {
    let mut found = Vec::new();
    for log in r.inner.logs() {
        if let Ok(e) = log.log_decode::<Bridge::RequestValueTransfer>() {
            let e = e.inner.data;
            found.push(Req {
                tx: r.transaction_hash,
                block: r.block_number.unwrap(),
                token_type: e.tokenType,
                from: e.from,
                to: e.to,
                token: e.tokenAddress,
                value: e.valueOrTokenId,
                nonce: e.requestNonce,
                fee: e.fee,
                extra: e.extraData,
                encoded: None,
            });
        } else if let Ok(e) = log.log_decode::<Bridge::RequestValueTransferEncoded>() {
            let e = e.inner.data;
            found.push(Req {
                tx: r.transaction_hash,
                block: r.block_number.unwrap(),
                token_type: e.tokenType,
                from: e.from,
                to: e.to,
                token: e.tokenAddress,
                value: e.valueOrTokenId,
                nonce: e.requestNonce,
                fee: e.fee,
                extra: e.extraData,
                encoded: Some((e.encodingVer, e.encodedData)),
            });
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one request event in {}",
        r.transaction_hash
    );
    found.remove(0)
}

fn native_handle(req: &Req) -> Bytes {
    encode(Bridge::handleKLAYTransferCall {
        requestTxHash: req.tx,
        from: req.from,
        to: req.to,
        value: req.value,
        requestedNonce: req.nonce,
        requestedBlockNumber: req.block,
        extraData: req.extra.clone(),
    })
}

/// A native handle for `nonce` that no request backs (the contract does not check requests).
fn bare_handle(nonce: u64, to: Address) -> Bytes {
    encode(Bridge::handleKLAYTransferCall {
        requestTxHash: keccak256(nonce.to_be_bytes()),
        from: to,
        to,
        value: U256::from(1),
        requestedNonce: nonce,
        requestedBlockNumber: 1 + nonce,
        extraData: Bytes::new(),
    })
}

/// Simulates a call that must revert with `Error(string)`; returns the string.
async fn revert_reason(
    side: &Side,
    from: Address,
    to: Address,
    data: Bytes,
    value: U256,
) -> String {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(data)
        .with_value(value);
    match side.reader().call(tx).await {
        Ok(out) => panic!("call was expected to revert but returned {out}"),
        Err(e) => {
            let payload = e
                .as_error_resp()
                .unwrap_or_else(|| panic!("not a revert: {e}"));
            let data = payload
                .as_revert_data()
                .unwrap_or_else(|| panic!("revert without data: {payload:?}"));
            <alloy::sol_types::Revert as alloy::sol_types::SolError>::abi_decode(&data)
                .unwrap_or_else(|_| panic!("revert is not Error(string): {data}"))
                .reason
        }
    }
}

fn kaia(side: &Side) -> KaiaStyleBridge::KaiaStyleBridgeInstance<alloy::providers::DynProvider> {
    KaiaStyleBridge::new(side.bridge, side.reader())
}

async fn closed(side: &Side, nonce: u64) -> bool {
    kaia(side)
        .closedValueTransferVotes(nonce)
        .call()
        .await
        .unwrap()
}

async fn lower(side: &Side) -> u64 {
    kaia(side).lowerHandleNonce().call().await.unwrap()
}

// ---------------------------------------------------------------- the ABI

fn abi(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/contracts/artifacts/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["abi"].as_array().unwrap().clone()
}

/// Each named entry's signature: kind, inputs (type, indexed), outputs, mutability.
fn signatures(abi: &[Value]) -> BTreeMap<String, String> {
    let params = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        format!(
                            "{}{}",
                            p["type"],
                            if p["indexed"] == true { " indexed" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    abi.iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?;
            Some((
                name.to_owned(),
                format!(
                    "{} ({}) -> ({}) {}",
                    e["type"],
                    params(&e["inputs"]),
                    params(&e["outputs"]),
                    e["stateMutability"]
                ),
            ))
        })
        .collect()
}

#[test]
fn kaia_style_abi_is_ours_wherever_the_agent_and_the_devnet_look() {
    let ours = signatures(&abi("Bridge"));
    let kaia = signatures(&abi("test/KaiaStyleBridge"));
    for name in [
        "RequestValueTransfer",
        "RequestValueTransferEncoded",
        "HandleValueTransfer",
        "handleKLAYTransfer",
        "handleERC20Transfer",
        "handleERC721Transfer",
        "requestKLAYTransfer",
        "requestERC20Transfer",
        "requestERC721Transfer",
        "requestNonce",
        "lowerHandleNonce",
        "upperHandleNonce",
        "recoveryBlockNumber",
        "handleNoncesToBlockNums",
        "closedValueTransferVotes",
        "handledRequestTx",
        "registeredTokens",
        "getRegisteredTokenList",
        "getOperatorList",
        "operators",
        "operatorThresholds",
        "configurationNonce",
        "feeOfKLAY",
        "feeOfERC20",
        "feeReceiver",
        "setKLAYFee",
        "setERC20Fee",
        "registerOperator",
        "deregisterOperator",
        "setOperatorThreshold",
        "registerToken",
        "setCounterPartBridge",
        "setFeeReceiver",
        "chargeWithoutEvent",
        "start",
        "isRunning",
        "modeMintBurn",
        "counterpartBridge",
        "owner",
    ] {
        assert_eq!(kaia.get(name), ours.get(name), "{name} differs from ours");
        assert!(kaia.contains_key(name), "{name} missing");
    }
    // What Kaia's bridge does not have: any view or event of votes, key rotation.
    for absent in [
        "voteOf",
        "voteCount",
        "Voted",
        "proposeOperatorKey",
        "acceptOperatorKey",
        "replaceOperator",
        "ownerReplaceOperator",
    ] {
        assert!(
            !kaia.contains_key(absent),
            "{absent} must not exist on Kaia"
        );
    }
    // Kaia-only: the one-step token requests, and a payable fallback that is a request.
    assert!(kaia.contains_key("onERC20Received"));
    assert!(kaia.contains_key("onERC721Received"));
    let entries = abi("test/KaiaStyleBridge");
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(kinds.contains(&"fallback") && kinds.contains(&"receive"));
}

// ---------------------------------------------------------------- votes

#[tokio::test]
async fn kaia_votes_are_private_replaced_closed_and_deleted_as_lower_passes() {
    let n = kaia_net(DevnetOptions::default()).await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let b = kaia(c);
    // The devnet deregistered the constructor's deployer seat; thresholds are 3.
    let seats = b.getOperatorList().call().await.unwrap();
    assert_eq!(seats, n.d.operators);
    assert!(!b.operators(n.owner.address()).call().await.unwrap());
    assert_eq!(b.operatorThresholds(0).call().await.unwrap(), 3);

    let to = fresh_address("kaia votes");
    let value = coins(1);
    let user = &n.users[0];
    let mut reqs = Vec::new();
    for _ in 0..2 {
        let call = Bridge::requestKLAYTransferCall {
            to,
            value,
            extraData: Bytes::from_static(b"kaia"),
        };
        reqs.push(req_of(
            &send_ok(p, user, p.bridge, encode(call), value).await,
        ));
    }
    let honest1 = native_handle(&reqs[1]);
    let forged1 = native_handle(&Req {
        to: fresh_address("attacker"),
        ..reqs[1].clone()
    });

    // Nonce 1 first (out of order). op0 and op1 vote forged; op1 replaces its vote with the
    // honest one, so forged holds 1; op2's forged vote makes 2 (not 3): nothing executes.
    for op in [0, 1] {
        let r = send_ok(c, &n.ops[op], c.bridge, forged1.clone(), U256::ZERO).await;
        assert!(r.inner.logs().is_empty(), "a vote emits no event");
    }
    let r = send_ok(c, &n.ops[1], c.bridge, honest1.clone(), U256::ZERO).await;
    assert!(r.inner.logs().is_empty());
    assert!(
        vote(c, &n.ops[2], &forged1).await.is_empty(),
        "the replaced vote stopped counting"
    );
    // An identical re-vote is mined, changes nothing, reverts nothing.
    let again = send_ok(c, &n.ops[1], c.bridge, honest1.clone(), U256::ZERO).await;
    assert!(again.inner.logs().is_empty());
    assert!(again.gas_used > 21_000);
    // op0 and op3 join honest: 3 (op1, op0, op3) → executes; the flag is set, lower stays 0.
    assert!(vote(c, &n.ops[0], &honest1).await.is_empty());
    assert_eq!(vote(c, &n.ops[3], &honest1).await, vec![1]);
    assert_eq!(balance(c, to).await, value);
    assert!(closed(c, 1).await);
    assert_eq!(lower(c).await, 0);
    assert_eq!(b.upperHandleNonce().call().await.unwrap(), 1);
    assert_eq!(
        revert_reason(c, n.ops[2].address(), c.bridge, honest1.clone(), U256::ZERO).await,
        "closed vote"
    );

    // Nonce 0 executes: lower passes both nonces and deletes their flags.
    let honest0 = native_handle(&reqs[0]);
    for op in [0, 1] {
        assert!(vote(c, &n.ops[op], &honest0).await.is_empty());
    }
    assert_eq!(vote(c, &n.ops[2], &honest0).await, vec![0]);
    assert_eq!(lower(c).await, 2);
    assert!(
        !closed(c, 0).await && !closed(c, 1).await,
        "flags deleted once lower passed"
    );
    assert_eq!(
        b.recoveryBlockNumber().call().await.unwrap(),
        reqs[1].block,
        "recovery block = the request block of lower − 1"
    );
    assert_eq!(b.handleNoncesToBlockNums(1).call().await.unwrap(), 0);
    assert!(b.handledRequestTx(reqs[0].tx).call().await.unwrap());
    for data in [&honest0, &honest1] {
        assert_eq!(
            revert_reason(c, n.ops[3].address(), c.bridge, data.clone(), U256::ZERO).await,
            "removed vote"
        );
    }
    assert_eq!(
        revert_reason(c, user.address(), c.bridge, honest0.clone(), U256::ZERO).await,
        "msg.sender is not an operator"
    );

    // No vote view: `voteOf` is not a function here, the call falls into the fallback, which
    // is a native request of nothing, and reverts.
    let vote_of = Bridge::voteOfCall {
        voteType: 0,
        nonce: 0,
        operator: n.ops[0].address(),
    };
    assert_eq!(
        revert_reason(c, user.address(), c.bridge, encode(vote_of), U256::ZERO).await,
        "insufficient amount"
    );
}

#[tokio::test]
async fn kaia_lower_handle_nonce_advances_at_most_200_per_handle_and_deployer_seat_can_stay() {
    let n = kaia_net(DevnetOptions {
        dev_operators: 1,
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        keep_deployer_seat: true,
        ..DevnetOptions::default()
    })
    .await;
    let c = &n.d.child;
    let b = kaia(c);
    let seats = b.getOperatorList().call().await.unwrap();
    assert_eq!(
        seats,
        vec![n.owner.address(), n.ops[0].address()],
        "deployer seat kept"
    );
    assert!(n.d.deployer_seat_kept);

    // Nonces 1..=201 execute, nonce 0 does not: lower stays at 0.
    let to = fresh_address("advance");
    let op = c.provider_with(n.ops[0].clone());
    let mut pending = Vec::new();
    for nonce in 1..=201u64 {
        let tx = TransactionRequest::default()
            .with_to(c.bridge)
            .with_input(bare_handle(nonce, to))
            .with_gas_limit(500_000);
        pending.push(op.send_transaction(tx).await.unwrap());
    }
    for tx in pending {
        assert!(tx.get_receipt().await.unwrap().status());
    }
    assert_eq!(lower(c).await, 0);
    assert!(closed(c, 150).await);
    // Nonce 0 executes: lower moves 200 (0..=199), not 202.
    vote(c, &n.ops[0], &bare_handle(0, to)).await;
    assert_eq!(lower(c).await, 200);
    assert!(!closed(c, 150).await && closed(c, 200).await && closed(c, 201).await);
    // The next handle carries it on.
    vote(c, &n.ops[0], &bare_handle(202, to)).await;
    assert_eq!(lower(c).await, 203);
    assert!(!closed(c, 201).await);
}

// ---------------------------------------------------------------- payouts that fail

#[tokio::test]
async fn kaia_refused_payout_or_failed_mint_reverts_the_closing_vote_for_ever() {
    let n = kaia_net(DevnetOptions::default()).await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let owner_c = c.provider_with(n.owner.clone());
    let refusing = *RefusingReceiver::deploy(&owner_c).await.unwrap().address();
    let user = &n.users[0];
    let value = coins(1);

    // Nonce 0 → a contract that refuses coins; nonce 1 → a plain address.
    let mut reqs = Vec::new();
    for to in [refusing, fresh_address("fine")] {
        let call = Bridge::requestKLAYTransferCall {
            to,
            value,
            extraData: Bytes::new(),
        };
        reqs.push(req_of(
            &send_ok(p, user, p.bridge, encode(call), value).await,
        ));
    }
    let refused = native_handle(&reqs[0]);
    for op in [0, 1] {
        assert!(vote(c, &n.ops[op], &refused).await.is_empty());
    }
    assert_eq!(
        revert_reason(c, n.ops[2].address(), c.bridge, refused.clone(), U256::ZERO).await,
        "handleKLAYTransfer: transfer failed"
    );
    let fine = native_handle(&reqs[1]);
    for op in [0, 1, 2] {
        vote(c, &n.ops[op], &fine).await;
    }
    assert_eq!(kaia(c).upperHandleNonce().call().await.unwrap(), 1);
    assert_eq!(lower(c).await, 0, "the refused nonce holds lower back");
    assert!(!closed(c, 0).await);

    // Mint failures: the child bridge may no longer mint.
    let owner_tok = ServiceChainToken::new(c.erc20, &owner_c);
    owner_tok
        .setMinter(c.bridge, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let owner_nft = ServiceChainNFT::new(c.erc721, &owner_c);
    owner_nft
        .setMinter(c.bridge, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let erc20 = encode(Bridge::handleERC20TransferCall {
        requestTxHash: B256::repeat_byte(7),
        from: user.address(),
        to: user.address(),
        tokenAddress: c.erc20,
        value,
        requestedNonce: 5,
        requestedBlockNumber: 9,
        extraData: Bytes::new(),
    });
    let erc721 = encode(Bridge::handleERC721TransferCall {
        requestTxHash: B256::repeat_byte(8),
        from: user.address(),
        to: user.address(),
        tokenAddress: c.erc721,
        tokenId: U256::from(999_999),
        requestedNonce: 6,
        requestedBlockNumber: 9,
        tokenURI: "x".into(),
        extraData: Bytes::new(),
    });
    for (data, reason) in [
        (&erc20, "handleERC20Transfer: mint failed"),
        (&erc721, "mint failed"),
    ] {
        for op in [0, 1] {
            vote(c, &n.ops[op], data).await;
        }
        assert_eq!(
            revert_reason(c, n.ops[2].address(), c.bridge, data.clone(), U256::ZERO).await,
            reason
        );
    }

    // A stopped bridge takes no request.
    let owner_p = p.provider_with(n.owner.clone());
    KaiaStyleBridge::new(p.bridge, &owner_p)
        .start(false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let call = Bridge::requestKLAYTransferCall {
        to: user.address(),
        value,
        extraData: Bytes::new(),
    };
    assert_eq!(
        revert_reason(p, user.address(), p.bridge, encode(call), value).await,
        "stopped bridge"
    );
}

// ---------------------------------------------------------------- requests

#[tokio::test]
async fn kaia_requests_fee_change_fallback_one_step_tokens_and_double_encoded_uri() {
    let n = kaia_net(DevnetOptions::default()).await;
    let p = &n.d.parent;
    let user = &n.users[0];
    let owner_p = p.provider_with(n.owner.clone());
    let to = fresh_address("kaia requests");
    let value = coins(2);

    // Fee = msg.value − value; with no fee set the change comes back.
    let before = balance(p, user.address()).await;
    let call = Bridge::requestKLAYTransferCall {
        to,
        value,
        extraData: Bytes::from_static(b"x"),
    };
    let r = send_ok(p, user, p.bridge, encode(call.clone()), value + coins(1)).await;
    let req = req_of(&r);
    assert_eq!(
        (req.value, req.fee, req.to, req.nonce),
        (value, U256::ZERO, to, 0)
    );
    let gas = U256::from(r.gas_used) * U256::from(r.effective_gas_price);
    assert_eq!(
        balance(p, user.address()).await,
        before - value - gas,
        "change refunded"
    );

    // A fee set by configuration vote (threshold 3) and a receiver: the fee is taken.
    let fee = coins(1) / U256::from(10);
    let receiver = fresh_address("fee receiver");
    KaiaStyleBridge::new(p.bridge, &owner_p)
        .setFeeReceiver(receiver)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let set_fee = encode(Bridge::setKLAYFeeCall {
        fee,
        requestNonce: 0,
    });
    for op in 0..3 {
        send_ok(p, &n.ops[op], p.bridge, set_fee.clone(), U256::ZERO).await;
    }
    assert_eq!(kaia(p).feeOfKLAY().call().await.unwrap(), fee);
    let req = req_of(
        &send_ok(
            p,
            user,
            p.bridge,
            encode(call.clone()),
            value + fee * U256::from(3),
        )
        .await,
    );
    assert_eq!((req.value, req.fee), (value, fee));
    assert_eq!(balance(p, receiver).await, fee);
    assert_eq!(
        revert_reason(p, user.address(), p.bridge, encode(call), value).await,
        "insufficient feeLimit",
        "nothing beyond the value while a fee is due"
    );

    // Fallback: a plain coin transfer is a request to the sender, the fee as the fee limit.
    let plain = send_ok(p, user, p.bridge, Bytes::new(), value).await;
    let req = req_of(&plain);
    assert_eq!(
        (req.from, req.to, req.value, req.fee, req.token_type),
        (user.address(), user.address(), value - fee, fee, 0)
    );

    // One-step ERC-20: the token moves value + fee limit and calls onERC20Received.
    let tok = KaiaStyleToken::deploy(&owner_p, "One".into(), "ONE".into(), p.bridge)
        .await
        .unwrap();
    let kb = KaiaStyleBridge::new(p.bridge, &owner_p);
    kb.registerToken(*tok.address(), n.d.child.erc20)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    tok.mint(user.address(), coins(10))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let one_step = KaiaStyleToken::requestValueTransferCall {
        value: coins(3),
        to,
        feeLimit: coins(1),
        extraData: Bytes::from_static(b"1-step"),
    };
    let req = req_of(&send_ok(p, user, *tok.address(), encode(one_step), U256::ZERO).await);
    assert_eq!(
        (
            req.token_type,
            req.from,
            req.to,
            req.token,
            req.value,
            req.fee
        ),
        (1, user.address(), to, *tok.address(), coins(3), U256::ZERO)
    );
    assert_eq!(
        tok.balanceOf(user.address()).call().await.unwrap(),
        coins(7),
        "fee limit refunded to the requester"
    );

    // One-step ERC-721 and the URI encoded twice: abi.encode(string(raw tokenURI return)).
    let nft = KaiaStyleNFT::deploy(&owner_p, "One NFT".into(), "ONFT".into(), p.bridge)
        .await
        .unwrap();
    kb.registerToken(*nft.address(), n.d.child.erc721)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let uri = "ipfs://kaia-style/1";
    nft.mintWithTokenURI(user.address(), U256::from(1), uri.into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let one_step = KaiaStyleNFT::requestValueTransferCall {
        tokenId: U256::from(1),
        to,
        extraData: Bytes::new(),
    };
    let req = req_of(&send_ok(p, user, *nft.address(), encode(one_step), U256::ZERO).await);
    let raw = uri.to_string().abi_encode();
    assert_eq!(raw.len(), 96);
    assert_eq!(
        req.encoded,
        Some((2, Bytes::from(Bytes::from(raw).abi_encode())))
    );
    assert_eq!(
        nft.ownerOf(U256::from(1)).call().await.unwrap(),
        p.bridge,
        "locked on the parent"
    );

    // A failing tokenURI: the inner bytes are empty.
    let unt = UriTestNFT::deploy(&owner_p, "Uri".into(), "URI".into())
        .await
        .unwrap();
    kb.registerToken(*unt.address(), n.d.child.erc721)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    for call in [
        unt.mintWithTokenURI(user.address(), U256::from(7), "never read".into())
            .into_transaction_request(),
        unt.setFailingURI(U256::from(7), true)
            .into_transaction_request(),
    ] {
        assert!(
            owner_p
                .send_transaction(call)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap()
                .status()
        );
    }
    let approve = UriTestNFT::approveCall {
        to: p.bridge,
        tokenId: U256::from(7),
    };
    send_ok(p, user, *unt.address(), encode(approve), U256::ZERO).await;
    let request = Bridge::requestERC721TransferCall {
        token: *unt.address(),
        to,
        tokenId: U256::from(7),
        extraData: Bytes::new(),
    };
    let req = req_of(&send_ok(p, user, p.bridge, encode(request), U256::ZERO).await);
    assert_eq!(req.encoded, Some((2, Bytes::new().abi_encode().into())));
}

// ---------------------------------------------------------------- seats

#[tokio::test]
async fn kaia_constructor_seats_the_deployer_thresholds_start_at_1_and_12_seats_at_most() {
    let n = kaia_net(DevnetOptions::default()).await;
    let p = &n.d.parent;
    let owner = p.provider_with(n.owner.clone());
    let fresh = KaiaStyleBridge::deploy(&owner, false).await.unwrap();
    assert_eq!(
        fresh.getOperatorList().call().await.unwrap(),
        vec![n.owner.address()],
        "the constructor seats the deployer"
    );
    for vote_type in [0u8, 1] {
        assert_eq!(fresh.operatorThresholds(vote_type).call().await.unwrap(), 1);
    }
    // 11 more seats fill it; a 13th is refused.
    for i in 0..11 {
        let r = fresh
            .registerOperator(fresh_address(&format!("seat {i}")))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    let thirteenth = KaiaStyleBridge::registerOperatorCall {
        operator: fresh_address("seat 13"),
    };
    assert_eq!(
        revert_reason(
            p,
            n.owner.address(),
            *fresh.address(),
            encode(thirteenth),
            U256::ZERO
        )
        .await,
        "max operator limit"
    );
    // Deregistering checks no threshold: 3 of 12 required, then 10 seats removed, 2 left.
    fresh
        .setOperatorThreshold(0, 3)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    for i in 0..10 {
        let r = fresh
            .deregisterOperator(fresh_address(&format!("seat {i}")))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    assert_eq!(fresh.getOperatorList().call().await.unwrap().len(), 2);
    assert_eq!(fresh.operatorThresholds(0).call().await.unwrap(), 3);
}
