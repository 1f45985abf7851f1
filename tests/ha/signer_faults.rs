//! Signer faults: two of the four agents sign through the aws-kms backend against hsm-sim, which
//! answers slowly, fails 20 % of calls, throttles in bursts, goes down, and then returns wrong
//! signatures (by another key, over another digest) while transfers flow. No transaction with an
//! invalid signature ever reaches a chain, and nothing is lost.

use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load_until};
use alloy::consensus::Transaction;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use bridge_devkit::devnet::Side;
use hsm_sim::{FaultConfig, WrongSignature};
use std::collections::HashSet;
use std::time::Duration;

/// Every transaction on `side` comes from one of `known`: a wrong signature would make a
/// transaction come from some other address.
async fn only_known_senders(side: &Side, known: &HashSet<Address>) -> usize {
    let p = side.reader();
    let head = p.get_block_number().await.unwrap();
    let mut txs = 0;
    for n in 0..=head {
        let block = p
            .get_block_by_number(n.into())
            .full()
            .await
            .unwrap()
            .unwrap();
        for tx in block.transactions.txns() {
            let from = tx.inner.signer();
            assert!(
                known.contains(&from),
                "block {n}: tx {} from unknown {from} (to {:?})",
                tx.inner.hash(),
                tx.inner.to()
            );
            txs += 1;
        }
    }
    txs
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_latency_errors_throttling_outage_and_wrong_signatures_lose_nothing() {
    let cluster = Cluster::start(ClusterOptions {
        kms: vec![2, 3],
        ..ClusterOptions::default()
    })
    .await;
    let sim = cluster.sim.as_ref().expect("hsm-sim for the kms agents");
    let phase = Duration::from_secs(scaled(3, 10) as u64);
    // Transfers flow through every phase, however fast this machine sends them.
    let stop = tokio_util::sync::CancellationToken::new();
    let load = spawn_load_until(
        cluster.devnet.clone(),
        stop.clone(),
        Duration::from_millis(100),
    );
    let faults = [
        FaultConfig {
            latency_ms: 300,
            ..FaultConfig::default()
        },
        FaultConfig {
            error_rate: 0.2,
            ..FaultConfig::default()
        },
        FaultConfig {
            throttle_burst: 30,
            ..FaultConfig::default()
        },
        FaultConfig {
            outage_secs: scaled(5, 20) as f64,
            ..FaultConfig::default()
        },
        FaultConfig {
            wrong_signature: WrongSignature::OtherKey,
            ..FaultConfig::default()
        },
        FaultConfig {
            wrong_signature: WrongSignature::OtherDigest,
            ..FaultConfig::default()
        },
    ];
    for f in faults {
        let outage = f.outage_secs;
        sim.set_faults(f).unwrap();
        tokio::time::sleep(phase.max(Duration::from_secs_f64(outage))).await;
    }
    sim.set_faults(FaultConfig::default()).unwrap();
    stop.cancel();
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;

    let d = &cluster.devnet;
    let mut known: HashSet<Address> = d
        .parent
        .anvil
        .dev_accounts()
        .iter()
        .map(PrivateKeySigner::address)
        .collect();
    known.extend(cluster.nodes.iter().map(|n| n.address));
    let txs =
        only_known_senders(&d.parent, &known).await + only_known_senders(&d.child, &known).await;
    assert!(txs > 0);
    for node in &cluster.nodes[2..] {
        let votes = d
            .child
            .reader()
            .get_transaction_count(node.address)
            .await
            .unwrap();
        assert!(votes > 0, "op{} (KMS) never voted", node.index + 1);
    }
    // Every kind of fault was really served to the agents.
    let stats = sim.stats();
    for kind in [
        "latency",
        "error_rate",
        "throttle_burst",
        "outage",
        "wrong_signature",
    ] {
        assert!(
            stats.faults_of(kind) > 0,
            "no {kind} fault served: {stats:?}"
        );
    }
}
