//! kill -9 at random across all agents during load, 20 times, each victim restarted after a
//! random pause: no conflicting vote signed, no stuck nonce, nothing lost.

use crate::support::cluster::{Cluster, ClusterOptions, Rng, scaled, spawn_load};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn twenty_random_kill_9s_during_load_lose_nothing() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let mut rng = Rng::from_env("kill9");
    let load = spawn_load(
        cluster.devnet.clone(),
        scaled(80, 600),
        Duration::from_millis(30),
    );
    for _ in 0..20 {
        tokio::time::sleep(rng.millis(100, 1500)).await;
        let victim = rng.range(0, 4) as usize;
        cluster.kill_agent(victim);
        tokio::time::sleep(rng.millis(0, 1000)).await;
        cluster.start_agent(victim).await;
    }
    let traffic = load.await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;
}
