//! Destination reorgs (issue 12): the block holding the agents' votes and the execution is
//! replaced, so their account nonces go back and the executions are undone (anvil does not put
//! orphaned transactions back in its pool; users' requests are re-mined by the test, so only
//! votes and executions are lost). Depths 1, 2 and 3, on each chain as a destination, under
//! load both ways, with 3 confirmations on both chains (so the same reorg as a *source* is
//! within the depth); then one that orphans only some agents' votes. Nothing is lost or
//! executed twice, no agent is restarted, each direction moves again within a bound, and no
//! operator is left with a queued transaction.

use crate::support::cluster::{Cluster, ClusterOptions, lower_handle_nonce, reorg_orphaning};
use crate::support::proxy::Mode;
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use bridge_devkit::demo::traffic::Traffic;
use bridge_devkit::devnet::{Devnet, Side};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CONFIRMATIONS: u64 = 3;
/// How long a direction may take to execute again what a reorg undid (recovery interval 2 s,
/// plus re-planning and the tx managers' convergence polls, on a loaded 2-core machine).
const MOVING_AGAIN_WITHIN: Duration = Duration::from_secs(15);

/// Mines a block on each chain every 300 ms unless that chain is paused, so confirmations
/// accrue; a destination is paused while its votes land, so its last blocks are theirs.
struct Miner {
    paused: Arc<[AtomicBool; 2]>,
    task: tokio::task::JoinHandle<()>,
}

