//! Alerts proven by behaviour (issue 14): a real Prometheus scrapes the real agents and
//! evaluates `config/monitoring/bridge-agent.rules.yml` on a 60× faster clock
//! (support/prometheus.rs says how the rules are scaled). Each alert is made to fire by the
//! fault it exists for, and a normal run fires none.
//!
//! Two clusters keep the added time small; the faults of one cluster touch different agents,
//! chains or directions, so each alert is asserted with the labels that name its cause:
//!
//! - normal traffic both ways: nothing fires during the run, nothing pending or firing after;
//!   then a journal that recorded another vote for the next nonce (conflicting vote refused),
//!   a vote that executes and reverts (unexpected revert), and op4 away while parent → child
//!   goes on (silent seat).
//! - op1's parent link cut (chain unreachable), op2's `min_balance` above its balance (low
//!   balance) and its parent seat deregistered (key not seated), op4's KMS key gone (signer unusable), op1's stolen key voting a forged handle
//!   (forged vote), the parent reorganised under a processed request (reorg halt), child →
//!   parent below threshold (stalled direction), op3 killed (agent down), op2 halted (not
//!   ready), op1's child provider refusing every call (RPC degraded).

use crate::forged_votes::{attacker, forged_handle};
use crate::support::cluster::{
    Cluster, ClusterOptions, lower_handle_nonce, pool_entries, request_nonce, spawn_load,
};
use crate::support::prometheus::{self, Alert, Prometheus};
use crate::support::proxy::Mode;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::anvil::ReorgOptions;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_devkit::demo::traffic::send;
use bridge_devkit::devnet::{Devnet, Side};
use bridge_signer::AlloyAdapter;
use hsm_sim::{ErrorCode, FaultConfig, Operation};
use std::time::{Duration, Instant};

fn op(i: usize) -> String {
    format!("op{}", i + 1)
}

/// What Prometheus scrapes: every agent's metrics address, labelled `op="opN"`.
fn targets(cluster: &Cluster) -> Vec<(String, u16)> {
    cluster
        .nodes
        .iter()
        .map(|n| (op(n.index), n.metrics_port))
        .collect()
}

