//! Voting: a vote counts for keccak256(msg.data); different calldata never joins another's
//! tally; re-sends never double count; late votes get the custom error; non-operators are
//! refused; the public per-operator vote view tells who voted what.

use crate::support::*;
use alloy::primitives::{B256, U256, keccak256};
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};

#[tokio::test]
async fn different_calldata_does_not_join_the_tally_and_resends_do_not_double_count() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let to = fresh_address("tally");
    let value = coins(1);
    let req = request_native(p, &n.users[0], to, value, value).await;
    let honest = handle_data(p, &req).await;
    // Same request, but a different recipient: a different vote key.
    let mut forged_req = req.clone();
    forged_req.to = fresh_address("attacker");
    let forged = handle_data(p, &forged_req).await;
    assert_ne!(keccak256(&honest), keccak256(&forged));

    // Operator 0 votes honest twice (a re-send), operator 1 votes forged, operator 2 honest.
    assert!(vote(c, &n.ops[0], &honest).await.is_empty());
    assert!(
        vote(c, &n.ops[0], &honest).await.is_empty(),
        "a re-send must not execute"
    );
    assert!(vote(c, &n.ops[1], &forged).await.is_empty());
    assert!(
        vote(c, &n.ops[2], &honest).await.is_empty(),
        "2 honest + 1 forged is below 3"
    );
    let b = bridge(c);
    assert_eq!(
        b.voteCount(VOTE_TYPE_VALUE_TRANSFER, 0, keccak256(&honest))
            .call()
            .await
            .unwrap(),
        U256::from(2)
    );
    assert_eq!(
        b.voteCount(VOTE_TYPE_VALUE_TRANSFER, 0, keccak256(&forged))
            .call()
            .await
            .unwrap(),
        U256::from(1)
    );
    assert_eq!(balance(c, to).await, U256::ZERO);
    assert_eq!(balance(c, forged_req.to).await, U256::ZERO);

    // The voted view: who voted which key for nonce 0.
    for (op, key) in [
        (0, keccak256(&honest)),
        (1, keccak256(&forged)),
        (2, keccak256(&honest)),
        (3, B256::ZERO),
    ] {
        let got = b
            .voteOf(VOTE_TYPE_VALUE_TRANSFER, 0, n.ops[op].address())
            .call()
            .await
            .unwrap();
        assert_eq!(got, key, "operator {op}");
    }

    // Operator 1 changes its vote to the honest one: its forged vote stops counting, the
    // honest key reaches 3 and executes.
    assert_eq!(vote(c, &n.ops[1], &honest).await, vec![0]);
    assert_eq!(balance(c, to).await, value);
    assert_eq!(balance(c, forged_req.to).await, U256::ZERO);
    assert_eq!(
        b.voteCount(VOTE_TYPE_VALUE_TRANSFER, 0, keccak256(&forged))
            .call()
            .await
            .unwrap(),
        U256::ZERO
    );
}

#[tokio::test]
async fn below_threshold_nothing_moves() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let to = fresh_address("below");
    let req = request_erc20(p, &n.users[0], to, coins(5), U256::ZERO).await;
    let data = handle_data(p, &req).await;
    let supply = erc20(c).totalSupply().call().await.unwrap();
    for op in &n.ops[..2] {
        assert!(vote(c, op, &data).await.is_empty());
    }
    assert_eq!(erc20(c).balanceOf(to).call().await.unwrap(), U256::ZERO);
    assert_eq!(erc20(c).totalSupply().call().await.unwrap(), supply);
    let b = bridge(c);
    assert!(!b.closedValueTransferVotes(0).call().await.unwrap());
    assert_eq!(b.lowerHandleNonce().call().await.unwrap(), 0);
}

#[tokio::test]
async fn late_vote_after_execution_gets_already_executed() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let req = request_native(p, &n.users[0], fresh_address("late"), coins(1), coins(1)).await;
    let data = handle_data(p, &req).await;
    for op in &n.ops[..2] {
        vote(c, op, &data).await;
    }
    assert_eq!(vote(c, &n.ops[2], &data).await, vec![0]);
    // The fourth operator arrives late; so does a re-send by one that already voted.
    for late in [&n.ops[3], &n.ops[0]] {
        match revert_of(c, late.address(), c.bridge, data.clone(), U256::ZERO).await {
            Bridge::BridgeErrors::AlreadyExecuted(e) => assert_eq!(e.requestNonce, 0),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn non_operator_is_refused() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let req = request_native(p, &n.users[0], fresh_address("nonop"), coins(1), coins(1)).await;
    let data = handle_data(p, &req).await;
    let outsider = n.users[3].address();
    match revert_of(c, outsider, c.bridge, data, U256::ZERO).await {
        Bridge::BridgeErrors::NotOperator(e) => assert_eq!(e.caller, outsider),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn plain_coin_transfer_is_refused_and_charge_without_event_funds() {
    let n = net().await;
    let c = &n.d.child;
    let before = balance(c, c.bridge).await;
    let p = c.provider_with(n.users[0].clone());
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(c.bridge)
        .value(coins(1));
    use alloy::providers::Provider;
    assert!(
        p.send_transaction(tx).await.is_err(),
        "no fallback turns a coin transfer into a request"
    );
    let receipt = send_ok(
        c,
        &n.users[0],
        c.bridge,
        encode(Bridge::chargeWithoutEventCall {}),
        coins(7),
    )
    .await;
    assert!(receipt.inner.logs().is_empty(), "funding emits no request");
    assert_eq!(balance(c, c.bridge).await, before + coins(7));
    assert_eq!(bridge(c).requestNonce().call().await.unwrap(), 0);
}
