//! A nonce that cannot reach its threshold costs no repeat votes: the real binary, one operator
//! of two running (threshold 2), so every request stays pending; over several recovery
//! intervals, each of which finds the stall and hands every pending request back to the
//! planner, the operator's account sends exactly one vote per request.
//!
//! The planner skips on its own-vote memory (the mined vote recorded in the store, its receipt
//! still canonical), which is what serves Kaia's bridge too (no `voteOf`, and an identical
//! repeat is mined there); the Kaia-dialect run of the same scenario is in the HA tests.

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use bridge_agent::contracts::Bridge;
use bridge_agent::devnet::{Devnet, DevnetOptions};
use std::time::{Duration, Instant};

mod support;
use support::agent::{Agent, Endpoints, enc, provision_key, send, write_config};

const REQUESTS: u64 = 3;
/// Stalled recovery checks to sit through once every request is voted.
const STALLED_CHECKS: f64 = 4.0;

/// Sum of a metric's samples whose labels contain `labels` (e.g. `reason="late"`).
async fn metric(port: u16, name: &str, labels: &str) -> f64 {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let body = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| !l.starts_with('#') && l.contains(labels))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_nonce_gets_one_vote_per_operator_over_many_recovery_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let operator = provision_key(&dir.path().join("hsm")).await;
    // The second seat belongs to nobody running: no request ever reaches 2 votes.
    let absent = Address::from_word(keccak256("absent operator"));
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: vec![operator, absent],
        value_transfer_threshold: 2,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let config = write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );
    // The planner's reason for each skip, at debug.
    let text = std::fs::read_to_string(&config).unwrap();
    let port: u16 = text
        .split("listen = \"127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|p| p.parse().ok())
        .expect("metrics port in the config");
    std::fs::write(
        &config,
        text.replace(
            "level = \"info\"",
            "level = \"info,bridge_agent::planner=debug\"",
        ),
    )
    .unwrap();
    let agent = Agent::start(&config, dir.path().join("agent.log"));

    let (p, c) = (&d.parent, &d.child);
    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("stuck recipient"));
    for i in 0..REQUESTS {
        send(
            p,
            &user,
            p.bridge,
            enc(Bridge::requestKLAYTransferCall {
                to,
                value: U256::from(10 + i),
                extraData: Bytes::new(),
            }),
            U256::from(10 + i),
        )
        .await;
    }
    // Each request voted once by this operator.
    let sent = || async { c.reader().get_transaction_count(operator).await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(90);
    while sent().await < REQUESTS {
        assert!(
            Instant::now() < deadline,
            "votes not sent in time:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Then several recovery checks that find the stall and hand the requests back.
    let rescans = || metric(port, "bridge_recovery_rescans_total", "parent_to_child");
    let start = rescans().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rescans().await < start + STALLED_CHECKS {
        assert!(
            Instant::now() < deadline,
            "recovery did not find the stall {STALLED_CHECKS} times:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let the last hand-back's plans finish before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let log = agent.log();
    assert_eq!(sent().await, REQUESTS, "repeat votes sent:\n{log}");
    let bridge = Bridge::new(c.bridge, c.reader());
    for n in 0..REQUESTS {
        assert!(
            !bridge.closedValueTransferVotes(n).call().await.unwrap(),
            "nonce {n} executed: the scenario is not stuck"
        );
    }
    assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 0);
    // The skips came from the own-vote memory, once per request per stalled check.
    let skipped = metric(port, "bridge_votes_skipped_total", "reason=\"already_voted\"").await;
    assert!(
        skipped >= STALLED_CHECKS * REQUESTS as f64 - REQUESTS as f64,
        "skipped {skipped}:\n{log}"
    );
    assert!(
        log.contains("own vote recorded and still canonical"),
        "no own-vote skip logged:\n{log}"
    );
    assert_eq!(
        metric(port, "bridge_votes_failed_total", "parent_to_child").await,
        0.0,
        "{log}"
    );
    assert!(agent.stop().success());
}
