//! The gas table of BENCHMARKS.md, measured in one run on both dialects (`--ignored`, prints
//! the table): gas per executed transfer by kind and destination at t = 3 (the sum of the t
//! votes' `gasUsed`, read from the handle transactions), and repeat votes per stuck nonce per
//! hour (two of four agents down, so no nonce reaches t = 3; every handle transaction for a
//! stuck nonce after its first votes is a repeat; counted over many recovery intervals and
//! scaled to an hour).
//!
//! `cargo test --test ha -- --ignored gas_table --nocapture`

use crate::support::chain_votes::{HandleTx, handle_txs, ok_by_nonce};
use crate::support::cluster::{Cluster, ClusterOptions, spawn_load};
use bridge_agent::dialect::Dialect;
use bridge_devkit::demo::traffic::Kind;
use bridge_devkit::devnet::Side;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RECOVERY_SECS: u64 = 2;
/// The stuck window: this many recovery intervals.
const INTERVALS: u64 = 15;
const STUCK_REQUESTS: usize = 6;

#[derive(Default)]
struct Gas {
    transfers: u64,
    sum: u64,
    min: u64,
    max: u64,
    closing: u64,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Native => "native",
        Kind::Erc20 => "ERC-20",
        Kind::Erc721 => "ERC-721",
    }
}

/// Per kind: the gas of the t votes for the executed call of each executed nonce.
fn gas_by_kind(txs: &[HandleTx]) -> BTreeMap<&'static str, Gas> {
    let mut out: BTreeMap<&'static str, Gas> = BTreeMap::new();
    for votes in ok_by_nonce(txs).values() {
        let Some(closing) = votes.iter().find(|h| h.executed) else {
            continue;
        };
        let sum: u64 = votes
            .iter()
            .filter(|h| h.key == closing.key)
            .map(|h| h.gas_used)
            .sum();
        let g = out.entry(kind_name(closing.kind)).or_default();
        g.min = if g.transfers == 0 {
            sum
        } else {
            g.min.min(sum)
        };
        g.max = g.max.max(sum);
        g.transfers += 1;
        g.sum += sum;
        g.closing += closing.gas_used;
    }
    out
}

/// Handle transactions (mined, reverted or not) for the nonces `stuck` on `dest`.
fn stuck_txs(txs: &[HandleTx], stuck: &[u64]) -> Vec<HandleTx> {
    txs.iter()
        .filter(|h| stuck.contains(&h.nonce))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement (BENCHMARKS.md gas table), not a check; about 3 minutes"]
async fn gas_table() {
    let mut rows = Vec::new();
    let mut stuck_rows = Vec::new();
    for dialect in Dialect::ALL {
        let mut cluster = Cluster::start(ClusterOptions {
            dialect,
            recovery_secs: RECOVERY_SECS,
            standby_delay_ms: Some(3000),
            ..ClusterOptions::default()
        })
        .await;
        let d = cluster.devnet.clone();
        let mut traffic = spawn_load(d.clone(), 60, Duration::ZERO).await.unwrap();
        cluster
            .wait_executed(&traffic, Duration::from_secs(180))
            .await;
        cluster.check_invariants(&traffic).await;
        for (name, dest) in [
            ("child (mint/burn side)", &d.child),
            ("parent (lock side)", &d.parent),
        ] {
            for (kind, g) in gas_by_kind(&handle_txs(dest).await) {
                rows.push(format!(
                    "| {dialect} | {kind} | {name} | {} | {} | {}–{} | {} |",
                    g.transfers,
                    g.sum / g.transfers,
                    g.min,
                    g.max,
                    g.closing / g.transfers
                ));
            }
        }

        // Two of four agents down: nothing reaches t = 3.
        cluster.kill_agent(0);
        cluster.kill_agent(3);
        let mut stuck: Vec<(bool, u64)> = Vec::new();
        for _ in 0..STUCK_REQUESTS {
            let s = traffic.send_next(&d).await.unwrap();
            stuck.push((s.p2c, s.nonce));
        }
        let on = |p2c: bool| -> Vec<u64> {
            stuck
                .iter()
                .filter(|(p, _)| *p == p2c)
                .map(|(_, n)| *n)
                .collect()
        };
        let dests: [(&Side, Vec<u64>); 2] = [(&d.child, on(true)), (&d.parent, on(false))];
        // Wait until each stuck nonce holds both running agents' votes.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut done = true;
            for (dest, nonces) in &dests {
                let txs = handle_txs(dest).await;
                for n in nonces {
                    done &= txs.iter().filter(|h| h.nonce == *n && h.ok).count() >= 2;
                }
            }
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{dialect}: stuck nonces did not get their 2 votes\n{}",
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut before = 0;
        for (dest, nonces) in &dests {
            before += stuck_txs(&handle_txs(dest).await, nonces).len();
        }
        let window = Duration::from_secs(RECOVERY_SECS * INTERVALS);
        tokio::time::sleep(window).await;
        let mut after = 0;
        for (dest, nonces) in &dests {
            after += stuck_txs(&handle_txs(dest).await, nonces).len();
        }
        let repeats = after - before;
        let per_hour = repeats as f64 / STUCK_REQUESTS as f64 * 3600.0 / window.as_secs_f64();
        stuck_rows.push(format!(
            "| {dialect} | {STUCK_REQUESTS} | {}s ({INTERVALS} × {RECOVERY_SECS}s) | {repeats} | {per_hour:.0} |",
            window.as_secs()
        ));
        drop(cluster);
    }
    println!("\nGas per executed transfer at t = 3 (sum of the 3 votes' gasUsed)\n");
    println!("| dialect | kind | destination | transfers | avg gas | min–max | closing vote avg |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!("\nRepeat votes per stuck nonce (2 of 4 agents down, t = 3)\n");
    println!("| dialect | stuck nonces | window | repeat votes | per stuck nonce per hour |");
    println!("|---|---|---|---|---|");
    for r in &stuck_rows {
        println!("{r}");
    }
}
