//! P1: guarded PKCS#11 signing against a raw cryptoki sign loop on the same SoftHSM token.
//!
//! Run: `cargo bench -p bridge-signer --bench p1_signing` (set `P1_N` for signatures per run,
//! `P1_ROUNDS` for rounds). Under `cargo test` (no `--bench` argument) it does a small smoke
//! run only, so the benchmark keeps working without costing the test suite time. Every configuration runs once per round, interleaved, so machine
//! noise hits them alike; the medians and their ratios are printed as a Markdown table for
//! BENCHMARKS.md.
//!
//! | name          | what one operation is                                                    |
//! |---------------|--------------------------------------------------------------------------|
//! | raw-1         | `C_Sign(CKM_ECDSA)` over a digest, one session, one thread               |
//! | raw-2         | the same on two sessions from two threads                                |
//! | check-only    | `signature::recoverable` alone (low-s, verify + recovery id), no HSM     |
//! | signer-1      | `Pkcs11Signer::sign_hash` (sign + check), one session, one at a time     |
//! | guarded-1x1   | `Guard::sign_transaction` (policy + journal fsync + signer), one at a time |
//! | guarded-1x4   | guarded, one session, 4 votes in flight (how the agent signs)            |
//! | guarded-2x8   | guarded, pool of 2 sessions, 8 votes in flight                           |
//!
//! Reference rates after the table: the aws-kms backend (sign + check) against hsm-sim in
//! process and against moto, one signature at a time.
//!
//! SoftHSM signs on this machine's CPU, so on 2 cores the guard's own CPU work (the check,
//! SQLite) competes with the second session; a network HSM signs elsewhere.

mod common;

use common::{BRIDGE, CHAIN, run_guarded};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, keccak256};
use bridge_devkit::softhsm::{MODULE, SoftHsmDir};
use bridge_signer::guard::Journal;
use bridge_signer::pkcs11::{Pkcs11Config, Pkcs11Signer, Pkcs11Token};
use bridge_signer::{Guard, Pin, PinSource, Signer};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

#[path = "../tests/common/kms.rs"]
mod kms;

const TOKEN: &str = "p1-bench";
const KEY: &str = "p1-key";
const PIN: &str = "bench-pin-1234";
const PIN_ENV: &str = "P1_BENCH_PIN";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn digest(i: u64) -> [u8; 32] {
    keccak256(i.to_be_bytes()).0
}

/// A fresh SoftHSM token store in `dir`, with one token.
fn init_softhsm(dir: &Path) {
    assert!(
        Path::new(MODULE).is_file(),
        "{MODULE} missing: run ./scripts/setup"
    );
    let hsm = SoftHsmDir::create(dir).unwrap();
    let conf = hsm.conf.clone();
    // SAFETY: single-threaded here, before anything loads the module or reads the variables.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::env::set_var(PIN_ENV, PIN);
    }
    hsm.init_token(TOKEN, PIN, "so-1234").unwrap();
}

/// Raw cryptoki: logged-in sessions and the key handle, nothing of ours in the loop.
struct Raw {
    sessions: Vec<Session>,
    key: ObjectHandle,
}

impl Raw {
    fn open(n: usize) -> Self {
        let ctx = Pkcs11::new(MODULE).unwrap();
        // The signer may have initialised the module already; that is fine.
        let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .map(|t| t.label() == TOKEN)
                    .unwrap_or(false)
            })
            .expect("bench token");
        let sessions: Vec<Session> = (0..n).map(|_| ctx.open_ro_session(slot).unwrap()).collect();
        let _ = sessions[0].login(UserType::User, Some(&AuthPin::new(PIN.into())));
        let key = sessions[0]
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(KEY.into()),
            ])
            .unwrap()[0];
        // Never finalise: the signer shares the module's process-wide state.
        std::mem::forget(ctx);
        Self { sessions, key }
    }

    fn run(&mut self, n: usize) -> Duration {
        let per = n / self.sessions.len();
        let key = self.key;
        let start = Instant::now();
        std::thread::scope(|s| {
            // `Session` is Send but not Sync: each thread gets its own `&mut`.
            for (t, session) in self.sessions.iter_mut().enumerate() {
                s.spawn(move || {
                    for i in 0..per {
                        let sig = session
                            .sign(&Mechanism::Ecdsa, key, &digest((t * per + i) as u64))
                            .unwrap();
                        assert_eq!(sig.len(), 64);
                    }
                });
            }
        });
        start.elapsed()
    }
}

async fn signer(sessions: usize) -> Pkcs11Signer {
    let mut c = Pkcs11Config::new(MODULE, TOKEN, PinSource::Env(PIN_ENV.into()));
    c.key_label = Some(KEY.into());
    c.sessions = sessions;
    Pkcs11Signer::connect(&c).await.expect("connect")
}

async fn run_signer(s: &Pkcs11Signer, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        s.sign_hash(&B256::from(digest(i as u64))).await.unwrap();
    }
    start.elapsed()
}

