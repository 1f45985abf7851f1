//! Operator key rotation: two steps (the current key proposes, the new key accepts), and the
//! owner and configuration-vote paths. The old address loses its vote; the new one gains it.

use crate::support::*;
use alloy::primitives::{Address, U256, keccak256};
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};

#[tokio::test]
async fn two_step_rotation_moves_the_seat_and_the_vote() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let old = &n.ops[0];
    let new = &n.users[4]; // a funded dev account with no seat
    let req = request_native(
        p,
        &n.users[0],
        fresh_address("rotation"),
        coins(1),
        coins(1),
    )
    .await;
    let data = handle_data(p, &req).await;
    let key = keccak256(&data);
    vote(c, old, &data).await;
    let b = bridge(c);
    assert_eq!(
        b.voteCount(VOTE_TYPE_VALUE_TRANSFER, 0, key)
            .call()
            .await
            .unwrap(),
        U256::from(1)
    );

    // Step one: the old key proposes.
    let receipt = send_ok(
        c,
        old,
        c.bridge,
        encode(Bridge::proposeOperatorKeyCall {
            newOperator: new.address(),
        }),
        U256::ZERO,
    )
    .await;
    let ev = receipt.inner.logs()[0]
        .log_decode::<Bridge::OperatorKeyProposed>()
        .unwrap()
        .inner
        .data;
    assert_eq!(
        (ev.operator, ev.newOperator),
        (old.address(), new.address())
    );
    assert_eq!(
        b.pendingOperatorKey(old.address()).call().await.unwrap(),
        new.address()
    );
    // Only the proposed address can accept.
    let accept = encode(Bridge::acceptOperatorKeyCall {
        oldOperator: old.address(),
    });
    match revert_of(
        c,
        n.users[3].address(),
        c.bridge,
        accept.clone(),
        U256::ZERO,
    )
    .await
    {
        Bridge::BridgeErrors::NoPendingOperatorKey(e) => assert_eq!(e.caller, n.users[3].address()),
        other => panic!("unexpected {other:?}"),
    }
    let list_before = b.getOperatorList().call().await.unwrap();

    // Step two: the new key accepts; the seat moves, in place.
    let receipt = send_ok(c, new, c.bridge, accept, U256::ZERO).await;
    let ev = receipt.inner.logs()[0]
        .log_decode::<Bridge::OperatorReplaced>()
        .unwrap()
        .inner
        .data;
    assert_eq!(
        (ev.oldOperator, ev.newOperator),
        (old.address(), new.address())
    );
    assert!(!b.operators(old.address()).call().await.unwrap());
    assert!(b.operators(new.address()).call().await.unwrap());
    let list_after = b.getOperatorList().call().await.unwrap();
    let pos = list_before
        .iter()
        .position(|a| *a == old.address())
        .unwrap();
    assert_eq!(list_after[pos], new.address());
    assert_eq!(
        b.pendingOperatorKey(old.address()).call().await.unwrap(),
        Address::ZERO
    );

    // The old address's vote no longer counts, and it cannot vote again.
    assert_eq!(
        b.voteCount(VOTE_TYPE_VALUE_TRANSFER, 0, key)
            .call()
            .await
            .unwrap(),
        U256::ZERO
    );
    match revert_of(c, old.address(), c.bridge, data.clone(), U256::ZERO).await {
        Bridge::BridgeErrors::NotOperator(e) => assert_eq!(e.caller, old.address()),
        other => panic!("unexpected {other:?}"),
    }
    // The new address votes for the seat: with two others the transfer executes.
    assert!(vote(c, new, &data).await.is_empty());
    assert!(vote(c, &n.ops[1], &data).await.is_empty());
    assert_eq!(vote(c, &n.ops[2], &data).await, vec![0]);
}

#[tokio::test]
async fn owner_and_configuration_vote_can_replace_an_operator() {
    let n = net().await;
    let c = &n.d.child;
    let b = bridge(c);
    let (a, z) = (n.users[3].address(), n.users[4].address());

    let call = Bridge::ownerReplaceOperatorCall {
        oldOperator: n.ops[3].address(),
        newOperator: a,
    };
    send_ok(c, &n.owner, c.bridge, encode(call), U256::ZERO).await;
    assert!(b.operators(a).call().await.unwrap());
    assert!(!b.operators(n.ops[3].address()).call().await.unwrap());

    // Configuration vote: three operators replace operator 2 with `z`; two votes are not enough.
    let call = encode(Bridge::replaceOperatorCall {
        oldOperator: n.ops[2].address(),
        newOperator: z,
        nonce: 0,
    });
    for op in &n.ops[..2] {
        send_ok(c, op, c.bridge, call.clone(), U256::ZERO).await;
    }
    assert!(
        !b.operators(z).call().await.unwrap(),
        "below the configuration threshold"
    );
    send_ok(c, &n.ops[2], c.bridge, call, U256::ZERO).await;
    assert!(b.operators(z).call().await.unwrap());
    assert!(!b.operators(n.ops[2].address()).call().await.unwrap());
    assert_eq!(b.configurationNonce().call().await.unwrap(), 1);
    assert_eq!(b.getOperatorList().call().await.unwrap().len(), 4);

    // A seat cannot be handed to an address that already holds one.
    let dup = Bridge::ownerReplaceOperatorCall {
        oldOperator: n.ops[0].address(),
        newOperator: z,
    };
    assert!(matches!(
        revert_of(c, n.owner.address(), c.bridge, encode(dup), U256::ZERO).await,
        Bridge::BridgeErrors::AlreadyOperator(_)
    ));
}
