//! A nonce that cannot reach its threshold costs no repeat votes, on both dialects: the real
//! binary, one operator of two running (threshold 2), so every request stays pending; over
//! several recovery intervals, each of which finds the stall and hands every pending request
//! back to the planner, the operator's account sends exactly one vote per request. On Kaia's
//! dialect (no `voteOf`, and an identical repeat is mined and paid) only the own-vote memory
//! stops the repeats: the mined vote recorded in the store, its receipt still canonical.
//!
//! Then, on Kaia's dialect, a payout the recipient refuses: the closing vote would revert
//! ("handleKLAYTransfer: transfer failed"), so the agent raises one alarm, counts the request
//! in `bridge_unexecutable_requests` and never votes on it again, while later nonces execute.

use alloy::primitives::{Address, keccak256};
use alloy::providers::Provider;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_devkit::devnet::kaia::RefusingReceiver;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "one_agent/mod.rs"]
mod one_agent;
mod support;
use one_agent::{metric, plain, request_native, sit_through_stalled_checks, start, wait_sent};
use support::agent::provision_key;

const REQUESTS: u64 = 3;
/// Stalled recovery checks to sit through once every request is voted.
const STALLED_CHECKS: f64 = 4.0;

async fn stuck_nonces_get_one_vote_each(dir: &Path, dialect: Dialect, operator: Address) {
    // The second seat belongs to nobody running: no request ever reaches 2 votes.
    let absent = Address::from_word(keccak256("absent operator"));
    let (d, agent, port) = start(dir, dialect, vec![operator, absent], 2).await;
    let to = Address::from_word(keccak256("stuck recipient"));
    for i in 0..REQUESTS {
        request_native(&d, to, 10 + i).await;
    }
    wait_sent(&d, operator, REQUESTS, &agent).await;
    sit_through_stalled_checks(port, STALLED_CHECKS, &agent).await;

    let log = agent.log();
    let c = &d.child;
    let sent = c.reader().get_transaction_count(operator).await.unwrap();
    assert_eq!(sent, REQUESTS, "{dialect}: repeat votes sent:\n{log}");
    let bridge = Bridge::new(c.bridge, c.reader());
    for n in 0..REQUESTS {
        assert!(
            !bridge.closedValueTransferVotes(n).call().await.unwrap(),
            "{dialect}: nonce {n} executed: the scenario is not stuck"
        );
    }
    assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 0);
    // The skips came from the own-vote memory, once per request per stalled check.
    let skipped = metric(
        port,
        "bridge_votes_skipped_total",
        "reason=\"already_voted\"",
    )
    .await;
    assert!(
        skipped >= STALLED_CHECKS * REQUESTS as f64 - REQUESTS as f64,
        "{dialect}: skipped {skipped}:\n{log}"
    );
    assert!(
        log.contains("own vote recorded and still canonical"),
        "{dialect}: no own-vote skip logged:\n{log}"
    );
    assert_eq!(
        metric(port, "bridge_votes_failed_total", "parent_to_child").await,
        0.0,
        "{dialect}: {log}"
    );
    assert!(agent.stop().success());
}

async fn refused_payout_is_one_alarm_and_no_votes(dir: &Path, operator: Address) {
    let (d, agent, port) = start(dir, Dialect::Kaia, vec![operator], 1).await;
    let c = &d.child;
    let refusing = *RefusingReceiver::deploy(c.provider_with(d.owner()))
        .await
        .unwrap()
        .address();
    // Nonce 0 → a contract that refuses coins; nonce 1 → a plain address.
    request_native(&d, refusing, 5).await;
    request_native(&d, Address::from_word(keccak256("fine recipient")), 6).await;
    let bridge = Bridge::new(c.bridge, c.reader());
    let deadline = Instant::now() + Duration::from_secs(90);
    while !bridge.closedValueTransferVotes(1).call().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "nonce 1 not executed:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sit_through_stalled_checks(port, STALLED_CHECKS, &agent).await;
    let log = plain(&agent.log());
    assert!(!bridge.closedValueTransferVotes(0).call().await.unwrap());
    assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 0, "{log}");
    // One vote (nonce 1's): the refused one was caught by the estimate, and never retried.
    let sent = c.reader().get_transaction_count(operator).await.unwrap();
    assert_eq!(sent, 1, "{log}");
    assert_eq!(
        log.matches("alarm=\"request_unexecutable\"").count(),
        1,
        "one alarm:\n{log}"
    );
    assert!(log.contains("handleKLAYTransfer: transfer failed"), "{log}");
    assert_eq!(
        metric(
            port,
            "bridge_unexecutable_requests",
            "reason=\"payout_refused\""
        )
        .await,
        1.0,
        "{log}"
    );
    assert!(
        metric(
            port,
            "bridge_votes_skipped_total",
            "reason=\"unexecutable\""
        )
        .await
            >= STALLED_CHECKS - 1.0,
        "{log}"
    );
    assert_eq!(
        metric(port, "bridge_votes_failed_total", "parent_to_child").await,
        0.0,
        "{log}"
    );
    assert!(agent.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_nonces_cost_no_repeat_votes_and_a_refused_payout_one_alarm_on_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    // One SoftHSM key for every run: this binary runs this one test (the SoftHSM config is
    // process-wide).
    let operator = provision_key(&dir.path().join("hsm")).await;
    for (i, dialect) in [Dialect::Ours, Dialect::Kaia].into_iter().enumerate() {
        let run = dir.path().join(format!("stuck-{i}"));
        std::fs::create_dir_all(&run).unwrap();
        stuck_nonces_get_one_vote_each(&run, dialect, operator).await;
    }
    let run = dir.path().join("refused");
    std::fs::create_dir_all(&run).unwrap();
    refused_payout_is_one_alarm_and_no_votes(&run, operator).await;
}
