//! Case 1, normal operation: transfers of every token type both ways, all agents up.

use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn case_1_normal_load_executes_everything_exactly_once() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let n = scaled(200, 1000);
    let traffic = spawn_load(cluster.devnet.clone(), n, Duration::ZERO)
        .await
        .unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(180))
        .await;
    cluster.check_invariants(&traffic).await;
}
