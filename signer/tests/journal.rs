//! The vote journal's rules on both backends (one body, a SQLite case and a PostgreSQL case on
//! a throw-away devkit server), and across replicas: two journals on one database never record
//! two different votes for one key, and a journal whose fence lost the lease records nothing.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use bridge_db::{Db, Fence, Lease, LeaseConfig, Value};
use bridge_devkit::postgres::PgServer;
use bridge_signer::guard::{Journal, JournalError, Namespace, Recorded, VoteKey};

/// Where the journals of one test live.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(PgServer),
}

const DB: &str = "journal";

impl Fixture {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Self {
        let server = PgServer::start().expect("start PostgreSQL");
        server.create_database(DB).expect("create database");
        Self::Postgres(server)
    }

    /// A new connection to the test's database.
    fn db(&self) -> Db {
        match self {
            Self::Sqlite(dir) => Db::sqlite(
                dir.path().join("journal.sqlite"),
                bridge_db::SqliteOptions {
                    synchronous: bridge_db::Synchronous::Full,
                    busy_timeout: Duration::from_secs(10),
                },
            )
            .unwrap(),
            Self::Postgres(server) => Db::postgres(&server.pg_config(DB)).unwrap(),
        }
    }

    /// A journal as the agent opens it: the file itself, or the shared database.
    fn open(&self) -> Journal {
        match self {
            Self::Sqlite(dir) => Journal::open(dir.path().join("journal.sqlite")).unwrap(),
            Self::Postgres(_) => Journal::with_db(self.db(), None).unwrap(),
        }
    }
}

/// Runs a test body once on each backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Fixture::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(&super::Fixture::postgres());
            }
        }
    )*};
}

both_backends!(
    same_new_conflict_and_reopen,
    concurrent_records_are_exact,
    two_journals_race_the_same_keys,
);

fn key(nonce: u64) -> VoteKey {
    VoteKey {
        chain_id: 1001,
        bridge: Address::repeat_byte(0xbb),
        namespace: Namespace::Request,
        nonce,
    }
}

fn same_new_conflict_and_reopen(fx: &Fixture) {
    let key = key(7);
    let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
    {
        let j = fx.open();
        assert_eq!(j.check_and_record(&key, &a, "f").unwrap(), Recorded::New);
        assert_eq!(j.check_and_record(&key, &a, "f").unwrap(), Recorded::Same);
        let config_key = VoteKey {
            namespace: Namespace::Config,
            ..key
        };
        assert_eq!(
            j.check_and_record(&config_key, &b, "g").unwrap(),
            Recorded::New
        );
    }
    let j = fx.open();
    assert_eq!(
        j.check_and_record(&key, &b, "f").unwrap(),
        Recorded::Conflict { recorded: a }
    );
    assert_eq!(j.lookup(&key).unwrap(), Some(a));
    assert_eq!(j.lookup(&self::key(8)).unwrap(), None);
    assert_eq!(j.conflict_count().unwrap(), 1);
    let huge = VoteKey {
        nonce: u64::MAX,
        ..key
    };
    assert!(matches!(
        j.check_and_record(&huge, &a, "f"),
        Err(JournalError::OutOfRange { .. })
    ));
    // Without a fence, rows name no lease term.
    let stamps = fx
        .db()
        .run(|sql| sql.query("SELECT epoch, holder FROM votes", &[]))
        .unwrap();
    assert_eq!(stamps.len(), 2);
    assert!(stamps.iter().all(|r| r.0 == [Value::Null, Value::Null]));
}

/// Many threads at once (group commit): every key gets exactly one first vote, racing
/// different votes for one key yield one `New` and the rest `Conflict`, and everything is
/// there after reopening.
fn concurrent_records_are_exact(fx: &Fixture) {
    let j = Arc::new(fx.open());
    let outcomes: Vec<(u64, Recorded)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let j = Arc::clone(&j);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..40u64 {
                        let nonce = 1000 + t * 40 + i;
                        out.push((
                            nonce,
                            j.check_and_record(&key(nonce), &B256::repeat_byte(1), "f")
                                .unwrap(),
                        ));
                    }
                    // All threads race on nonce 1, each with its own vote.
                    out.push((
                        1,
                        j.check_and_record(&key(1), &B256::repeat_byte(10 + t as u8), "f")
                            .unwrap(),
                    ));
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let racing: Vec<_> = outcomes
        .iter()
        .filter(|(n, _)| *n == 1)
        .map(|(_, r)| *r)
        .collect();
    assert_eq!(racing.iter().filter(|r| **r == Recorded::New).count(), 1);
    assert_eq!(
        racing
            .iter()
            .filter(|r| matches!(r, Recorded::Conflict { .. }))
            .count(),
        7
    );
    assert!(
        outcomes
            .iter()
            .filter(|(n, _)| *n != 1)
            .all(|(_, r)| *r == Recorded::New)
    );
    drop(j);
    let j = fx.open();
    for nonce in 1000..1000 + 8 * 40 {
        assert_eq!(j.lookup(&key(nonce)).unwrap(), Some(B256::repeat_byte(1)));
    }
    assert_eq!(j.conflict_count().unwrap(), 7);
}

