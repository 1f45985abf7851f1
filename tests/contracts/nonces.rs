//! Handle-nonce bookkeeping: handles may execute out of order; `lowerHandleNonce`,
//! `upperHandleNonce`, `handleNoncesToBlockNums` and `recoveryBlockNumber` tell recovery where
//! to rescan after each one.

use crate::support::*;
use alloy::primitives::Bytes;

#[tokio::test]
async fn out_of_order_handles_keep_recovery_bookkeeping() {
    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let mut reqs = Vec::new();
    for i in 0..3u64 {
        let to = fresh_address(&format!("ooo {i}"));
        reqs.push(request_native(p, &n.users[0], to, coins(1), coins(1)).await);
    }
    assert_eq!(
        reqs.iter().map(|r| r.nonce).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let blocks: Vec<u64> = reqs.iter().map(|r| r.block_number).collect();
    assert!(
        blocks[0] < blocks[1] && blocks[1] < blocks[2],
        "one request per block"
    );
    let mut data = Vec::new();
    for r in &reqs {
        data.push(handle_data(p, r).await);
    }
    let b = bridge(c);
    let state = || async {
        (
            b.lowerHandleNonce().call().await.unwrap(),
            b.upperHandleNonce().call().await.unwrap(),
            b.recoveryBlockNumber().call().await.unwrap(),
        )
    };
    assert_eq!(state().await, (0, 0, 1), "fresh bridge");

    let ops = &n.ops[..3];
    let execute = |d: Bytes| async move {
        let mut executed = Vec::new();
        for op in ops {
            executed.extend(vote(c, op, &d).await);
        }
        executed
    };
    assert_eq!(execute(data[2].clone()).await, vec![2]);
    assert_eq!(
        state().await,
        (0, 2, 1),
        "nonce 2 alone: lower stays, upper moves"
    );
    assert_eq!(
        b.handleNoncesToBlockNums(2).call().await.unwrap(),
        blocks[2]
    );

    assert_eq!(execute(data[0].clone()).await, vec![0]);
    assert_eq!(
        state().await,
        (1, 2, blocks[0]),
        "nonce 0: lower passes it, recovery at its block"
    );

    assert_eq!(execute(data[1].clone()).await, vec![1]);
    assert_eq!(
        state().await,
        (3, 2, blocks[2]),
        "nonce 1 closes the gap up to 2"
    );
    for (i, blk) in blocks.iter().enumerate() {
        assert_eq!(
            b.handleNoncesToBlockNums(i as u64).call().await.unwrap(),
            *blk
        );
        assert!(b.closedValueTransferVotes(i as u64).call().await.unwrap());
    }
    assert_eq!(bridge(p).requestNonce().call().await.unwrap(), 3);
}

/// The agent prices a vote before the others arrive: its gas limit is the estimate of a vote
/// that does not execute, plus the agent's margins. If the others land first, that same vote
/// executes the transfer and sweeps `lowerHandleNonce` over every nonce already executed out of
/// order (up to `MAX_HANDLE_NONCE_ADVANCE`). The margins must cover the longest sweep: the
/// throughput bench saw hundreds of votes run out of gas when they did not.
#[tokio::test]
async fn the_agents_gas_limit_covers_the_longest_lower_nonce_sweep() {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    use alloy::rpc::types::TransactionRequest;
    use alloy::signers::local::PrivateKeySigner;
    use bridge_agent::txmgr::{GAS_EXTRA, GAS_MARGIN_PERCENT};

    let n = net().await;
    let (p, c) = (&n.d.parent, &n.d.child);
    let sweep = bridge(c).MAX_HANDLE_NONCE_ADVANCE().call().await.unwrap();
    let to = fresh_address("sweep");
    let mut data = Vec::new();
    // Nonces 0..sweep: executing 0 last walks the longest sweep the bridge allows.
    for _ in 0..sweep {
        let r = request_native(p, &n.users[0], to, coins(1), coins(1)).await;
        data.push(handle_data(p, &r).await);
    }
    // Every nonce but 0 executes; lowerHandleNonce stays at 0. One stream per operator, each
    // vote with room for whatever it ends up executing.
    let votes_of = |op: &PrivateKeySigner| {
        let (data, p) = (&data[1..], c.provider_with(op.clone()));
        async move {
            for d in data {
                let tx = TransactionRequest::default()
                    .with_to(c.bridge)
                    .with_input(d.clone())
                    .with_gas_limit(5_000_000);
                let r = p.send_transaction(tx).await.unwrap().get_receipt().await;
                assert!(r.unwrap().status());
            }
        }
    };
    tokio::join!(
        votes_of(&n.ops[0]),
        votes_of(&n.ops[1]),
        votes_of(&n.ops[2])
    );
    assert_eq!(bridge(c).lowerHandleNonce().call().await.unwrap(), 0);

    let estimate = |from| {
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(c.bridge)
            .with_input(data[0].clone());
        async move { c.reader().estimate_gas(tx).await.unwrap() }
    };
    vote(c, &n.ops[0], &data[0]).await;
    let priced = estimate(n.ops[2].address()).await;
    let limit = priced + priced * GAS_MARGIN_PERCENT / 100 + GAS_EXTRA;
    vote(c, &n.ops[1], &data[0]).await;
    let needed = estimate(n.ops[2].address()).await;
    assert!(
        needed <= limit,
        "the executing, sweeping vote needs {needed} gas; the agent's limit from a \
         non-executing estimate of {priced} is {limit}"
    );
    let receipt = c
        .provider_with(n.ops[2].clone())
        .send_transaction(
            TransactionRequest::default()
                .with_to(c.bridge)
                .with_input(data[0].clone())
                .with_gas_limit(limit),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(
        receipt.status(),
        "the sweeping vote ran out of gas at {limit}"
    );
    assert_eq!(bridge(c).lowerHandleNonce().call().await.unwrap(), sweep);
}