impl Miner {
    fn start(d: Arc<Devnet>) -> Self {
        let paused: Arc<[AtomicBool; 2]> =
            Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let flags = Arc::clone(&paused);
        let task = tokio::spawn(async move {
            loop {
                for (i, side) in [&d.parent, &d.child].into_iter().enumerate() {
                    if !flags[i].load(Ordering::Relaxed) {
                        let _ = side.reader().anvil_mine(Some(1), None).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self { paused, task }
    }

    fn pause(&self, parent: bool, paused: bool) {
        self.paused[usize::from(!parent)].store(paused, Ordering::Relaxed);
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_for(
    what: &str,
    cluster: &Cluster,
    timeout: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}\n{}",
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn vote_of(dest: &Side, nonce: u64, operator: Address) -> B256 {
    Bridge::new(dest.bridge, dest.reader())
        .voteOf(VOTE_TYPE_VALUE_TRANSFER, nonce, operator)
        .call()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn destination_reorgs_orphaning_votes_and_executions_are_followed_both_ways() {
    let mut cluster = Cluster::start(ClusterOptions {
        parent_confirmations: CONFIRMATIONS,
        child_confirmations: CONFIRMATIONS,
        ..ClusterOptions::default()
    })
    .await;
    let d = cluster.devnet.clone();
    let operators: Vec<Address> = cluster.nodes.iter().map(|n| n.address).collect();
    let miner = Miner::start(d.clone());
    let mut traffic = Traffic::new(&d);
    let mut orphaned = 0;
    let mut undone = 0;
    let mut recoveries = Vec::new();

    for depth in 1..=CONFIRMATIONS {
        for (dest, dest_is_parent) in [(&d.child, false), (&d.parent, true)] {
            // Load both ways; the destination makes blocks only with transactions now.
            miner.pause(dest_is_parent, true);
            let before = lower_handle_nonce(dest).await;
            for _ in 0..4 {
                traffic.send_next(&d).await.unwrap();
            }
            wait_for(
                "an execution to reorganise away",
                &cluster,
                Duration::from_secs(60),
                async || lower_handle_nonce(dest).await > before,
            )
            .await;
            let executed = lower_handle_nonce(dest).await;
            orphaned += reorg_orphaning(dest, depth, &operators).await;
            let after = lower_handle_nonce(dest).await;
            undone += executed - after;
            miner.pause(dest_is_parent, false);
            let started = Instant::now();
            wait_for(
                "the direction moving again",
                &cluster,
                MOVING_AGAIN_WITHIN,
                async || lower_handle_nonce(dest).await >= executed,
            )
            .await;
            recoveries.push((depth, dest_is_parent, executed - after, started.elapsed()));
        }
    }
    eprintln!(
        "dest reorgs: (depth, parent is dest, executions undone, time to re-execute): {recoveries:?}"
    );
    assert!(
        orphaned > 0,
        "no vote was orphaned: the scenario tested nothing"
    );
    assert!(
        undone > 0,
        "no execution was undone: the scenario tested nothing"
    );

    // Only some agents' votes: ops 3 and 4 cannot reach the child; ops 1 and 2 vote on a
    // parent → child request, their votes are orphaned, then everyone is back.
    miner.pause(false, true);
    for i in [2, 3] {
        cluster.link(i, false, Mode::Cut);
    }
    if traffic.sent().len() % 2 == 1 {
        traffic.send_next(&d).await.unwrap(); // child → parent: stays pending for now
    }
    let child = d.child.reader();
    let head_before = child.get_block_number().await.unwrap();
    let s = traffic.send_next(&d).await.unwrap();
    assert!(s.p2c);
    let live = [operators[0], operators[1]];
    wait_for(
        "a vote of op1 or op2",
        &cluster,
        Duration::from_secs(60),
        async || {
            vote_of(&d.child, s.nonce, live[0]).await != B256::ZERO
                || vote_of(&d.child, s.nonce, live[1]).await != B256::ZERO
        },
    )
    .await;
    // Let the other live seat vote too, then replace every block from the first of their
    // votes on (other child transactions of theirs may have come in between).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = child.get_block_number().await.unwrap();
    let first_vote = child
        .get_logs(
            &Filter::new()
                .address(d.child.bridge)
                .from_block(head_before + 1)
                .to_block(head)
                .event_signature(Bridge::Voted::SIGNATURE_HASH),
        )
        .await
        .unwrap()
        .iter()
        .filter(|l| {
            let v = l.log_decode::<Bridge::Voted>().unwrap().inner.data;
            v.nonce == s.nonce && live.contains(&v.operator)
        })
        .filter_map(|l| l.block_number)
        .min()
        .expect("the live vote's block");
    let depth = (head - first_vote + 1).min(CONFIRMATIONS);
    let mut voted = Vec::new();
    for op in live {
        if vote_of(&d.child, s.nonce, op).await != B256::ZERO {
            voted.push(op);
        }
    }
    let partial = reorg_orphaning(&d.child, depth, &operators).await;
    assert!(partial > 0, "the partial reorg orphaned nothing");
    let mut lost = 0;
    for &op in &voted {
        lost += usize::from(vote_of(&d.child, s.nonce, op).await == B256::ZERO);
    }
    assert!(
        lost > 0,
        "no live agent's vote was orphaned ({voted:?} had voted)"
    );
    miner.pause(false, false);
    for i in [2, 3] {
        cluster.link(i, false, Mode::Pass);
    }

    cluster
        .wait_executed(&traffic, Duration::from_secs(90))
        .await;
    for node in &mut cluster.nodes {
        assert!(node.is_running(), "op{} stopped", node.index + 1);
    }
    drop(miner);
    cluster.check_invariants(&traffic).await;
    let mut went_down = 0.0;
    for i in 0..cluster.nodes.len() {
        went_down += cluster.metric(i, "bridge_tx_nonce_went_down_total").await;
    }
    let mut repairs = 0.0;
    for i in 0..cluster.nodes.len() {
        repairs += cluster.metric(i, "bridge_tx_nonce_repairs_total").await;
    }
    eprintln!(
        "orphaned operator txs {orphaned} (+{partial} in the partial reorg), executions undone {undone}, nonce went down {went_down}×, repairs {repairs}"
    );
    assert!(went_down >= 1.0, "no agent saw its nonce go down");
    assert!(repairs >= 1.0, "no tx manager had to repair anything");
}
