//! The talk's recovery test: every agent stopped and started again, 10 times at random
//! intervals, while transfers flow both ways without pause. Nothing lost, nothing doubled.

use crate::support::cluster::{Cluster, ClusterOptions, Rng, scaled, spawn_load};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn all_agents_stopped_and_started_10_times_during_load_lose_nothing() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let mut rng = Rng::from_env("recovery");
    let load = spawn_load(
        cluster.devnet.clone(),
        scaled(80, 600),
        Duration::from_millis(40),
    );
    for _ in 0..10 {
        tokio::time::sleep(rng.millis(300, 2500)).await;
        for i in 0..4 {
            cluster.stop_agent(i).await;
        }
        tokio::time::sleep(rng.millis(200, 2000)).await;
        for i in 0..4 {
            cluster.start_agent(i).await;
        }
    }
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;
}