/// A native transfer request on `side`; the block it was mined in.
async fn native(d: &Devnet, side: &Side, to: &str, value: u64) -> u64 {
    let p = side.provider_with(d.users()[0].clone());
    let call = Bridge::requestKLAYTransferCall {
        to: Address::from_word(keccak256(to)),
        value: U256::from(value),
        extraData: Bytes::new(),
    };
    send(&p, side.bridge, call.abi_encode().into(), U256::from(value))
        .await
        .unwrap()
        .block_number
        .unwrap()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> F,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The scaled rules differ from the shipped ones only in durations, each minutes → seconds with
/// the same number, and promtool accepts them.
#[test]
fn scaled_rules_change_only_the_time_scale() {
    let original = prometheus::rules_text();
    let scaled = prometheus::scaled_rules(&original);
    let (a, b): (Vec<&str>, Vec<&str>) = (original.lines().collect(), scaled.lines().collect());
    assert_eq!(a.len(), b.len());
    let mut durations = 0;
    for (n, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.len(), y.len(), "line {}", n + 1);
        for (k, (cx, cy)) in x.bytes().zip(y.bytes()).enumerate() {
            if cx != cy {
                assert!(
                    cx == b'm' && cy == b's' && x.as_bytes()[k - 1].is_ascii_digit(),
                    "line {}: {x:?} became {y:?}",
                    n + 1
                );
                durations += 1;
            }
        }
    }
    // Every `for:` and every range window of the file: none left at full length.
    let expected = original.matches("for: ").count() + original.matches("m]").count();
    assert_eq!(durations, expected, "{scaled}");
    assert!(durations >= 15, "{scaled}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &scaled).unwrap();
    let promtool = prometheus::binary().with_file_name("promtool");
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules", "rules.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", promtool.display()));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Case 1's traffic both ways fires no alert; afterwards a conflicting vote refused by the
/// guard, a vote that executes and reverts, and a seat that stopped voting each fire theirs.
#[tokio::test(flavor = "multi_thread")]
async fn alerts_stay_silent_in_a_normal_run_and_fire_on_conflicting_vote_revert_and_silent_seat() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let d = cluster.devnet.clone();
    let prom = Prometheus::start(&targets(&cluster)).await;
    let started = Instant::now();
    let traffic = spawn_load(d.clone(), 24, Duration::from_millis(100))
        .await
        .unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(120))
        .await;
    cluster.check_invariants(&traffic).await;
    // Long enough for any alert with a `for:` of up to 5 (scaled) minutes to reach firing.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // Prometheus really watched: every rule loaded, every agent scraped, the nonces seen.
    let rules = prometheus::rules_text().matches("- alert:").count();
    assert_eq!(prom.rules_loaded().await, rules, "{}", prom.log_text());
    let up = prom.query("up{job=\"bridge-agent\"} == 1").await;
    assert_eq!(up.len(), cluster.nodes.len(), "scraped: {up:?}");
    let moved = prom
        .query("changes(bridge_lower_handle_nonce[1m]) > 0")
        .await;
    assert!(
        !moved.is_empty(),
        "Prometheus saw no handle progress: {:?}",
        prom.query("bridge_lower_handle_nonce").await
    );
    let window = started.elapsed().as_secs() + 2;
    let fired = prom
        .query(&format!(
            "max_over_time(ALERTS{{alertstate=\"firing\"}}[{window}s])"
        ))
        .await;
    assert!(
        fired.is_empty(),
        "alerts fired during a normal run: {fired:#?}\n{}",
        cluster.log_tails()
    );
    let now: Vec<String> = prom.alerts().await.iter().map(Alert::to_string).collect();
    assert!(
        now.is_empty(),
        "alerts pending or firing after a normal run: {now:#?}\n{}",
        cluster.log_tails()
    );

    // Conflicting vote: the first seat whose turn the next parent → child nonce is finds in
    // its journal a different vote already recorded for that nonce (what a changed token
    // registry or a lying node would make it build), and its guard refuses to sign.
    let n = request_nonce(&d.parent).await;
    let seats = Bridge::new(d.child.bridge, d.child.reader())
        .getOperatorList()
        .call()
        .await
        .unwrap();
    let seat = seats[(n % seats.len() as u64) as usize];
    let i = cluster
        .nodes
        .iter()
        .position(|x| x.address == seat)
        .unwrap();
    cluster.stop_agent(i).await;
    let journal =
        rusqlite::Connection::open(cluster.nodes[i].data_dir.join("journal-child.sqlite")).unwrap();
    let seeded = journal
        .execute(
            "INSERT INTO votes (chain_id, bridge, namespace, nonce, vote_hash, function, recorded_at) \
             SELECT chain_id, bridge, namespace, ?1, ?2, function, recorded_at FROM votes \
             WHERE namespace = 'request' LIMIT 1",
            rusqlite::params![n as i64, keccak256("a vote this agent never built").to_vec()],
        )
        .unwrap();
    assert_eq!(seeded, 1, "{} has no vote on the child to copy", op(i));
    drop(journal);
    cluster.start_agent(i).await;
    // Port 0: the restarted agent listens elsewhere; Prometheus follows.
    prom.set_targets(&targets(&cluster)).await;
    native(&d, &d.parent, "conflict", 1_000).await;
    prom.wait_firing(
        "BridgeConflictingVoteRefused",
        &[("op", &op(i)), ("chain", "child")],
        Duration::from_secs(30),
        || cluster.log_tails(),
    )
    .await;
    // The standby seat votes in its place; the nonce executes with t honest votes.
    wait_until(
        "the refused nonce executed by the others",
        Duration::from_secs(30),
        || async { lower_handle_nonce(&d.child).await > n },
        || cluster.log_tails(),
    )
    .await;

    // Unexpected revert: the votes for a child → parent request wait in the parent's pool
    // (mining paused); the parent bridge's liquidity is taken before they are mined, so the
    // vote that executes reverts with InsufficientLiquidity.
    let parent = d.parent.reader();
    parent.anvil_set_auto_mine(false).await.unwrap();
    native(&d, &d.child, "revert", 1_000).await;
    let operators: Vec<Address> = cluster.nodes.iter().map(|x| x.address).collect();
    wait_until(
        "t votes waiting in the parent's pool",
        Duration::from_secs(30),
        || async {
            let entries = pool_entries(&d.parent).await;
            entries.iter().filter(|e| operators.contains(&e.0)).count() >= 3
        },
        || cluster.log_tails(),
    )
    .await;
    let liquidity = parent.get_balance(d.parent.bridge).await.unwrap();
    parent
        .anvil_set_balance(d.parent.bridge, U256::ZERO)
        .await
        .unwrap();
    parent.anvil_mine(Some(1), None).await.unwrap();
    let block = parent
        .get_block_receipts(alloy::eips::BlockId::latest())
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        block
            .iter()
            .any(|r| !r.status() && operators.contains(&r.from)),
        "no vote reverted in the mined block"
    );
    parent
        .anvil_set_balance(d.parent.bridge, liquidity)
        .await
        .unwrap();
    parent.anvil_set_auto_mine(true).await.unwrap();
    prom.wait_firing(
        "BridgeTxsRevertedUnexpectedly",
        &[("chain", "parent")],
        Duration::from_secs(30),
        || cluster.log_tails(),
    )
    .await;

    // Silent seat: op4 stops; the other seats carry parent → child (its turns by standby)
    // until its seat has missed more executed nonces in a row than a standby seat can.
    cluster.stop_agent(3).await;
    let before = lower_handle_nonce(&d.child).await;
    let requests = 2 * SILENT_AFTER;
    for k in 0..requests {
        native(&d, &d.parent, &format!("while op4 is away {k}"), 1_000).await;
    }
    wait_until(
        "parent → child executed without op4",
        Duration::from_secs(60),
        || async { lower_handle_nonce(&d.child).await >= before + requests },
        || cluster.log_tails(),
    )
    .await;
    prom.wait_firing(
        "BridgeSilentSeat",
        &[("direction", "parent_to_child")],
        Duration::from_secs(60),
        || cluster.log_tails(),
    )
    .await;
}

