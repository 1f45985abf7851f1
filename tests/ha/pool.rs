//! The node's pool under the agents (issue 12): the child mines every 500 ms (not on each
//! transaction), so votes wait in its pool. The node drops every pending transaction while
//! votes are in it; an operator's own key sends a transaction by hand (through its SoftHSM
//! token, not its agent) and takes a nonce the agent wanted; an agent is killed with votes
//! pending and restarted over them. Nothing is lost or executed twice, no agent stops, no
//! replacement is refused as underpriced, and no operator is left with a queued transaction.

use crate::support::cluster::{Cluster, ClusterOptions, MODULE, PIN, SoftHsm, pool_entries};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use bridge_devkit::demo::traffic::Traffic;
use bridge_devkit::devnet::Devnet;
use bridge_signer::AlloyAdapter;
use bridge_signer::pkcs11::{Pkcs11Config, Pkcs11Signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Operator `i`'s key straight from its token (no agent, no guard).
async fn by_hand(i: usize) -> Pkcs11Signer {
    let config: Pkcs11Config = toml::from_str(&format!(
        "module = \"{MODULE}\"\ntoken_label = \"{}\"\nkey_label = \"operator\"\npin = {{ env = \"UNUSED\" }}\n",
        SoftHsm::token_label(i)
    ))
    .unwrap();
    Pkcs11Signer::with_pin(&config, bridge_signer::Pin::new(PIN))
        .await
        .unwrap()
}

/// Mines a child block every 500 ms unless paused.
fn child_miner(d: Arc<Devnet>, paused: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if !paused.load(Ordering::Relaxed) {
                let _ = d.child.reader().anvil_mine(Some(1), None).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Operator transactions in the child's pool, per operator index.
async fn in_pool(cluster: &Cluster) -> Vec<usize> {
    let entries = pool_entries(&cluster.devnet.child).await;
    cluster
        .nodes
        .iter()
        .map(|n| {
            entries
                .iter()
                .filter(|(from, _, _)| *from == n.address)
                .count()
        })
        .collect()
}

async fn wait_for(what: &str, cluster: &Cluster, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 60 s\n{}",
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_pool_a_foreign_send_and_a_killed_agents_leftovers_are_all_absorbed() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let d = cluster.devnet.clone();
    let child = d.child.reader();
    child.anvil_set_auto_mine(false).await.unwrap();
    let paused = Arc::new(AtomicBool::new(false));
    let miner = child_miner(d.clone(), Arc::clone(&paused));
    let mut traffic = Traffic::new(&d);

    // 1. The node drops every pending transaction while votes wait in it (three times).
    let mut dropped = 0;
    for _ in 0..3 {
        // Both ways, ending with a parent → child request (the parent mines at once), so its
        // votes are in the child's pool now; every user request was mined (send_next waits).
        traffic.send_next(&d).await.unwrap();
        while !traffic.send_next(&d).await.unwrap().p2c {}
        wait_for("votes in the child's pool", &cluster, async || {
            in_pool(&cluster).await.iter().sum::<usize>() > 0
        })
        .await;
        dropped += in_pool(&cluster).await.iter().sum::<usize>();
        child.anvil_drop_all_transactions().await.unwrap();
    }

    // 2. Operator 2's key sends a transaction by hand at the account's next mined nonce, with
    //    fees that displace a vote of its agent pending there (if any): the agent wanted it.
    let hand = ProviderBuilder::new()
        .wallet(EthereumWallet::from(AlloyAdapter::new(
            by_hand(1).await,
            Some(d.child.chain_id),
        )))
        .connect_http(d.child.rpc_url().parse().unwrap());
    let op2 = cluster.nodes[1].address;
    let mut taken = None;
    for _ in 0..10 {
        let nonce = child.get_transaction_count(op2).latest().await.unwrap();
        let tx = TransactionRequest::default()
            .with_to(Address::repeat_byte(0x42))
            .with_value(U256::from(1))
            .with_nonce(nonce)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(1_000_000_000_000)
            .with_max_priority_fee_per_gas(500_000_000_000);
        // A vote of the agent mined at that nonce meanwhile: "nonce too low"; try the next.
        if let Ok(pending) = hand.send_transaction(tx).await {
            let receipt = pending.get_receipt().await.unwrap();
            assert!(receipt.status());
            taken = Some(nonce);
            break;
        }
    }
    let taken = taken.expect("a transaction by hand got in");
    eprintln!("op2's key took child nonce {taken} by hand");
    for _ in 0..4 {
        traffic.send_next(&d).await.unwrap();
    }

    // 3. Operator 3 is killed with votes in the pool, and restarted over them.
    let victim = 2;
    if traffic.sent().len() % 2 == 1 {
        traffic.send_next(&d).await.unwrap(); // child → parent, while the child still mines
    }
    paused.store(true, Ordering::Relaxed);
    // A parent → child request (the parent mines at once): its votes wait in the child's pool
    // (a standby seat's too, once nothing executes for its delay).
    assert!(traffic.send_next(&d).await.unwrap().p2c);
    wait_for("the victim's votes in the pool", &cluster, async || {
        in_pool(&cluster).await[victim] >= 1
    })
    .await;
    let left = in_pool(&cluster).await[victim];
    cluster.kill_agent(victim);
    cluster.start_agent(victim).await;
    paused.store(false, Ordering::Relaxed);

    cluster
        .wait_executed(&traffic, Duration::from_secs(90))
        .await;
    for node in &mut cluster.nodes {
        assert!(node.is_running(), "op{} stopped", node.index + 1);
    }
    miner.abort();
    child.anvil_set_auto_mine(true).await.unwrap();
    cluster.check_invariants(&traffic).await;

    let mut resent = 0.0;
    for i in 0..cluster.nodes.len() {
        resent += cluster.metric(i, "bridge_tx_nonce_repairs_total").await;
    }
    eprintln!(
        "votes dropped from the pool {dropped}, victim's votes left pending {left}, repairs {resent}"
    );
    assert!(dropped > 0 && resent >= 1.0, "the drops were not repaired");
    let victim_log = cluster.nodes[victim].log_text();
    assert!(
        victim_log.contains("tracking an earlier run's vote"),
        "the restarted agent did not take its leftovers over:\n{}",
        cluster.log_tails()
    );
    for node in &cluster.nodes {
        assert!(
            !node
                .log_text()
                .contains("replacement transaction underpriced"),
            "op{} fought a leftover",
            node.index + 1
        );
    }
}
