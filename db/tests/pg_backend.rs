//! The PostgreSQL backend against a real server (the devkit's, on a Unix socket; through the
//! devkit's TCP proxy for network faults): value mapping, transactions, errors with their
//! SQLSTATE, reconnecting after a restart or a cut, bounded calls when the network stalls,
//! and no password in any message.

use std::time::{Duration, Instant};

use bridge_db::{Db, DbError, Kind, Lock, Row, Value};
use bridge_devkit::postgres::{PgServer, ProxyMode, SocketProxy};

fn server_and_db(name: &str) -> (PgServer, Db) {
    let server = PgServer::start().expect("test server");
    server.create_database(name).expect("create database");
    let db = Db::postgres(&server.pg_config(name)).expect("connect");
    (server, db)
}

/// Every text a caller could print of `e`.
fn texts(e: &DbError) -> String {
    format!("{e} {e:?}")
}

#[test]
fn values_round_trip_and_read_back_as_the_same_kinds() {
    let (_server, db) = server_and_db("values");
    assert_eq!(db.kind(), Kind::Postgres);
    let rows = db
        .run(|sql| {
            sql.execute_batch(
                "CREATE TABLE t (i BIGINT, s TEXT, b BYTEA, small INT4, tiny INT2, v VARCHAR(10))",
            )?;
            let n = sql.execute(
                "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)",
                &[
                    Value::Int(i64::MIN),
                    "héllo".into(),
                    Value::Bytes(vec![0, 255, 7]),
                    Value::Int(-5),
                    Value::Int(300),
                    "v".into(),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            )?;
            assert_eq!(n, 2);
            sql.query(
                "SELECT i, s, b, small, tiny, v, i IS NULL FROM t ORDER BY i NULLS LAST",
                &[],
            )
        })
        .unwrap();
    assert_eq!(
        rows,
        vec![
            Row(vec![
                Value::Int(i64::MIN),
                "héllo".into(),
                Value::Bytes(vec![0, 255, 7]),
                Value::Int(-5),
                Value::Int(300),
                "v".into(),
                Value::Int(0),
            ]),
            Row(vec![
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Int(1),
            ]),
        ]
    );
    // Parameters compared with INT4 columns, and a NULL in any position.
    let row = db
        .run(|sql| {
            sql.query_opt(
                "SELECT count(*) FROM t WHERE small = $1 AND ($2::text IS NULL)",
                &[Value::Int(-5), Value::Null],
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(row.int(0).unwrap(), 1);
    // A type this layer does not read is named, not guessed.
    let e = db.run(|sql| sql.query("SELECT now()", &[])).unwrap_err();
    assert!(e.to_string().contains("timestamp"), "{e}");
}

#[test]
fn a_transaction_commits_on_ok_and_rolls_back_on_err() {
    let (_server, db) = server_and_db("tx");
    db.run(|sql| sql.execute_batch("CREATE TABLE t (k BIGINT PRIMARY KEY)"))
        .unwrap();
    db.transaction(Lock::Write, |sql| {
        sql.execute("INSERT INTO t VALUES (1)", &[])
    })
    .unwrap();
    let e = db
        .transaction(Lock::Exclusive, |sql| {
            sql.execute("INSERT INTO t VALUES (2)", &[])?;
            Err::<(), _>(DbError::Fenced {
                reason: "test".into(),
            })
        })
        .unwrap_err();
    assert!(matches!(e, DbError::Fenced { .. }));
    // A server error carries its SQLSTATE; work that swallows it cannot commit the rest.
    let e = db
        .transaction(Lock::Write, |sql| {
            sql.execute("INSERT INTO t VALUES (3)", &[])?;
            let dup = sql.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
            assert!(
                matches!(&dup, DbError::Postgres { code: Some(c), .. } if c == "23505"),
                "{dup:?}"
            );
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&e, DbError::Postgres { code: Some(c), .. } if c == "25P02"),
        "{e:?}"
    );
    // …unless a savepoint rolled the error back.
    db.transaction(Lock::Write, |sql| {
        sql.execute("INSERT INTO t VALUES (4)", &[])?;
        sql.execute_batch("SAVEPOINT s")?;
        sql.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
        sql.execute_batch("ROLLBACK TO SAVEPOINT s")
    })
    .unwrap();
    let keys: Vec<i64> = db
        .run(|sql| sql.query("SELECT k FROM t ORDER BY k", &[]))
        .unwrap()
        .iter()
        .map(|r| r.int(0).unwrap())
        .collect();
    assert_eq!(keys, vec![1, 4]);
    // The connection is still good after all that.
    db.run(|sql| sql.execute("SELECT 1", &[])).unwrap();
}

#[test]
fn a_panicking_work_panics_the_caller_and_the_handle_goes_on() {
    let (_server, db) = server_and_db("panics");
    db.run(|sql| sql.execute_batch("CREATE TABLE t (k BIGINT)"))
        .unwrap();
    let d = db.clone();
    let caught = std::thread::spawn(move || {
        d.transaction(Lock::Write, |sql| {
            sql.execute("INSERT INTO t VALUES (1)", &[])?;
            panic!("work panics");
            #[allow(unreachable_code)]
            Ok(())
        })
    })
    .join();
    assert!(caught.is_err());
    let n = db
        .run(|sql| sql.query_opt("SELECT count(*) FROM t", &[]))
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(n, 0, "the panicked transaction was rolled back");
}

#[test]
fn statement_timeout_is_set_and_the_session_is_named() {
    let server = PgServer::start().unwrap();
    server.create_database("named").unwrap();
    let mut config = server.pg_config("named");
    config.statement_timeout = Duration::from_millis(300);
    config.application_name = "bridge-agent-x".into();
    let db = Db::postgres(&config).unwrap();
    let row = db
        .run(|sql| {
            sql.query_opt(
                "SELECT current_setting('statement_timeout'), current_setting('application_name')",
                &[],
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(row.text(0).unwrap(), "300ms");
    assert_eq!(row.text(1).unwrap(), "bridge-agent-x");
    let started = Instant::now();
    let e = db
        .run(|sql| sql.execute("SELECT pg_sleep(5)", &[]))
        .unwrap_err();
    assert!(
        matches!(&e, DbError::Postgres { code: Some(c), .. } if c == "57014"),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    db.run(|sql| sql.execute("SELECT 1", &[])).unwrap();
}

/// Durable commits are durable even where the database's default is `off`; a connection that
/// asks for fast commits gets `off`; a stronger setting is kept.
#[test]
fn durable_commits_are_on_whatever_the_database_default() {
    let server = PgServer::start().unwrap();
    server.create_database("commits").unwrap();
    let setting = |durable: bool| {
        let mut config = server.pg_config("commits");
        config.durable_commits = durable;
        Db::postgres(&config)
            .unwrap()
            .run(|sql| sql.query_opt("SELECT current_setting('synchronous_commit')", &[]))
            .unwrap()
            .unwrap()
            .text(0)
            .unwrap()
            .to_owned()
    };
    let set_default = |value: &str| {
        let db = Db::postgres(&server.pg_config("commits")).unwrap();
        let statement = format!("ALTER DATABASE commits SET synchronous_commit = {value}");
        db.run(move |sql| sql.execute_batch(&statement)).unwrap();
    };
    assert_eq!(setting(true), "on");
    assert_eq!(setting(false), "off");
    set_default("off");
    assert_eq!(setting(true), "on");
    assert_eq!(setting(false), "off");
    set_default("remote_apply");
    assert_eq!(setting(true), "remote_apply");
}

#[test]
fn a_restart_makes_calls_unavailable_then_they_work_again_on_the_same_handle() {
    let (mut server, db) = server_and_db("restart");
    db.run(|sql| sql.execute_batch("CREATE TABLE t (k BIGINT)"))
        .unwrap();
    server.stop().unwrap();
    let started = Instant::now();
    let e = db
        .run(|sql| sql.execute("INSERT INTO t VALUES (1)", &[]))
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    // Reconnecting to a stopped server fails at once, not after a hang.
    let e = db.run(|sql| sql.execute("SELECT 1", &[])).unwrap_err();
    assert!(matches!(e, DbError::Unavailable { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!texts(&e).contains(server.password()), "{e:?}");
    server.start_again().unwrap();
    db.run(|sql| sql.execute("INSERT INTO t VALUES (1)", &[]))
        .unwrap();
    // Connecting to a stopped server fails with Unavailable too.
    server.stop().unwrap();
    let e = Db::postgres(&server.pg_config("restart")).unwrap_err();
    assert!(matches!(e, DbError::Unavailable { .. }), "{e:?}");
    assert!(!texts(&e).contains(server.password()), "{e:?}");
}

#[test]
fn network_faults_through_the_proxy_are_bounded_and_recovered() {
    let server = PgServer::start().unwrap();
    server.create_database("net").unwrap();
    let proxy = SocketProxy::start(&server).unwrap();
    let mut config = proxy.pg_config("net");
    // Room for SCRAM in a debug build on a loaded machine; the bounds below follow from it.
    config.connect_timeout = Duration::from_secs(2);
    config.statement_timeout = Duration::from_millis(500);
    let db = Db::postgres(&config).unwrap();
    assert_eq!(
        db.describe(),
        format!("postgres://postgres@127.0.0.1:{}/net", proxy.addr().port())
    );
    db.run(|sql| sql.execute("SELECT 1", &[])).unwrap();

    // Cut: the open connection is closed, new ones refused.
    proxy.set_mode(ProxyMode::Cut);
    let started = Instant::now();
    let e = db.run(|sql| sql.execute("SELECT 1", &[])).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let e = db.run(|sql| sql.execute("SELECT 1", &[])).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    proxy.set_mode(ProxyMode::Pass);
    db.run(|sql| sql.execute("SELECT 1", &[])).unwrap();

    // Stall: no byte moves; the call fails within its client-side bound, and so does the
    // reconnect (the handshake is bounded as a whole, not only the socket's connect).
    proxy.set_mode(ProxyMode::Stall);
    let started = Instant::now();
    let e = db.run(|sql| sql.execute("SELECT 1", &[])).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let call = started.elapsed();
    // statement_timeout + connect_timeout: the call's client-side bound.
    assert!(call >= Duration::from_millis(2400), "{call:?}");
    assert!(call < Duration::from_secs(4), "{call:?}");
    let started = Instant::now();
    let e = db.run(|sql| sql.execute("SELECT 1", &[])).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let reconnect = started.elapsed();
    assert!(
        reconnect >= Duration::from_millis(1900) && reconnect < Duration::from_secs(3),
        "reconnect took {reconnect:?}"
    );
    assert!(!texts(&e).contains(server.password()), "{e:?}");
    proxy.set_mode(ProxyMode::Pass);
    db.run(|sql| sql.execute("SELECT 1", &[])).unwrap();
    eprintln!("stalled call failed after {call:?}, stalled reconnect after {reconnect:?}");
}

#[test]
fn no_password_in_any_message() {
    let server = PgServer::start().unwrap();
    let url = server.create_database("secret").unwrap();
    let pw = server.password().to_owned();
    assert!(url.contains(&pw));
    let config = server.pg_config("secret");
    assert!(!format!("{config:?}").contains(&pw));
    let db = Db::postgres(&config).unwrap();
    assert!(!db.describe().contains(&pw));
    assert!(!format!("{db:?}").contains(&pw));
    let e = db.run(|sql| sql.execute("SELEC 1", &[])).unwrap_err();
    assert!(!texts(&e).contains(&pw));
    // A wrong password, a missing database, a URL that does not parse.
    let mut wrong = config.clone();
    wrong.url = wrong.url.replace(&pw, "not-the-password");
    let e = Db::postgres(&wrong).unwrap_err();
    assert!(e.is_unavailable() && texts(&e).contains("28P01"), "{e:?}");
    let mut missing = config.clone();
    missing.url = missing.url.replace("/secret?", "/nosuch?");
    let e = Db::postgres(&missing).unwrap_err();
    assert!(!texts(&e).contains(&pw), "{e:?}");
    let mut garbled = config.clone();
    garbled.url = format!("postgres://postgres:{pw}@host:port/x");
    let e = Db::postgres(&garbled).unwrap_err();
    assert!(!texts(&e).contains(&pw), "{e:?}");
    let mut remote = config;
    remote.url = format!("postgres://postgres:{pw}@db.example.invalid/x");
    let e = Db::postgres(&remote).unwrap_err();
    assert!(matches!(e, DbError::Config { .. }), "{e:?}");
    assert!(!texts(&e).contains(&pw), "{e:?}");
}

#[test]
fn round_trip_per_call() {
    let server = PgServer::start().unwrap();
    server.create_database("timing").unwrap();
    let started = Instant::now();
    let db = Db::postgres(&server.pg_config("timing")).unwrap();
    let connect = started.elapsed();
    db.run(|sql| sql.execute_batch("CREATE TABLE t (k BIGINT PRIMARY KEY, v BYTEA)"))
        .unwrap();
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        db.run(|sql| sql.query_opt("SELECT 1::int8", &[])).unwrap();
    }
    let select = started.elapsed() / n;
    let started = Instant::now();
    for k in 0..n {
        db.transaction(Lock::Write, move |sql| {
            sql.execute(
                "INSERT INTO t VALUES ($1, $2)",
                &[Value::Int(k.into()), Value::Bytes(vec![1; 64])],
            )
        })
        .unwrap();
    }
    let tx = started.elapsed() / n;
    eprintln!(
        "connect (SCRAM, socket) {connect:?}; round trip: one query {select:?}, one insert \
         transaction (fsync on) {tx:?}"
    );
}

#[test]
fn verify_full_never_falls_back_to_plaintext() {
    // The test server has no TLS (PostgreSQL does not speak it on a Unix socket; the proxy
    // forwards there), so a TLS connection must fail, not go on unencrypted.
    let server = PgServer::start().unwrap();
    server.create_database("tls").unwrap();
    let proxy = SocketProxy::start(&server).unwrap();
    let mut config = proxy.pg_config("tls");
    config.tls = bridge_db::PgTls::VerifyFull { ca_file: None };
    config.application_name = "tls-attempt".into();
    let e = Db::postgres(&config).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(texts(&e).contains("TLS"), "{e:?}");
    assert!(!texts(&e).contains(server.password()), "{e:?}");
    // Nobody got in under that name.
    let db = Db::postgres(&server.pg_config("tls")).unwrap();
    let n = db
        .run(|sql| {
            sql.query_opt(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tls-attempt'",
                &[],
            )
        })
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(n, 0);
}
