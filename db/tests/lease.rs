//! The replicas' leader lease against a real PostgreSQL: one leader among replicas ticking at
//! once, takeover with a new epoch after expiry or release, the old holder fenced, a fenced
//! transaction ordered before a takeover, and a server restart survived by the same handles.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bridge_db::{Db, DbError, Fence, Lease, LeaseConfig, Lock, Term, Value};
use bridge_devkit::postgres::PgServer;
use bridge_devkit::wait::wait_until_blocking;

const TTL: Duration = Duration::from_millis(800);

fn server() -> PgServer {
    let server = PgServer::start().expect("test server");
    server.create_database("lease").expect("create database");
    server
}

/// A replica: its own connection, its own lease handle.
fn replica(server: &PgServer, name: &str, holder: &str) -> Lease {
    let db = Db::postgres(&server.pg_config("lease")).unwrap();
    Lease::new(
        db,
        LeaseConfig {
            name: name.into(),
            holder: holder.into(),
            ttl: TTL,
        },
    )
    .unwrap()
}

/// A vote recorded the way the journal will: the fence checked inside the transaction.
fn record(db: &Db, lease: &Arc<Lease>, what: &'static str) -> Result<u64, DbError> {
    let lease = lease.clone();
    db.transaction(Lock::Exclusive, move |sql| {
        let epoch = lease.check(sql)?;
        sql.execute(
            "INSERT INTO votes (what, epoch) VALUES ($1, $2)",
            &[what.into(), Value::Int(epoch as i64)],
        )?;
        Ok(epoch)
    })
}

fn votes_table(server: &PgServer) -> Db {
    let db = Db::postgres(&server.pg_config("lease")).unwrap();
    db.run(|sql| sql.execute_batch("CREATE TABLE IF NOT EXISTS votes (what TEXT, epoch BIGINT)"))
        .unwrap();
    db
}

#[test]
fn replicas_ticking_at_once_elect_exactly_one_leader() {
    let server = server();
    let dbs: Vec<Db> = (0..3)
        .map(|_| Db::postgres(&server.pg_config("lease")).unwrap())
        .collect();
    for round in 0..20 {
        // A fresh lease name per round: every round is a race for a free lease.
        let name = format!("op-{round}");
        let barrier = Arc::new(Barrier::new(3));
        let threads: Vec<_> = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| {
                let lease = Lease::new(
                    db.clone(),
                    LeaseConfig {
                        name: name.clone(),
                        holder: format!("r{i}"),
                        ttl: TTL,
                    },
                )
                .unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let term = lease.tick().unwrap();
                    (term, lease.holds_now())
                })
            })
            .collect();
        let terms: Vec<(Term, bool)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let leaders: Vec<&Term> = terms
            .iter()
            .filter(|(t, _)| t.is_leading())
            .map(|(t, _)| t)
            .collect();
        assert_eq!(leaders.len(), 1, "round {round}: {terms:?}");
        assert_eq!(leaders[0].epoch(), 1, "round {round}");
        for (t, holds) in &terms {
            assert_eq!(t.is_leading(), *holds, "round {round}");
            if let Term::Following { leader, epoch } = t {
                assert_eq!(*epoch, 1, "round {round}: {terms:?}");
                assert!(leader.is_some(), "round {round}");
            }
        }
    }
}

#[test]
fn after_expiry_the_other_takes_over_with_the_next_epoch() {
    let server = server();
    let a = Arc::new(replica(&server, "op", "a"));
    let b = replica(&server, "op", "b");
    assert_eq!(a.tick().unwrap(), Term::Leading { epoch: 1 });
    assert_eq!(
        b.tick().unwrap(),
        Term::Following {
            leader: Some("a".into()),
            epoch: 1
        }
    );
    // A renews: same epoch.
    assert_eq!(a.tick().unwrap(), Term::Leading { epoch: 1 });
    // A stops ticking (paused); B waits for the expiry.
    let started = Instant::now();
    let term = wait_until_blocking(TTL * 3, "b to take over", || {
        b.tick().ok().filter(Term::is_leading)
    })
    .unwrap();
    assert_eq!(term, Term::Leading { epoch: 2 });
    assert!(started.elapsed() >= TTL / 2, "{:?}", started.elapsed());
    // A's own clock ended its term no later than the database's.
    assert!(!a.holds_now());
    let votes = votes_table(&server);
    let e = record(&votes, &a, "late vote").unwrap_err();
    assert!(matches!(e, DbError::Fenced { .. }), "{e:?}");
    // A ticks again: it follows B.
    assert_eq!(
        a.tick().unwrap(),
        Term::Following {
            leader: Some("b".into()),
            epoch: 2
        }
    );
}

