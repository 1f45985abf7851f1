//! The agent's store and rotation records on both backends: one body per behaviour, run on a
//! SQLite file and on a real PostgreSQL server (`bridge_devkit::postgres::PgServer`, its own
//! temp folder and Unix socket). "Reopening" is a new connection to the same file or database.
//!
//! The ignored `record_window_throughput` prints the figure for BENCHMARKS.md:
//! `cargo test --test store_backends -- --ignored --nocapture`.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use bridge_agent::config::Side;
use bridge_agent::direction::Direction;
use bridge_agent::rotation::{NewKey, RotationStore, RotationStoreError, Step};
use bridge_agent::store::{
    Cursor, OwnVote, RequestState, SQLITE_OPTIONS, Store, StoreError, UnexecutableReason,
};
use bridge_db::{Db, Kind};
use bridge_devkit::postgres::PgServer;

const P2C: Direction = Direction::ParentToChild;

/// Where a test's store lives; dropped at the end of the test (the server stopped).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgServer),
}

const DB_NAME: &str = "bridge_store";

impl Backend {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Self {
        let server = PgServer::start().expect("start a PostgreSQL test server");
        server.create_database(DB_NAME).expect("create database");
        Self::Postgres(server)
    }

    /// A new connection to the test's store.
    fn db(&self) -> Db {
        self.try_db().expect("open the test store")
    }

    fn try_db(&self) -> Result<Db, bridge_db::DbError> {
        match self {
            Self::Sqlite(dir) => Db::sqlite(dir.path().join("store.sqlite"), SQLITE_OPTIONS),
            // As the agent opens its store: commits like SQLite's NORMAL.
            Self::Postgres(server) => Db::postgres(&bridge_db::PgConfig {
                durable_commits: false,
                ..server.pg_config(DB_NAME)
            }),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    fn store(&self) -> Store {
        Store::with_db(self.db()).unwrap()
    }
}

/// One body, two tests: `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[test]
            fn sqlite() {
                super::$body(super::Backend::sqlite());
            }
            #[test]
            fn postgres() {
                super::$body(super::Backend::postgres());
            }
        }
    )*};
}

on_both_backends!(
    window_cursor_and_states_survive_reopen,
    own_votes_replace_and_forget_and_unexecutable_is_recorded_once,
    rotation_steps_are_recorded_once_and_the_accepted_key_follows_each_chain,
    a_store_from_a_newer_agent_is_refused_untouched,
    a_window_is_recorded_whole_or_not_at_all,
    a_large_window_with_a_repeated_nonce_is_recorded_whole_and_read_back_in_bulk,
);

fn window_cursor_and_states_survive_reopen(backend: Backend) {
    let (h1, h2, b) = (
        B256::repeat_byte(1),
        B256::repeat_byte(2),
        B256::repeat_byte(0xbb),
    );
    {
        let s = backend.store();
        assert_eq!(s.cursor(P2C).unwrap(), None);
        let cursor = Cursor {
            next_block: 11,
            last: Some((10, b)),
        };
        s.record_window(P2C, &[(0, h1, 5, b), (1, h2, 9, b)], cursor)
            .unwrap();
        s.set_state(P2C, 0, RequestState::Voted, Some(h2)).unwrap();
        // A rescan of the same window keeps the state and the vote hash.
        s.record_window(P2C, &[(0, h1, 5, b)], cursor).unwrap();
    }
    let s = backend.store();
    assert_eq!(
        s.cursor(P2C).unwrap(),
        Some(Cursor {
            next_block: 11,
            last: Some((10, b))
        })
    );
    assert_eq!(s.cursor(Direction::ChildToParent).unwrap(), None);
    let r0 = s.request(P2C, 0).unwrap().unwrap();
    assert_eq!(
        (r0.state, r0.vote_hash, r0.block_number, r0.tx_hash),
        (RequestState::Voted, Some(h2), 5, h1)
    );
    let seen = s.requests_in(P2C, RequestState::Seen).unwrap();
    assert_eq!(seen.iter().map(|r| r.nonce).collect::<Vec<_>>(), vec![1]);
    s.set_vote_hash(P2C, 1, h1).unwrap();
    assert_eq!(s.request(P2C, 1).unwrap().unwrap().vote_hash, Some(h1));
    s.set_state(P2C, 1, RequestState::Executed, None).unwrap();
    assert!(s.requests_in(P2C, RequestState::Seen).unwrap().is_empty());
    // A state change without a vote hash keeps the one recorded.
    assert_eq!(s.request(P2C, 1).unwrap().unwrap().vote_hash, Some(h1));
    // A cursor without a last block.
    let bare = Cursor {
        next_block: 3,
        last: None,
    };
    s.record_window(Direction::ChildToParent, &[], bare)
        .unwrap();
    assert_eq!(s.cursor(Direction::ChildToParent).unwrap(), Some(bare));
    assert!(matches!(
        s.set_state(P2C, u64::MAX, RequestState::Seen, None),
        Err(StoreError::OutOfRange { .. })
    ));
}

