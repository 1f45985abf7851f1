//! Owner administration: pause of requests, threshold validation on every operator change,
//! owner-only access, and an event for each change.

use crate::support::*;
use alloy::primitives::U256;
use alloy::sol_types::SolEvent;
use bridge_agent::contracts::{Bridge, VOTE_TYPE_CONFIGURATION, VOTE_TYPE_VALUE_TRANSFER};

#[tokio::test]
async fn pause_stops_requests_but_not_handles() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let user = &n.users[0];
    let to = fresh_address("pause");
    let req = request_native(p, user, to, coins(1), coins(1)).await;

    let receipt = send_ok(
        p,
        &n.owner,
        p.bridge,
        encode(Bridge::startCall { status: false }),
        U256::ZERO,
    )
    .await;
    let ev = receipt.inner.logs()[0]
        .log_decode::<Bridge::RunningStatusChanged>()
        .unwrap();
    assert!(!ev.inner.data.isRunning);
    assert!(!bridge(p).isRunning().call().await.unwrap());
    let call = Bridge::requestKLAYTransferCall {
        to,
        value: coins(1),
        extraData: Default::default(),
    };
    assert!(matches!(
        revert_of(p, user.address(), p.bridge, encode(call.clone()), coins(1)).await,
        Bridge::BridgeErrors::BridgeNotRunning(_)
    ));

    // Pausing the child's requests does not stop handles there: the transfer in flight lands.
    send_ok(
        c,
        &n.owner,
        c.bridge,
        encode(Bridge::startCall { status: false }),
        U256::ZERO,
    )
    .await;
    let data = handle_data(p, &req).await;
    let mut executed = Vec::new();
    for op in &n.ops[..3] {
        executed.extend(vote(c, op, &data).await);
    }
    assert_eq!(executed, vec![0]);
    assert_eq!(balance(c, to).await, coins(1));

    send_ok(
        p,
        &n.owner,
        p.bridge,
        encode(Bridge::startCall { status: true }),
        U256::ZERO,
    )
    .await;
    let req2 = request_from(&send_ok(p, user, p.bridge, encode(call), coins(1)).await);
    assert_eq!(req2.nonce, 1, "requests resume");
}

#[tokio::test]
async fn thresholds_are_revalidated_on_every_operator_change() {
    let n = net().await; // 4 operators, thresholds 3
    let c = &n.d.child;
    let owner = n.owner.address();
    let set = |t: u8, vote_type: u8| {
        encode(Bridge::setOperatorThresholdCall {
            voteType: vote_type,
            threshold: t,
        })
    };
    match revert_of(
        c,
        owner,
        c.bridge,
        set(5, VOTE_TYPE_VALUE_TRANSFER),
        U256::ZERO,
    )
    .await
    {
        Bridge::BridgeErrors::InvalidThreshold(e) => assert_eq!(
            (e.threshold, e.operatorCount),
            (U256::from(5), U256::from(4))
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        revert_of(
            c,
            owner,
            c.bridge,
            set(0, VOTE_TYPE_CONFIGURATION),
            U256::ZERO
        )
        .await,
        Bridge::BridgeErrors::InvalidThreshold(_)
    ));
    assert!(matches!(
        revert_of(c, owner, c.bridge, set(1, 7), U256::ZERO).await,
        Bridge::BridgeErrors::UnknownVoteType(_)
    ));

    // 4 → 3 operators keeps t=3 reachable; 3 → 2 would not, so it is refused.
    let dereg = |op| encode(Bridge::deregisterOperatorCall { operator: op });
    let receipt = send_ok(c, &n.owner, c.bridge, dereg(n.ops[3].address()), U256::ZERO).await;
    assert_eq!(
        receipt.inner.logs()[0].topic0(),
        Some(&Bridge::OperatorDeregistered::SIGNATURE_HASH)
    );
    assert_eq!(bridge(c).getOperatorList().call().await.unwrap().len(), 3);
    match revert_of(c, owner, c.bridge, dereg(n.ops[2].address()), U256::ZERO).await {
        Bridge::BridgeErrors::InvalidThreshold(e) => assert_eq!(e.operatorCount, U256::from(2)),
        other => panic!("unexpected {other:?}"),
    }
    // Lower the thresholds first, and the removal goes through.
    send_ok(
        c,
        &n.owner,
        c.bridge,
        set(2, VOTE_TYPE_VALUE_TRANSFER),
        U256::ZERO,
    )
    .await;
    send_ok(
        c,
        &n.owner,
        c.bridge,
        set(2, VOTE_TYPE_CONFIGURATION),
        U256::ZERO,
    )
    .await;
    send_ok(c, &n.owner, c.bridge, dereg(n.ops[2].address()), U256::ZERO).await;
    assert!(
        !bridge(c)
            .operators(n.ops[2].address())
            .call()
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn removed_operator_votes_stop_counting() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let to = fresh_address("removed");
    let req = request_native(p, &n.users[0], to, coins(1), coins(1)).await;
    let data = handle_data(p, &req).await;
    vote(c, &n.ops[3], &data).await;
    vote(c, &n.ops[0], &data).await;
    send_ok(
        c,
        &n.owner,
        c.bridge,
        encode(Bridge::deregisterOperatorCall {
            operator: n.ops[3].address(),
        }),
        U256::ZERO,
    )
    .await;
    // Two current votes plus a removed one is still below 3.
    assert!(vote(c, &n.ops[1], &data).await.is_empty());
    assert_eq!(balance(c, to).await, U256::ZERO);
    assert_eq!(vote(c, &n.ops[2], &data).await, vec![0]);
}

#[tokio::test]
async fn admin_calls_are_owner_only() {
    let n = net().await;
    let c = &n.d.child;
    let op = n.ops[0].address();
    let calls = [
        encode(Bridge::startCall { status: false }),
        encode(Bridge::registerOperatorCall { operator: op }),
        encode(Bridge::setFeeReceiverCall { receiver: op }),
        encode(Bridge::registerTokenCall {
            token: op,
            counterpartToken: op,
        }),
        encode(Bridge::setOperatorThresholdCall {
            voteType: 0,
            threshold: 1,
        }),
    ];
    for call in calls {
        match revert_of(c, op, c.bridge, call, U256::ZERO).await {
            Bridge::BridgeErrors::OwnableUnauthorizedAccount(e) => assert_eq!(e.account, op),
            other => panic!("unexpected {other:?}"),
        }
    }
}