/// The signature check alone, over raw r‖s signatures made in-process beforehand.
fn run_check(inputs: &[(Vec<u8>, B256)], key: &k256::ecdsa::VerifyingKey) -> Duration {
    let start = Instant::now();
    for (raw, digest) in inputs {
        bridge_signer::signature::recoverable(raw, digest, key).unwrap();
    }
    start.elapsed()
}

/// Signatures per second of an aws-kms signer on a KMS-protocol server at `endpoint`.
async fn kms_rate(endpoint: &str, n: usize, rounds: usize) -> f64 {
    use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsSigner};
    let client = AwsKmsClient::connect(Some(kms::REGION), Some(endpoint))
        .await
        .expect("kms client");
    let key = client
        .create_key(None, Some("p1 bench"))
        .await
        .expect("create key");
    let signer = AwsKmsSigner::with_client(&client, &key.key_id)
        .await
        .expect("kms signer");
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for i in 0..n {
            signer
                .sign_hash(&B256::from(digest(i as u64)))
                .await
                .unwrap();
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    median(rates)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { env_usize("P1_N", 400) } else { 8 };
    let rounds = if bench { env_usize("P1_ROUNDS", 5) } else { 1 };
    let dir = tempfile::tempdir().unwrap();
    init_softhsm(dir.path());
    let token = Pkcs11Token::open(MODULE, TOKEN, Pin::new(PIN))
        .await
        .unwrap();
    token.generate_key(KEY, None).await.unwrap();

    let mut raw1 = Raw::open(1);
    let mut raw2 = Raw::open(2);
    let s1 = signer(1).await;
    let g1 = Arc::new(Guard::new(
        signer(1).await,
        CHAIN,
        BRIDGE,
        Journal::open(dir.path().join("j1.sqlite")).unwrap(),
    ));
    let g2 = Arc::new(Guard::new(
        signer(2).await,
        CHAIN,
        BRIDGE,
        Journal::open(dir.path().join("j2.sqlite")).unwrap(),
    ));
    let nonces = Arc::new(AtomicU64::new(0));
    let check_key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let check_inputs: Vec<(Vec<u8>, B256)> = (0..n as u64)
        .map(|i| {
            let d = B256::from(digest(i));
            let (sig, _) = check_key.sign_prehash_recoverable(d.as_slice()).unwrap();
            (sig.to_bytes().to_vec(), d)
        })
        .collect();

    let names = [
        "raw-1",
        "raw-2",
        "check-only",
        "signer-1",
        "guarded-1x1",
        "guarded-1x4",
        "guarded-2x8",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    eprintln!("P1: {rounds} rounds × {n} signatures per configuration");
    for r in 0..rounds {
        let times = [
            raw1.run(n),
            raw2.run(n),
            run_check(&check_inputs, check_key.verifying_key()),
            run_signer(&s1, n).await,
            run_guarded(&g1, &nonces, n, 1).await,
            run_guarded(&g1, &nonces, n, 4).await,
            run_guarded(&g2, &nonces, n, 8).await,
        ];
        for (i, t) in times.iter().enumerate() {
            rates[i].push(n as f64 / t.as_secs_f64());
        }
        let line: Vec<String> = names
            .iter()
            .zip(&times)
            .map(|(k, t)| format!("{k} {:.0}/s", n as f64 / t.as_secs_f64()))
            .collect();
        eprintln!("round {}/{rounds}: {}", r + 1, line.join(", "));
    }
    let med: Vec<f64> = rates.into_iter().map(median).collect();
    let rate = |name: &str| med[names.iter().position(|k| *k == name).unwrap()];
    println!("| configuration | signatures/s (median) | vs raw-1 |");
    println!("|---|---:|---:|");
    for (k, m) in names.iter().zip(&med) {
        println!("| {k} | {m:.0} | {:.2} |", m / rate("raw-1"));
    }
    println!();
    let ratio =
        |a: &str, b: &str, goal: &str| println!("{a} / {b} = {:.2}{goal}", rate(a) / rate(b));
    ratio(
        "guarded-1x4",
        "raw-1",
        " (P1 goal ≥ 0.80: guarded vs raw, same one session)",
    );
    ratio("guarded-1x1", "raw-1", " (one vote at a time)");
    ratio(
        "guarded-2x8",
        "guarded-1x4",
        " (P1 goal ≥ 1.60: pool of 2 vs one session)",
    );
    ratio(
        "guarded-2x8",
        "raw-2",
        " (guarded vs raw, same two sessions)",
    );
    ratio(
        "raw-2",
        "raw-1",
        " (what SoftHSM itself gains from a second session)",
    );

    let kms_n = (n / 4).max(4);
    let sim = kms::sim(hsm_sim::FaultConfig::default()).await;
    let sim_rate = kms_rate(&sim.endpoint(), kms_n, rounds).await;
    let moto = kms::Moto::start();
    let moto_rate = kms_rate(&moto.endpoint(), kms_n, rounds).await;
    println!();
    println!(
        "reference, aws-kms backend one at a time: hsm-sim {sim_rate:.0}/s, moto {moto_rate:.0}/s"
    );
}
