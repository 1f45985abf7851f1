//! Case 2, node failure: one agent killed mid-load changes nothing; two killed stall the bridge
//! (t = 3 of 4 cannot be reached) without anything wrong executing, and once they are back
//! everything completes.

use crate::support::cluster::{Cluster, ClusterOptions, lower_handle_nonce, scaled, spawn_load};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn case_2_one_agent_killed_mid_load_all_complete() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn case_2_two_agents_killed_stall_then_complete_after_restart() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    cluster.kill_agent(0);
    cluster.kill_agent(3);
    let d = cluster.devnet.clone();
    let (child_before, parent_before) = (
        lower_handle_nonce(&d.child).await,
        lower_handle_nonce(&d.parent).await,
    );
    let traffic = spawn_load(d.clone(), scaled(12, 100), Duration::ZERO)
        .await
        .unwrap();
    // Two of four cannot reach t = 3: nothing executes, however long we wait.
    tokio::time::sleep(Duration::from_secs(scaled(6, 30) as u64)).await;
    assert_eq!(lower_handle_nonce(&d.child).await, child_before);
    assert_eq!(lower_handle_nonce(&d.parent).await, parent_before);
    assert!(
        crate::support::cluster::handled_nonces(&d.child)
            .await
            .is_empty()
            && crate::support::cluster::handled_nonces(&d.parent)
                .await
                .is_empty(),
        "nothing executes below the threshold"
    );
    cluster.start_agent(0).await;
    cluster.start_agent(3).await;
    cluster
        .wait_executed(&traffic, Duration::from_secs(120))
        .await;
    cluster.check_invariants(&traffic).await;
}