#[test]
fn the_database_fences_an_old_holder_its_own_clock_still_trusts() {
    let server = server();
    let a = Arc::new(replica(&server, "op", "a"));
    let b = replica(&server, "op", "b");
    let votes = votes_table(&server);
    assert!(a.tick().unwrap().is_leading());
    assert_eq!(record(&votes, &a, "first").unwrap(), 1);
    // The row expires early (an operator's action, or a clock the replicas disagree on):
    // B takes over while A's local deadline is still ahead.
    votes
        .run(|sql| {
            sql.execute(
                "UPDATE replica_lease SET expires_at = now() WHERE name = 'op'",
                &[],
            )
        })
        .unwrap();
    assert_eq!(b.tick().unwrap(), Term::Leading { epoch: 2 });
    assert!(a.holds_now(), "A's clock has not run out yet");
    let e = record(&votes, &a, "stale").unwrap_err();
    match &e {
        DbError::Fenced { reason } => assert!(reason.contains("epoch 1"), "{reason}"),
        e => panic!("{e:?}"),
    }
    let b = Arc::new(b);
    assert_eq!(record(&votes, &b, "new").unwrap(), 2);
    // Then A's own deadline passes.
    wait_until_blocking(TTL * 2, "a's local deadline", || {
        (!a.holds_now()).then_some(())
    })
    .unwrap();
    let rows = votes
        .run(|sql| sql.query("SELECT what, epoch FROM votes ORDER BY epoch", &[]))
        .unwrap();
    let rows: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.text(0).unwrap().to_owned(), r.int(1).unwrap()))
        .collect();
    assert_eq!(rows, vec![("first".into(), 1), ("new".into(), 2)]);
}

#[test]
fn a_fenced_transaction_held_open_delays_the_takeover_until_it_commits() {
    let server = server();
    let a = Arc::new(replica(&server, "op", "a"));
    let b = replica(&server, "op", "b");
    let votes = votes_table(&server);
    assert!(a.tick().unwrap().is_leading());
    let ticked = Instant::now();
    // A's journal transaction: checks the fence, then stays open past the lease's expiry.
    let hold = TTL + Duration::from_millis(400);
    let (checked_tx, checked) = std::sync::mpsc::channel();
    let journal = {
        let (a, votes) = (a.clone(), votes.clone());
        std::thread::spawn(move || {
            votes.transaction(Lock::Exclusive, move |sql| {
                let epoch = a.check(sql)?;
                checked_tx.send(()).unwrap();
                std::thread::sleep(hold);
                sql.execute(
                    "INSERT INTO votes (what, epoch) VALUES ('held', $1)",
                    &[Value::Int(epoch as i64)],
                )?;
                // Just before COMMIT is sent.
                Ok((epoch, Instant::now()))
            })
        })
    };
    checked
        .recv_timeout(Duration::from_secs(5))
        .expect("the fence was checked");
    // Past the expiry, B's tick would take over, but the row is locked by A's transaction.
    std::thread::sleep(
        (ticked + TTL + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    );
    let term = b.tick().unwrap();
    let took_over = Instant::now();
    let (epoch, committing) = journal.join().unwrap().unwrap();
    assert_eq!(epoch, 1);
    assert_eq!(term, Term::Leading { epoch: 2 });
    assert!(
        took_over >= committing,
        "B's tick returned {:?} before A's transaction reached its commit",
        committing - took_over
    );
    // The vote A recorded under epoch 1 is in, before B's term.
    let n = votes
        .run(|sql| sql.query_opt("SELECT count(*) FROM votes WHERE what = 'held'", &[]))
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn release_hands_over_at_the_followers_next_tick() {
    let server = server();
    let a = replica(&server, "op", "a");
    let b = replica(&server, "op", "b");
    assert!(a.tick().unwrap().is_leading());
    assert!(!b.tick().unwrap().is_leading());
    a.release().unwrap();
    assert!(!a.holds_now());
    let started = Instant::now();
    assert_eq!(b.tick().unwrap(), Term::Leading { epoch: 2 });
    assert!(started.elapsed() < TTL / 2);
    // A release by a holder that lost the lease changes nothing.
    a.release().unwrap();
    assert_eq!(b.tick().unwrap(), Term::Leading { epoch: 2 });
}

#[test]
fn a_server_restart_fails_ticks_then_the_same_handles_work_again() {
    let mut server = server();
    let a = replica(&server, "op", "a");
    assert!(a.tick().unwrap().is_leading());
    server.stop().unwrap();
    let e = a.tick().unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    // Still leading by its own clock until the deadline, then not.
    wait_until_blocking(TTL * 2, "a's local deadline", || {
        (!a.holds_now()).then_some(())
    })
    .unwrap();
    assert!(a.tick().unwrap_err().is_unavailable());
    server.start_again().unwrap();
    let term = a.tick().unwrap();
    // Its own row had expired: a new term.
    assert_eq!(term, Term::Leading { epoch: 2 });
}

#[test]
fn a_lease_needs_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(
        dir.path().join("x.db"),
        bridge_db::SqliteOptions {
            synchronous: bridge_db::Synchronous::Full,
            busy_timeout: Duration::from_secs(1),
        },
    )
    .unwrap();
    let e = Lease::new(
        db,
        LeaseConfig {
            name: "op".into(),
            holder: "a".into(),
            ttl: TTL,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("postgres"), "{e}");
}
