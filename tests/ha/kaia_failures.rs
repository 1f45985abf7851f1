//! Kaia-style bridge pair under the faults of issue 5: every agent restarted under load
//! (recovery), one agent killed mid-load (node failure), and t − 1 compromised keys voting forged
//! handles behind their agents' backs, which the agents must see without `Voted` events (the
//! auditor reads the handle transactions). Each ends with the harness's invariants, votes on
//! chain per executed transfer = t included.

use crate::forged_votes::{attacker, forged_handle};
use crate::support::cluster::{Cluster, ClusterOptions, Rng, request_nonce, scaled, spawn_load};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_signer::AlloyAdapter;
use std::time::{Duration, Instant};

fn kaia() -> ClusterOptions {
    ClusterOptions {
        dialect: Dialect::Kaia,
        ..ClusterOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kaia_recovery_all_agents_restarted_during_load_lose_nothing() {
    let mut cluster = Cluster::start(kaia()).await;
    let mut rng = Rng::from_env("kaia recovery");
    let load = spawn_load(
        cluster.devnet.clone(),
        scaled(60, 600),
        Duration::from_millis(40),
    );
    for _ in 0..scaled(5, 10) {
        tokio::time::sleep(rng.millis(300, 2500)).await;
        for i in 0..4 {
            cluster.stop_agent(i).await;
        }
        tokio::time::sleep(rng.millis(200, 2000)).await;
        cluster.start_agents(&[0, 1, 2, 3]).await;
    }
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kaia_node_failure_one_agent_killed_mid_load_all_complete() {
    let mut cluster = Cluster::start(kaia()).await;
    let load = spawn_load(
        cluster.devnet.clone(),
        scaled(40, 300),
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill_agent(1);
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(120))
        .await;
    cluster.start_agent(1).await;
    cluster.check_invariants(&traffic).await;
}

/// The compromised operators (t − 1 = 2 of 4).
const COMPROMISED: [usize; 2] = [0, 1];
const INVENTED_NONCE: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn kaia_forged_votes_by_t_minus_1_keys_never_execute_and_are_seen_without_voted_events() {
    let mut cluster = Cluster::start(kaia()).await;
    cluster.compromised = COMPROMISED.to_vec();
    let d = cluster.devnet.clone();
    let thief = Address::repeat_byte(0x66);
    let next = request_nonce(&d.parent).await;
    let forged = [
        forged_handle(next, thief, 1),
        forged_handle(next + 1, thief, 1_000_000),
        forged_handle(INVENTED_NONCE, thief, 10u64.pow(18)),
    ];
    for i in COMPROMISED {
        let wallet =
            EthereumWallet::from(AlloyAdapter::new(attacker(i).await, Some(d.child.chain_id)));
        let p = ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(d.child.rpc_url().parse().unwrap());
        for data in &forged {
            let tx = TransactionRequest::default()
                .with_to(d.child.bridge)
                .with_input(data.clone())
                .with_gas_limit(500_000);
            let receipt = p
                .send_transaction(tx)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(receipt.status(), "a forged vote is only a vote: it mines");
            assert!(receipt.inner.logs().is_empty(), "and says nothing");
        }
    }
    let child = Bridge::new(d.child.bridge, d.child.reader());
    let traffic = spawn_load(d.clone(), 24, Duration::ZERO).await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(120))
        .await;
    cluster.check_invariants(&traffic).await;
    assert!(
        !child
            .closedValueTransferVotes(INVENTED_NONCE)
            .call()
            .await
            .unwrap(),
        "the invented nonce never executes"
    );
    assert_eq!(
        d.child.reader().get_balance(thief).await.unwrap(),
        U256::ZERO
    );

    // Every agent saw the 6 forged votes (2 keys × 3 handles) from the transactions alone.
    for i in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = cluster.metric(i, "bridge_forged_votes_seen_total").await;
            if seen >= 6.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "op{} counted {seen} forged votes, expected 6\n{}",
                i + 1,
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // …and no honest vote was taken for a forged one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..4 {
        assert_eq!(
            cluster.metric(i, "bridge_forged_votes_seen_total").await,
            6.0,
            "op{}\n{}",
            i + 1,
            cluster.log_tails()
        );
        assert!(cluster.nodes[i].log_text().contains("forged_vote"));
    }
    for i in COMPROMISED {
        let log = cluster.nodes[i].log_text();
        assert!(
            log.contains("conflicting_vote_on_chain"),
            "op{} log:\n{log}",
            i + 1
        );
    }
}
