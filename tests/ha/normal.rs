//! Case 1, normal operation: transfers of every token type both ways, all agents up, on our
//! bridge and on the Kaia-style one. Who voted is read from the handle transactions in the
//! blocks (Kaia's bridge has no `Voted` event), the same way for both.

use crate::support::chain_votes::{handle_txs, ok_by_nonce};
use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load};
use alloy::primitives::Address;
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use bridge_agent::dialect::Dialect;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn case_1_normal_load_executes_everything_exactly_once() {
    case_1(Dialect::Ours, scaled(200, 1000)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kaia_case_1_normal_load_executes_everything_exactly_once_with_t_votes() {
    case_1(Dialect::Kaia, scaled(90, 1000)).await;
}

async fn case_1(dialect: Dialect, n: usize) {
    let cluster = Cluster::start(ClusterOptions {
        dialect,
        // Long enough that no standby seat votes while everyone is up (and no recovery rescan
        // feeds a request early): each transfer then gets exactly the t votes whose turn it is.
        standby_delay_ms: Some(120_000),
        recovery_secs: 60,
        ..ClusterOptions::default()
    })
    .await;
    let traffic = spawn_load(cluster.devnet.clone(), n, Duration::ZERO)
        .await
        .unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    // Includes: votes on chain per executed transfer = t, every vote the voter's journal's.
    cluster.check_invariants(&traffic).await;

    // Seats take turns: nonce k is voted by the t seats from k mod N on, and by nobody else.
    let d = &cluster.devnet;
    for (name, dest) in [("child", &d.child), ("parent", &d.parent)] {
        let bridge = Bridge::new(dest.bridge, dest.reader());
        let seats = bridge.getOperatorList().call().await.unwrap();
        let t = usize::from(
            bridge
                .operatorThresholds(VOTE_TYPE_VALUE_TRANSFER)
                .call()
                .await
                .unwrap(),
        );
        let txs = handle_txs(dest).await;
        let by_nonce = ok_by_nonce(&txs);
        assert!(!by_nonce.is_empty(), "{name}: no votes seen");
        for (nonce, votes) in by_nonce {
            let first = (nonce % seats.len() as u64) as usize;
            let mut turn: Vec<Address> = (0..t).map(|r| seats[(first + r) % seats.len()]).collect();
            let mut voters: Vec<Address> = votes.iter().map(|h| h.from).collect();
            voters.sort();
            turn.sort();
            assert_eq!(
                voters,
                turn,
                "{name} nonce {nonce}: voters are not the seats whose turn it was\n{}",
                cluster.log_tails()
            );
        }
        assert!(
            txs.iter().all(|h| h.ok),
            "{name}: a handle transaction reverted\n{}",
            cluster.log_tails()
        );
    }
}