/// Two journals on one database (two replicas; two processes sharing a file), four threads
/// each, racing the same 60 keys with a vote of their own: exactly one `New` per key, never
/// two, and the vote recorded is the one that got it; every other attempt is a `Conflict`.
fn two_journals_race_the_same_keys(fx: &Fixture) {
    const KEYS: u64 = 60;
    let journals = [Arc::new(fx.open()), Arc::new(fx.open())];
    let outcomes: Vec<(u64, B256, Recorded)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|t| {
                let j = Arc::clone(&journals[usize::from(t % 2)]);
                s.spawn(move || {
                    let vote = B256::repeat_byte(0x40 + t);
                    (0..KEYS)
                        .map(|n| (n, vote, j.check_and_record(&key(n), &vote, "f").unwrap()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for n in 0..KEYS {
        let firsts: Vec<B256> = outcomes
            .iter()
            .filter(|(k, _, r)| *k == n && *r == Recorded::New)
            .map(|(_, v, _)| *v)
            .collect();
        assert_eq!(firsts.len(), 1, "key {n}: {} first votes", firsts.len());
        assert_eq!(journals[0].lookup(&key(n)).unwrap(), Some(firsts[0]));
        assert_eq!(journals[1].lookup(&key(n)).unwrap(), Some(firsts[0]));
        let others = outcomes
            .iter()
            .filter(|(k, _, r)| *k == n && *r != Recorded::New);
        for (_, _, r) in others {
            assert_eq!(
                *r,
                Recorded::Conflict {
                    recorded: firsts[0]
                },
                "key {n}"
            );
        }
    }
    assert_eq!(journals[0].conflict_count().unwrap(), KEYS * 7);
}

/// A lease of `holder` on the fixture's database, ticked once: leading or not.
fn lease(fx: &Fixture, holder: &str, ttl: Duration) -> Arc<Lease> {
    let lease = Lease::new(
        fx.db(),
        LeaseConfig {
            name: "operator-1".into(),
            holder: holder.into(),
            ttl,
        },
    )
    .unwrap();
    lease.tick().unwrap();
    Arc::new(lease)
}

fn fenced(fx: &Fixture, lease: &Arc<Lease>) -> Journal {
    let fence: Arc<dyn Fence> = Arc::clone(lease) as Arc<dyn Fence>;
    Journal::with_db(fx.db(), Some(fence)).unwrap()
}

/// A fenced journal records under its epoch while it leads. After its term ends (by its own
/// clock) and another replica takes over with the next epoch, it records nothing: every vote
/// of its batch is refused `Fenced`. A takeover the database saw but this process did not
/// (its local term still runs) is refused too.
#[test]
fn fenced_journal_refuses_after_takeover() {
    let fx = Fixture::postgres();
    let ttl = Duration::from_millis(600);
    let a = lease(&fx, "replica-a", ttl);
    assert!(a.term().is_leading());
    let ja = fenced(&fx, &a);
    assert_eq!(
        ja.check_and_record(&key(1), &B256::repeat_byte(0xa1), "f")
            .unwrap(),
        Recorded::New
    );

    // A stops renewing; past the TTL, B takes over.
    std::thread::sleep(ttl + Duration::from_millis(200));
    // B's term is long enough for the rest of the test.
    let b = lease(&fx, "replica-b", Duration::from_secs(5));
    assert_eq!(b.term(), bridge_db::Term::Leading { epoch: 2 });
    assert!(!a.holds_now());
    let jb = fenced(&fx, &b);
    // Several callers at once, so the refusal covers a whole batch.
    let refused: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (2..6u64)
            .map(|n| {
                let ja = &ja;
                s.spawn(move || ja.check_and_record(&key(n), &B256::repeat_byte(0xa2), "f"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in refused {
        let e = r.unwrap_err();
        assert!(matches!(e, JournalError::Fenced { .. }), "{e:?}");
        assert!(e.to_string().contains("not the leader"), "{e}");
    }
    for n in 2..6 {
        assert_eq!(
            jb.lookup(&key(n)).unwrap(),
            None,
            "a fenced vote was recorded"
        );
    }
    assert_eq!(
        jb.check_and_record(&key(2), &B256::repeat_byte(0xb2), "f")
            .unwrap(),
        Recorded::New
    );

    // B's term still runs by its clock, but the database moved on (an operator's takeover,
    // a replica with a faster clock): the check in the transaction refuses.
    fx.db()
        .run(|sql| {
            sql.execute(
                "UPDATE replica_lease SET holder = 'replica-c', epoch = epoch + 1",
                &[],
            )
        })
        .unwrap();
    assert!(b.holds_now());
    let e = jb
        .check_and_record(&key(3), &B256::repeat_byte(0xb3), "f")
        .unwrap_err();
    assert!(matches!(e, JournalError::Fenced { .. }), "{e:?}");
    assert!(e.to_string().contains("no longer this replica's"), "{e}");
    assert_eq!(jb.lookup(&key(3)).unwrap(), None);
    // A re-send of a recorded vote is refused too: it would be another signature.
    let e = jb
        .check_and_record(&key(2), &B256::repeat_byte(0xb2), "f")
        .unwrap_err();
    assert!(matches!(e, JournalError::Fenced { .. }), "{e:?}");

    // Each row names the term that wrote it.
    let rows = fx
        .db()
        .run(|sql| sql.query("SELECT nonce, epoch, holder FROM votes ORDER BY nonce", &[]))
        .unwrap();
    let rows: Vec<(i64, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r.int(0).unwrap(),
                r.int(1).unwrap(),
                r.text(2).unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![(1, 1, "replica-a".into()), (2, 2, "replica-b".into())]
    );
}
