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