/// A catch-up window holds more requests than one statement takes (they are split), and a
/// nonce seen twice in it (the later sighting wins) does not fail the window.
fn a_large_window_with_a_repeated_nonce_is_recorded_whole_and_read_back_in_bulk(backend: Backend) {
    let s = backend.store();
    let b = B256::repeat_byte(0xbb);
    let mut window: Vec<(u64, B256, u64, B256)> = (0..2_500u64)
        .map(|n| (n, B256::from(alloy::primitives::U256::from(n)), 100 + n, b))
        .collect();
    window.push((7, B256::repeat_byte(0x77), 9_999, b));
    let cursor = Cursor {
        next_block: 10_000,
        last: Some((9_999, b)),
    };
    s.record_window(P2C, &window, cursor).unwrap();
    let seen = s.requests_in(P2C, RequestState::Seen).unwrap();
    assert_eq!(seen.len(), 2_500);
    assert_eq!(seen.last().unwrap().nonce, 2_499);
    assert_eq!(seen[1_999].block_number, 2_099);
    let r7 = s.request(P2C, 7).unwrap().unwrap();
    assert_eq!(
        (r7.tx_hash, r7.block_number),
        (B256::repeat_byte(0x77), 9_999)
    );
    assert_eq!(s.cursor(P2C).unwrap(), Some(cursor));

    // The vote hashes of many nonces at once: more than one query's worth, unsorted, with
    // repeats, nonces without a vote hash and nonces never seen.
    for n in (0..2_500u64).step_by(3) {
        s.set_vote_hash(P2C, n, B256::from(alloy::primitives::U256::from(n + 1)))
            .unwrap();
    }
    let asked: Vec<u64> = (0..700u64).rev().chain([3, 3, 2_499, 9_000]).collect();
    let hashes = s.vote_hashes(P2C, asked.iter().copied()).unwrap();
    let expected: std::collections::HashMap<u64, B256> = asked
        .iter()
        .filter(|&&n| n % 3 == 0 && n < 2_500)
        .map(|&n| (n, B256::from(alloy::primitives::U256::from(n + 1))))
        .collect();
    assert_eq!(hashes, expected);
    assert!(
        s.vote_hashes(Direction::ChildToParent, asked)
            .unwrap()
            .is_empty()
    );
}

