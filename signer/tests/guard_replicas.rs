//! The guard of one replica among several (journal in PostgreSQL, leader fence): it signs
//! only while it holds the lease, re-checks the lease after journalling (a process paused
//! between the two must not sign after its term), and fails closed while the database is down.

mod common;
#[path = "common/votes.rs"]
mod votes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Signature};
use async_trait::async_trait;
use bridge_db::{Db, DbError, Fence, FenceSql, Lease, LeaseConfig};
use bridge_devkit::postgres::PgServer;
use bridge_signer::guard::{Journal, JournalError};
use bridge_signer::{Guard, GuardError, Signer, SignerError};
use common::LocalKey;
use votes::*;

/// A real key that counts how often it was asked, so a test can assert nothing was signed.
#[derive(Debug)]
struct Counted {
    key: LocalKey,
    asked: Arc<AtomicU64>,
}

#[async_trait]
impl Signer for Counted {
    fn address(&self) -> Address {
        self.key.address()
    }

    async fn sign_hash(&self, hash: &B256) -> Result<Signature, SignerError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.key.sign_hash(hash).await
    }
}

/// The real lease, with a pause when asked to as the guard re-checks it: the process stalls
/// (GC, swap, SIGSTOP) after the journal recorded the vote and before the guard asks the
/// backend.
#[derive(Debug)]
struct PausesAfterRecord {
    lease: Arc<Lease>,
    pause_ms: AtomicU64,
}

impl Fence for PausesAfterRecord {
    fn sql(&self) -> Result<FenceSql, DbError> {
        self.lease.sql()
    }

    fn holds_now(&self) -> bool {
        std::thread::sleep(Duration::from_millis(self.pause_ms.load(Ordering::SeqCst)));
        self.lease.holds_now()
    }

    fn holder(&self) -> &str {
        self.lease.holder()
    }
}

const DB: &str = "replica";

fn server() -> PgServer {
    let server = PgServer::start().expect("start PostgreSQL");
    server.create_database(DB).expect("create database");
    server
}

fn guard(journal: Journal) -> (Guard<Counted>, Arc<AtomicU64>) {
    let asked = Arc::new(AtomicU64::new(0));
    let signer = Counted {
        key: LocalKey::new(5),
        asked: Arc::clone(&asked),
    };
    (Guard::new(signer, CHAIN, BRIDGE, journal), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_signs_only_within_its_term() {
    let server = server();
    let ttl = Duration::from_millis(800);
    let lease = Arc::new(
        Lease::new(
            Db::postgres(&server.pg_config(DB)).unwrap(),
            LeaseConfig {
                name: "operator-1".into(),
                holder: "replica-a".into(),
                ttl,
            },
        )
        .unwrap(),
    );
    assert!(lease.tick().unwrap().is_leading());
    let fence = Arc::new(PausesAfterRecord {
        lease: Arc::clone(&lease),
        pause_ms: AtomicU64::new(0),
    });
    let journal = Journal::with_db(
        Db::postgres(&server.pg_config(DB)).unwrap(),
        Some(Arc::clone(&fence) as Arc<dyn Fence>),
    )
    .unwrap();
    let (g, asked) = guard(journal);

    g.sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(1, 100)))
        .await
        .expect("the leader signs");
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // Paused past the term after the journal recorded: the vote is journalled, never signed.
    fence
        .pause_ms
        .store(ttl.as_millis() as u64 + 200, Ordering::SeqCst);
    let got = g
        .sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(2, 100)))
        .await;
    assert!(
        matches!(&got, Err(GuardError::Fenced(reason)) if reason.contains("replica-a")),
        "{got:?}"
    );
    assert!(got.unwrap_err().to_string().contains("not the leader"));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "signed after the term");
    assert_eq!(g.counters().fenced(), 1);
    fence.pause_ms.store(0, Ordering::SeqCst);

    // The term is over: the journal refuses first, and records nothing.
    let got = g
        .sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(3, 100)))
        .await;
    assert!(matches!(got, Err(GuardError::Fenced(_))), "{got:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(g.counters().fenced(), 2);
    assert_eq!(g.counters().signed(), 1);
    let key3 = bridge_signer::guard::VoteKey {
        chain_id: CHAIN,
        bridge: BRIDGE,
        namespace: bridge_signer::guard::Namespace::Request,
        nonce: 3,
    };
    assert_eq!(g.journal().lookup(&key3).unwrap(), None);

    // Leading again (nobody else took it): signs, and the vote journalled during the pause
    // may be re-sent.
    assert!(lease.tick().unwrap().is_leading());
    g.sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(3, 100)))
        .await
        .expect("signs again");
    g.sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(2, 100)))
        .await
        .expect("re-sends the journalled vote");
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    assert_eq!(g.counters().fenced(), 2);
}

/// The database is the journal: while it is down nothing is signed (fail closed); once it is
/// back the same guard signs, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_refuses_then_signs_when_back() {
    let mut server = server();
    let journal = Journal::with_db(Db::postgres(&server.pg_config(DB)).unwrap(), None).unwrap();
    let (g, asked) = guard(journal);
    g.sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(1, 100)))
        .await
        .unwrap();

    server.stop().unwrap();
    let got = g
        .sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(2, 100)))
        .await;
    assert!(
        matches!(&got, Err(GuardError::Journal(JournalError::Db { source, .. })) if source.is_unavailable()),
        "{got:?}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1, "signed without a journal");
    // The error names the database, never its password.
    let text = format!("{got:?} {}", got.as_ref().unwrap_err());
    assert!(text.contains("unavailable"), "{text}");
    assert!(!text.contains(server.password()), "password in: {text}");
    assert!(!format!("{:?}", g.journal()).contains(server.password()));

    server.start_again().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match g
            .sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(2, 100)))
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still refusing after the database came back: {e}"),
        }
    }
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(g.counters().fenced(), 0);
}
