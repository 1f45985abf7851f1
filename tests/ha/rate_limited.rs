//! Issue 12: a rate-limited provider never stops the agents. Every agent's RPC links go through
//! an HTTP proxy that refuses one request in five, alternately with HTTP 429 + `Retry-After: 1`
//! and JSON-RPC -32005 "rate limit exceeded". Every agent starts (none exits on a limited
//! `eth_chainId` or nonce read), the case 1 load executes exactly once, and the agents count
//! the limits they met.

use crate::support::cluster::{Cluster, ClusterOptions, scaled, spawn_load};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_links_slow_the_agents_but_lose_nothing() {
    let started = Instant::now();
    // `Cluster::start` returns once every agent logged "agent running" (it panics if one exits).
    let mut cluster = Cluster::start(ClusterOptions {
        standby_delay_ms: Some(120_000),
        recovery_secs: 60,
        rate_limit: Some((5, 1)),
        ..ClusterOptions::default()
    })
    .await;
    let start_secs = started.elapsed().as_secs_f64();
    let n = scaled(200, 1000);
    let load_started = Instant::now();
    let traffic = spawn_load(cluster.devnet.clone(), n, Duration::ZERO)
        .await
        .unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(300))
        .await;
    let load_secs = load_started.elapsed().as_secs_f64();
    cluster.check_invariants(&traffic).await;

    for i in 0..cluster.nodes.len() {
        let node = &mut cluster.nodes[i];
        assert!(
            node.is_running(),
            "op{} exited:\n{}",
            i + 1,
            node.log_text()
        );
        let (p, c) = cluster.nodes[i]
            .rate_limit
            .as_ref()
            .expect("rate-limit proxies");
        for (name, proxy) in [("parent", p), ("child", c)] {
            let s = proxy.stats();
            assert!(
                s.http_429 > 0 && s.rpc_32005 > 0,
                "op{} {name}: both kinds of limit served: {s:?}",
                i + 1
            );
        }
        let counted = cluster.metric(i, "bridge_rpc_rate_limited_total").await;
        let served: u64 = [p, c]
            .iter()
            .map(|x| x.stats().http_429 + x.stats().rpc_32005)
            .sum();
        // The agent counts every limit it met on its HTTP endpoints (the metrics scrape itself
        // does not go through the proxy); a scrape a moment later can only be higher.
        assert!(
            counted >= 1.0 && counted <= served as f64,
            "op{}: bridge_rpc_rate_limited_total {counted}, served {served}",
            i + 1
        );
        // One in five is not "most": not degraded.
        assert_eq!(cluster.metric(i, "bridge_rpc_degraded").await, 0.0);
        let log = cluster.nodes[i].log_text();
        assert!(
            !log.contains('\u{1b}'),
            "op{}: ANSI codes in the log file",
            i + 1
        );
        assert!(
            !log.contains("failed on every endpoint"),
            "op{}: a call gave up:\n{}",
            i + 1,
            crate::support::cluster::tail(&log, 40)
        );
    }
    println!(
        "rate-limited (1 in 5): agents up in {start_secs:.1} s, {n} transfers executed in {load_secs:.1} s"
    );
}
