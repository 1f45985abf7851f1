//! A nonce that can never execute on a Kaia-style bridge: its recipient refuses coins, so the
//! closing vote reverts ("handleKLAYTransfer: transfer failed") and `lowerHandleNonce` stays
//! behind it for ever. Kaia's own node re-sends its vote on every recovery pass; the agent must
//! cast each vote once: t − 1 votes mined, 0 repeats over several recovery intervals, while the
//! transfers behind it execute.

use crate::support::chain_votes::{HandleTx, handle_txs};
use crate::support::cluster::{Cluster, ClusterOptions, handled_nonces, lower_handle_nonce};
use alloy::primitives::{Address, Bytes};
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_devkit::demo::traffic::{Traffic, request_nonce as nonce_of_receipt, send};
use bridge_devkit::devnet::kaia::RefusingReceiver;
use std::time::{Duration, Instant};

const RECOVERY_SECS: u64 = 2;
/// Recovery intervals watched for repeats once the stuck nonce has its votes.
const INTERVALS: u64 = 6;

#[tokio::test(flavor = "multi_thread")]
async fn kaia_stuck_nonce_refused_payout_gets_no_repeat_votes_over_recovery_intervals() {
    let cluster = Cluster::start(ClusterOptions {
        dialect: Dialect::Kaia,
        recovery_secs: RECOVERY_SECS,
        ..ClusterOptions::default()
    })
    .await;
    let d = cluster.devnet.clone();
    let owner = d.child.provider_with(d.owner());
    let refusing = *RefusingReceiver::deploy(&owner).await.unwrap().address();
    let user = d.users()[0].clone();
    let value = alloy::primitives::U256::from(1_000_000u64);
    let call = Bridge::requestKLAYTransferCall {
        to: refusing,
        value,
        extraData: Bytes::new(),
    };
    let receipt = send(
        &d.parent.provider_with(user),
        d.parent.bridge,
        alloy::sol_types::SolCall::abi_encode(&call).into(),
        value,
    )
    .await
    .unwrap();
    let stuck = nonce_of_receipt(&receipt).unwrap();

    // Transfers behind it, both ways.
    let mut traffic = Traffic::new(&d);
    for _ in 0..12 {
        traffic.send_next(&d).await.unwrap();
    }
    let p2c: Vec<u64> = traffic
        .sent()
        .iter()
        .filter(|s| s.p2c)
        .map(|s| s.nonce)
        .collect();
    let c2p = traffic.sent().iter().filter(|s| !s.p2c).count() as u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let handled = handled_nonces(&d.child).await;
        let votes = votes_for(&handle_txs(&d.child).await, stuck);
        if p2c.iter().all(|n| handled.contains(n))
            && lower_handle_nonce(&d.parent).await >= c2p
            && votes.len() >= 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "transfers behind the stuck nonce did not execute, or it did not get t − 1 votes \
             ({} so far)\n{}",
            votes.len(),
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!handled_nonces(&d.child).await.contains(&stuck));
    assert_eq!(
        lower_handle_nonce(&d.child).await,
        stuck,
        "lower stays behind it"
    );

    // Several recovery intervals with the nonce stuck: not one more vote for it.
    let txs = handle_txs(&d.child).await;
    let before = votes_for(&txs, stuck);
    let reverted_before = reverted_for(&txs, stuck);
    let rescans_before = rescans(&cluster).await;
    let window = Duration::from_secs(RECOVERY_SECS * INTERVALS);
    tokio::time::sleep(window).await;
    let txs = handle_txs(&d.child).await;
    let after = votes_for(&txs, stuck);
    let reverted = reverted_for(&txs, stuck);
    let rescans_after = rescans(&cluster).await;
    // A vote sent again in the window, mined or reverted, is a repeat. (A closing vote mined
    // in the first round may revert: t seats estimate at once, before any vote is mined.)
    let repeats = after.len() - before.len() + reverted - reverted_before;
    eprintln!(
        "stuck nonce {stuck}: {} votes mined (t − 1 = 2), {repeats} repeat(s) and {reverted} \
         reverted vote(s) in all, in {window:?} ({INTERVALS} recovery intervals; {} recovery rescans); \
         {:.0} repeat votes per hour",
        after.len(),
        rescans_after - rescans_before,
        repeats as f64 * 3600.0 / window.as_secs_f64()
    );
    assert_eq!(after.len(), 2, "t − 1 votes, one per operator: {after:?}");
    let mut voters: Vec<Address> = after.iter().map(|h| h.from).collect();
    voters.sort();
    voters.dedup();
    assert_eq!(voters.len(), 2, "no operator voted twice: {after:?}");
    assert_eq!(
        repeats,
        0,
        "repeat votes while stuck\n{}",
        cluster.log_tails()
    );
    assert!(
        rescans_after > rescans_before,
        "recovery must have run during the window for 0 repeats to mean anything"
    );
    // The agents know it can never execute, and say so.
    let mut unexecutable = 0.0;
    for i in 0..4 {
        unexecutable += cluster.metric(i, "bridge_unexecutable_requests").await;
    }
    assert!(
        unexecutable >= 1.0,
        "no agent reports the unexecutable request"
    );
    // Every transfer that did execute got exactly t votes.
    cluster.check_votes_on_chain().await;
}

/// Reverted handle transactions for `nonce`.
fn reverted_for(txs: &[HandleTx], nonce: u64) -> usize {
    txs.iter().filter(|h| h.nonce == nonce && !h.ok).count()
}

/// Successful handle transactions for `nonce`.
fn votes_for(txs: &[HandleTx], nonce: u64) -> Vec<HandleTx> {
    txs.iter()
        .filter(|h| h.nonce == nonce && h.ok)
        .cloned()
        .collect()
}

async fn rescans(cluster: &Cluster) -> f64 {
    let mut sum = 0.0;
    for i in 0..cluster.nodes.len() {
        sum += cluster.metric(i, "bridge_recovery_rescans_total").await;
    }
    sum
}
