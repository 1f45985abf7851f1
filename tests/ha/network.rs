//! Network failure: while transfers flow, one agent's parent-chain link is cut, another agent's
//! only child-chain endpoint stalls (accepts, never answers), and a third loses the first of its
//! two parent endpoints for good. Once the first two links come back, everything executes.

use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load};
use crate::support::proxy::Mode;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn cut_stalled_and_lost_links_lose_nothing() {
    let cluster = Cluster::start(ClusterOptions {
        backup_rpc: vec![(2, true)],
        ..ClusterOptions::default()
    })
    .await;
    let outage = Duration::from_secs(scaled(10, 30) as u64);
    let load = spawn_load(
        cluster.devnet.clone(),
        scaled(40, 300),
        Duration::from_millis(50),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.link(0, true, Mode::Cut);
    cluster.link(1, false, Mode::Stall);
    cluster.link(2, true, Mode::Cut);
    tokio::time::sleep(outage).await;
    cluster.link(0, true, Mode::Pass);
    cluster.link(1, false, Mode::Pass);
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;
    // The agent that lost one of two endpoints went on through the other.
    let log = cluster.nodes[2].log_text();
    assert!(log.contains("RPC endpoint failed"), "op3 log:\n{log}");
}
