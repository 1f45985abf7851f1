//! Case 1, normal operation: transfers of every token type both ways, all agents up.

use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load};
use alloy::primitives::Address;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use bridge_agent::devnet::Side;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn case_1_normal_load_executes_everything_exactly_once() {
    let cluster = Cluster::start(ClusterOptions {
        // Long enough that no standby seat votes while everyone is up (and no recovery rescan
        // feeds a request early): each transfer then gets exactly the t votes whose turn it is.
        standby_delay_ms: Some(120_000),
        recovery_secs: 60,
        ..ClusterOptions::default()
    })
    .await;
    let n = scaled(200, 1000);
    let traffic = spawn_load(cluster.devnet.clone(), n, Duration::ZERO)
        .await
        .unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
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
        let votes = votes_by_nonce(dest).await;
        assert!(!votes.is_empty(), "{name}: no votes seen");
        for (nonce, mut voters) in votes {
            let first = (nonce % seats.len() as u64) as usize;
            let mut turn: Vec<Address> = (0..t).map(|r| seats[(first + r) % seats.len()]).collect();
            voters.sort();
            turn.sort();
            assert_eq!(
                voters,
                turn,
                "{name} nonce {nonce}: voters are not the seats whose turn it was\n{}",
                cluster.log_tails()
            );
        }
    }
}

/// The operators that voted each value-transfer nonce on `dest`.
async fn votes_by_nonce(dest: &Side) -> BTreeMap<u64, Vec<Address>> {
    let filter = Filter::new()
        .address(dest.bridge)
        .from_block(dest.bridge_deploy_block)
        .event_signature(Bridge::Voted::SIGNATURE_HASH);
    let mut by_nonce: BTreeMap<u64, Vec<Address>> = BTreeMap::new();
    for log in alloy::providers::Provider::get_logs(&dest.reader(), &filter)
        .await
        .unwrap()
    {
        let v = log.log_decode::<Bridge::Voted>().unwrap().inner.data;
        if v.voteType == VOTE_TYPE_VALUE_TRANSFER {
            by_nonce.entry(v.nonce).or_default().push(v.operator);
        }
    }
    by_nonce
}