/// `SILENT_AFTER` in src/auditor/silence.rs: misses in a row before a seat counts as silent.
const SILENT_AFTER: u64 = 16;

/// Agent, chain and key faults, each on its own agent, chain or direction.
#[tokio::test(flavor = "multi_thread")]
async fn alerts_fire_on_unreachable_chain_low_balance_unusable_signer_forgery_reorg_stall_and_death()
 {
    let mut cluster = Cluster::start(ClusterOptions {
        kms: vec![3],
        // Rate-limiting proxies on every link, refusing nothing until told.
        rate_limit: Some((0, 1)),
        ..ClusterOptions::default()
    })
    .await;
    let d = cluster.devnet.clone();
    let prom = Prometheus::start(&targets(&cluster)).await;
    let traffic = spawn_load(d.clone(), 4, Duration::ZERO).await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(60))
        .await;
    // A parent → child request that executes: the reorg below replaces its block.
    let executed = lower_handle_nonce(&d.child).await;
    let request_block = native(&d, &d.parent, "to be reorganised away", 1_000).await;
    wait_until(
        "the request executed",
        Duration::from_secs(30),
        || async { lower_handle_nonce(&d.child).await > executed },
        || cluster.log_tails(),
    )
    .await;

    // op3 dies (kill -9).
    cluster.kill_agent(2);
    // op2: a `min_balance` on the child above anything its account holds, and (the owner
    // deregistered it) no seat on the parent when it starts again.
    cluster.stop_agent(1).await;
    // The parent drops the executed request's block (confirmations 0: deeper than the depth);
    // before the deregistration below, which it would undo.
    let head = d.parent.reader().get_block_number().await.unwrap();
    d.parent
        .reader()
        .anvil_reorg(ReorgOptions {
            depth: head - request_block + 1,
            tx_block_pairs: vec![],
        })
        .await
        .unwrap();
    Bridge::new(d.parent.bridge, d.parent.provider_with(d.owner()))
        .deregisterOperator(cluster.nodes[1].address)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let config = std::fs::read_to_string(&cluster.nodes[1].config).unwrap();
    let (parent_part, child_part) = config.split_once("[child]\n").unwrap();
    let child_part = child_part.replacen("min_balance = \"1\"", "min_balance = \"1000000000\"", 1);
    std::fs::write(
        &cluster.nodes[1].config,
        format!("{parent_part}[child]\n{child_part}"),
    )
    .unwrap();
    cluster.start_agent(1).await;
    // Port 0: the restarted agent listens elsewhere; Prometheus follows.
    prom.set_targets(&targets(&cluster)).await;
    // op1: no parent endpoint answers, and its child provider refuses every call (429 or
    // -32005).
    cluster.link(0, true, Mode::Cut);
    cluster.nodes[0].rate_limit.as_ref().unwrap().1.set_every(1);
    // op4: its KMS key is gone (every Sign answers NotFoundException): a permanent failure.
    let sim = cluster.sim.as_ref().unwrap();
    sim.set_faults(FaultConfig {
        outage_secs: 600.0,
        outage_code: ErrorCode::NotFoundException,
        operations: vec![Operation::Sign],
        ..FaultConfig::default()
    })
    .unwrap();
    // op1's key, stolen, votes a forged handle on the child.
    cluster.compromised = vec![0];
    let wallet = EthereumWallet::from(AlloyAdapter::new(attacker(0).await, Some(d.child.chain_id)));
    let thief = ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(d.child.rpc_url().parse().unwrap());
    let tx = TransactionRequest::default()
        .with_to(d.child.bridge)
        .with_input(forged_handle(1_000_000, Address::repeat_byte(0x66), 1))
        .with_gas_limit(500_000);
    let receipt = thief
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    // Child → parent: op1 cannot reach the parent, op2 has no seat there, op3 is dead, op4
    // cannot sign: none of t = 3.
    native(&d, &d.child, "stalled", 1_000).await;

    let alerts: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("BridgeAgentDown", vec![("op", op(2))]),
        (
            "BridgeOperatorBalanceLow",
            vec![("op", op(1)), ("chain", "child".into())],
        ),
        (
            "BridgeChainUnreachable",
            vec![("op", op(0)), ("chain", "parent".into())],
        ),
        (
            "BridgeSignerUnusable",
            vec![("op", op(3)), ("chain", "parent".into())],
        ),
        (
            "BridgeForgedVotesSeen",
            vec![("op", op(1)), ("direction", "parent_to_child".into())],
        ),
        (
            "BridgeReorgHalt",
            vec![("op", op(3)), ("direction", "parent_to_child".into())],
        ),
        (
            "BridgeRpcDegraded",
            vec![("op", op(0)), ("chain", "child".into())],
        ),
        // Halted: /readyz has been failing since.
        ("BridgeAgentNotReady", vec![("op", op(1))]),
        (
            "BridgeKeyNotSeated",
            vec![("op", op(1)), ("chain", "parent".into())],
        ),
        (
            "BridgeDirectionStalled",
            vec![("direction", "child_to_parent".into())],
        ),
    ];
    prom.wait_all_firing(&alerts, Duration::from_secs(90), || cluster.log_tails())
        .await;
}