fn own_votes_replace_and_forget_and_unexecutable_is_recorded_once(backend: Backend) {
    let s = backend.store();
    assert_eq!(s.own_vote(P2C, 1).unwrap(), None);
    let mut v = OwnVote {
        nonce: 1,
        vote_key: B256::repeat_byte(1),
        voter: Address::repeat_byte(2),
        tx_hash: B256::repeat_byte(3),
        block_number: 4,
        operators_hash: Some(B256::repeat_byte(5)),
    };
    s.record_own_vote(P2C, &v).unwrap();
    v.tx_hash = B256::repeat_byte(6);
    v.operators_hash = None;
    s.record_own_vote(P2C, &v).unwrap();
    assert_eq!(s.own_vote(P2C, 1).unwrap(), Some(v.clone()));
    assert_eq!(s.own_vote(Direction::ChildToParent, 1).unwrap(), None);
    s.forget_own_vote(P2C, 1).unwrap();
    assert_eq!(s.own_vote(P2C, 1).unwrap(), None);
    assert_eq!(s.audit_cursor(P2C).unwrap(), None);
    s.set_audit_cursor(P2C, 40).unwrap();
    s.set_audit_cursor(P2C, 41).unwrap();
    assert_eq!(s.audit_cursor(P2C).unwrap(), Some(41));

    let r = UnexecutableReason::PayoutRefused;
    assert!(s.record_unexecutable(P2C, 7, r, "refused").unwrap());
    assert!(!s.record_unexecutable(P2C, 7, r, "again").unwrap());
    assert_eq!(s.unexecutable(P2C, 7).unwrap(), Some((r, "refused".into())));
    assert_eq!(s.unexecutable(P2C, 8).unwrap(), None);
    let counts = s.unexecutable_counts(P2C).unwrap();
    assert_eq!(counts.len(), 3);
    assert!(counts.contains(&(r, 1)));
    assert!(counts.contains(&(UnexecutableReason::MintFailed, 0)));
}

fn rotation_steps_are_recorded_once_and_the_accepted_key_follows_each_chain(backend: Backend) {
    let store = RotationStore::with_db(backend.db()).unwrap();
    assert_eq!(store.latest().unwrap(), None);
    let (old, new) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let key = NewKey::Pkcs11 {
        key_label: "operator-1-r1".into(),
    };
    let chosen = key.clone();
    let (id, got) = store.begin(old, move |_| chosen).unwrap();
    assert_eq!(got, key);
    assert_eq!(store.accepted_key(Side::Parent).unwrap(), None);
    store.set_new_address(id, new).unwrap();
    store.record(id, Step::Fund(Side::Parent), "0xaa").unwrap();
    store.record(id, Step::Fund(Side::Parent), "0xbb").unwrap();
    store
        .record(id, Step::Accept(Side::Parent), "0xcc")
        .unwrap();
    let r = store.latest().unwrap().unwrap();
    assert_eq!((r.id, r.old, r.new), (id, old, Some(new)));
    assert!(r.done(Step::Key) && r.done(Step::Fund(Side::Parent)));
    assert!(!r.done(Step::Accept(Side::Child)) && !r.finished());
    // Steps in the order recorded (several in the same second).
    let names: Vec<&str> = r.steps.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["key", "fund:parent", "accept:parent"]);
    assert_eq!(r.steps[1].1, "0xaa", "first detail kept");
    // Parent's seat moved, child's not yet: each side has its own seated key.
    assert_eq!(
        store.accepted_key(Side::Parent).unwrap(),
        Some((key.clone(), new))
    );
    assert_eq!(store.accepted_key(Side::Child).unwrap(), None);
    store.record(id, Step::Retire, "old").unwrap();
    assert!(store.get(id).unwrap().unwrap().finished());
    // A second rotation gets the next id and is the latest.
    let (id2, _) = store.begin(new, move |_| key).unwrap();
    assert!(id2 > id);
    assert_eq!(store.latest().unwrap().unwrap().id, id2);
    // Reopened (another process): the same records, beside the agent's store.
    let again = RotationStore::with_db(backend.db()).unwrap();
    assert_eq!(again.all().unwrap().len(), 2);
    assert_eq!(again.get(id).unwrap(), store.get(id).unwrap());
    drop(Store::with_db(backend.db()).unwrap());
}

