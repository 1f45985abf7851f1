//! The signing path's bar for replicas: guarded votes/s with the PostgreSQL journal ≥ 0.8 × the
//! SQLite journal (issue 15), same run, same signer.
//!
//! Run: `cargo bench -p bridge-signer --bench journal_backends` (`JB_N` votes per configuration
//! per round, `JB_ROUNDS` rounds). Under `cargo test` (no `--bench` argument) it does a small
//! smoke run only. Configurations run once per round, interleaved, so machine noise hits them
//! alike; medians and ratios are printed as a Markdown table for BENCHMARKS.md.
//!
//! | name            | one operation                                                        |
//! |-----------------|----------------------------------------------------------------------|
//! | sqlite-1        | `Guard::sign_transaction` (policy, journal check-and-record with its fsync, sign), one caller |
//! | sqlite-8        | the same, 8 callers in flight (group commit shares the fsync)        |
//! | pg-1 / pg-8     | the journal in PostgreSQL (devkit server: Unix socket, `fsync=on`)   |
//! | pg-fenced-1 / -8 | PostgreSQL with the leader fence (lease row checked `FOR SHARE` in each batch's statement) |
//!
//! The signer is an in-process k256 key (sign + recovery check), the same for every
//! configuration, so the journal's cost is what differs; with an HSM the signer's time is
//! added to both sides and the ratio only gets closer to 1.

#![forbid(unsafe_code)]

mod common;

use common::{BRIDGE, CHAIN, run_guarded};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, Signature};
use async_trait::async_trait;
use bridge_db::{Db, Fence, Lease, LeaseConfig};
use bridge_devkit::postgres::PgServer;
use bridge_signer::guard::Journal;
use bridge_signer::{Guard, Signer, SignerError, signature};
use k256::ecdsa::SigningKey;

/// An in-process key: signs and checks the signature as the real backends do.
#[derive(Debug)]
struct LocalKey(SigningKey);

#[async_trait]
impl Signer for LocalKey {
    fn address(&self) -> Address {
        signature::address_of(self.0.verifying_key())
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        let (sig, _) = self
            .0
            .sign_prehash_recoverable(hash.as_slice())
            .expect("k256 signs");
        Ok(signature::recoverable(
            &sig.to_bytes(),
            hash,
            self.0.verifying_key(),
        )?)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn guard(journal: Journal) -> Arc<Guard<LocalKey>> {
    let key = LocalKey(SigningKey::from_slice(&[7u8; 32]).unwrap());
    Arc::new(Guard::new(key, CHAIN, BRIDGE, journal))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { env_usize("JB_N", 800) } else { 16 };
    let rounds = if bench { env_usize("JB_ROUNDS", 5) } else { 1 };
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start().expect("start PostgreSQL");
    server.create_database("bench").unwrap();
    let pg = || Db::postgres(&server.pg_config("bench")).unwrap();

    let sqlite = guard(Journal::open(dir.path().join("journal.sqlite")).unwrap());
    let postgres = guard(Journal::with_db(pg(), None).unwrap());
    let lease = Arc::new(
        Lease::new(
            pg(),
            LeaseConfig {
                name: "bench".into(),
                holder: "bench-replica".into(),
                ttl: Duration::from_secs(5),
            },
        )
        .unwrap(),
    );
    assert!(lease.tick().unwrap().is_leading());
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (lease, stop) = (Arc::clone(&lease), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let _ = lease.tick();
            }
        })
    };
    let fenced = guard(Journal::with_db(pg(), Some(Arc::clone(&lease) as Arc<dyn Fence>)).unwrap());

    // Each guard has its own journal, so one nonce counter serves all (every vote is new).
    let nonces = Arc::new(AtomicU64::new(0));
    let configs: [(&str, &Arc<Guard<LocalKey>>, usize); 6] = [
        ("sqlite-1", &sqlite, 1),
        ("sqlite-8", &sqlite, 8),
        ("pg-1", &postgres, 1),
        ("pg-8", &postgres, 8),
        ("pg-fenced-1", &fenced, 1),
        ("pg-fenced-8", &fenced, 8),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    eprintln!("journal backends: {rounds} rounds × {n} guarded votes per configuration");
    for r in 0..rounds {
        let mut line = Vec::new();
        for (i, (name, g, in_flight)) in configs.iter().enumerate() {
            let t = run_guarded(g, &nonces, n, *in_flight).await;
            let rate = (n / in_flight * in_flight) as f64 / t.as_secs_f64();
            rates[i].push(rate);
            line.push(format!("{name} {rate:.0}/s"));
        }
        eprintln!("round {}/{rounds}: {}", r + 1, line.join(", "));
    }
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    assert_eq!(fenced.counters().fenced(), 0, "the bench lost its lease");

    let med: Vec<f64> = rates.into_iter().map(median).collect();
    let rate = |name: &str| med[configs.iter().position(|c| c.0 == name).unwrap()];
    println!("| configuration | guarded votes/s (median) | vs sqlite same callers |");
    println!("|---|---:|---:|");
    for ((name, _, in_flight), m) in configs.iter().zip(&med) {
        let base = rate(if *in_flight == 1 {
            "sqlite-1"
        } else {
            "sqlite-8"
        });
        println!("| {name} | {m:.0} | {:.2} |", m / base);
    }
    println!();
    let ratio =
        |a: &str, b: &str, goal: &str| println!("{a} / {b} = {:.2}{goal}", rate(a) / rate(b));
    ratio("pg-8", "sqlite-8", " (issue 15 goal ≥ 0.80)");
    ratio(
        "pg-fenced-8",
        "sqlite-8",
        " (with the leader fence; goal ≥ 0.80)",
    );
    ratio("pg-1", "sqlite-1", " (one vote at a time)");
}