fn a_store_from_a_newer_agent_is_refused_untouched(backend: Backend) {
    let db = backend.db();
    let newer = match db.kind() {
        Kind::Sqlite => "PRAGMA user_version = 9",
        Kind::Postgres => {
            "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version BIGINT NOT NULL);
             INSERT INTO schema_versions VALUES ('store', 9)"
        }
    };
    db.run(move |sql| sql.execute_batch(newer)).unwrap();
    let e = Store::with_db(backend.db()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NewerSchema {
                found: 9,
                supported: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("schema version 9"), "{e}");
    let e = RotationStore::with_db(backend.db()).unwrap_err();
    assert!(
        matches!(
            e,
            RotationStoreError::Store(StoreError::NewerSchema { found: 9, .. })
        ),
        "{e:?}"
    );
    // Nothing was created in the refused store.
    let tables = match db.kind() {
        Kind::Sqlite => "SELECT count(*) FROM sqlite_master",
        Kind::Postgres => {
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name <> 'schema_versions'"
        }
    };
    let n = db
        .run(move |sql| sql.query_opt(tables, &[]))
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(n, 0, "a refused store was written to");
}

fn a_window_is_recorded_whole_or_not_at_all(backend: Backend) {
    let s = backend.store();
    let b = B256::repeat_byte(7);
    let before = Cursor {
        next_block: 5,
        last: Some((4, b)),
    };
    s.record_window(P2C, &[(0, b, 1, b)], before).unwrap();
    // A value that cannot be stored is refused before anything is written.
    let after = Cursor {
        next_block: 9,
        last: Some((8, b)),
    };
    let e = s
        .record_window(P2C, &[(1, b, 6, b), (2, b, u64::MAX, b)], after)
        .unwrap_err();
    assert!(matches!(e, StoreError::OutOfRange { .. }), "{e:?}");
    assert_eq!(s.cursor(P2C).unwrap(), Some(before));
    assert_eq!(s.request(P2C, 1).unwrap(), None);
    // The database fails the cursor's write after the window's requests were written: the
    // transaction rolls back, no request of the window is kept.
    s.db()
        .run(|sql| sql.execute_batch("DROP TABLE cursors"))
        .unwrap();
    let e = s.record_window(P2C, &[(1, b, 6, b)], after).unwrap_err();
    assert!(matches!(e, StoreError::Db(_)), "{e:?}");
    assert_eq!(s.request(P2C, 1).unwrap(), None);
    assert!(s.request(P2C, 0).unwrap().is_some());
}

/// N `record_window` calls of one request each (the watcher's shape at the chain's tip), on
/// each backend in one run; prints requests per second.
#[test]
#[ignore = "a figure for BENCHMARKS.md, not a check: --ignored --nocapture"]
fn record_window_throughput() {
    const N: u64 = 10_000;
    for backend in [Backend::sqlite(), Backend::postgres()] {
        let s = match backend
            .try_db()
            .map_err(StoreError::from)
            .and_then(Store::with_db)
        {
            Ok(s) => s,
            Err(e) => {
                println!("record_window on {}: not measured: {e}", backend.name());
                continue;
            }
        };
        let kind = s.db().kind();
        let h = B256::repeat_byte(3);
        let start = Instant::now();
        for nonce in 0..N {
            let cursor = Cursor {
                next_block: nonce + 1,
                last: Some((nonce, h)),
            };
            s.record_window(P2C, &[(nonce, h, nonce, h)], cursor)
                .unwrap();
        }
        let took = start.elapsed();
        assert_eq!(
            s.requests_in(P2C, RequestState::Seen).unwrap().len() as u64,
            N
        );
        println!(
            "record_window x{N} on {kind:?}: {:.2} s, {:.0} windows/s, {:.0} µs each",
            took.as_secs_f64(),
            N as f64 / took.as_secs_f64(),
            took.as_micros() as f64 / N as f64
        );
        assert!(took < Duration::from_secs(600));
    }
}
