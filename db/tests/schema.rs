//! Versioned schemas on both backends: migrations run once, in order; tables a newer build
//! wrote are refused untouched; replicas preparing at once create the tables once.

mod both;

use std::sync::{Arc, Barrier};

use both::Backend;
use bridge_db::schema::{Migration, prepare, version};
use bridge_db::{Db, DbError, Lock, Value};

/// Each step also logs itself, so a step that ran twice shows.
const V1: &[Migration] = &[Migration {
    version: 1,
    sqlite: "CREATE TABLE IF NOT EXISTS items (k INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE IF NOT EXISTS steps (version INTEGER);
             INSERT INTO steps VALUES (1);",
    postgres: "CREATE TABLE IF NOT EXISTS items (k BIGINT PRIMARY KEY, v TEXT);
               CREATE TABLE IF NOT EXISTS steps (version BIGINT);
               INSERT INTO steps VALUES (1);",
}];

const V2: &[Migration] = &[
    V1[0],
    Migration {
        version: 2,
        sqlite: "ALTER TABLE items ADD COLUMN extra BLOB; INSERT INTO steps VALUES (2);",
        postgres: "ALTER TABLE items ADD COLUMN extra BYTEA; INSERT INTO steps VALUES (2);",
    },
];

fn steps(db: &Db) -> Vec<i64> {
    db.run(|sql| sql.query("SELECT version FROM steps ORDER BY version", &[]))
        .unwrap()
        .iter()
        .map(|r| r.int(0).unwrap())
        .collect()
}

#[test]
fn migrations_run_once_and_in_order() {
    for backend in Backend::both() {
        let db = backend.open();
        let name = backend.name();
        assert_eq!(version(&db, "items").unwrap(), 0, "{name}");
        assert_eq!(prepare(&db, "items", V1).unwrap(), 0, "{name}");
        assert_eq!(prepare(&db, "items", V1).unwrap(), 1, "{name}");
        assert_eq!(steps(&db), vec![1], "{name}");
        assert_eq!(prepare(&db, "items", V2).unwrap(), 1, "{name}");
        assert_eq!(prepare(&db, "items", V2).unwrap(), 2, "{name}");
        assert_eq!(steps(&db), vec![1, 2], "{name}");
        assert_eq!(version(&db, "items").unwrap(), 2, "{name}");
        // The new column is there.
        db.run(|sql| {
            sql.execute(
                "INSERT INTO items (k, v, extra) VALUES ($1, $2, $3)",
                &[Value::Int(1), "one".into(), Value::Bytes(vec![1])],
            )
        })
        .unwrap();
    }
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    for backend in Backend::both() {
        let db = backend.open();
        let name = backend.name();
        prepare(&db, "items", V2).unwrap();
        db.run(|sql| sql.execute("INSERT INTO items (k, v) VALUES (7, 'kept')", &[]))
            .unwrap();
        let e = prepare(&db, "items", V1).unwrap_err();
        match &e {
            DbError::NewerSchema {
                found, supported, ..
            } => assert_eq!((*found, *supported), (2, 1), "{name}"),
            e => panic!("{name}: {e:?}"),
        }
        assert!(e.to_string().contains("newer"), "{name}: {e}");
        assert_eq!(version(&db, "items").unwrap(), 2, "{name}");
        assert_eq!(steps(&db), vec![1, 2], "{name}");
        let v = db
            .run(|sql| sql.query_opt("SELECT v FROM items WHERE k = 7", &[]))
            .unwrap()
            .unwrap();
        assert_eq!(v.text(0).unwrap(), "kept", "{name}");
    }
}

#[test]
fn eight_concurrent_preparers_create_the_tables_once() {
    for backend in Backend::both() {
        let name = backend.name();
        let dbs: Vec<Db> = (0..8).map(|_| backend.open()).collect();
        let barrier = Arc::new(Barrier::new(dbs.len()));
        let threads: Vec<_> = dbs
            .into_iter()
            .map(|db| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    prepare(&db, "items", V2)
                })
            })
            .collect();
        let mut found: Vec<i64> = threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, vec![0, 2, 2, 2, 2, 2, 2, 2], "{name}");
        assert_eq!(steps(&backend.open()), vec![1, 2], "{name}");
    }
}

#[test]
fn the_shared_sql_behaves_alike() {
    for backend in Backend::both() {
        let db = backend.open();
        let name = backend.name();
        prepare(&db, "items", V1).unwrap();
        let n = db
            .run(|sql| {
                sql.execute(
                    "INSERT INTO items (k, v) VALUES ($1, $2), ($3, $4)",
                    &[Value::Int(1), "a".into(), Value::Int(2), Value::Null],
                )
            })
            .unwrap();
        assert_eq!(n, 2, "{name}");
        let n = db
            .run(|sql| {
                sql.execute(
                    "UPDATE items SET v = $1 WHERE k >= $2",
                    &["b".into(), Value::Int(1)],
                )
            })
            .unwrap();
        assert_eq!(n, 2, "{name}");
        assert!(
            db.run(|sql| sql.query_opt("SELECT v FROM items WHERE k = 99", &[]))
                .unwrap()
                .is_none(),
            "{name}"
        );
        // Rolled back on Err, on both.
        let e = db
            .transaction(Lock::Write, |sql| {
                sql.execute("DELETE FROM items", &[])?;
                Err::<(), _>(DbError::Fenced {
                    reason: "no".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(e, DbError::Fenced { .. }), "{name}");
        let rows = db
            .run(|sql| sql.query("SELECT k, v FROM items ORDER BY k", &[]))
            .unwrap();
        assert_eq!(rows.len(), 2, "{name}");
        assert_eq!(rows[1].opt_text(1).unwrap(), Some("b"), "{name}");
        // A constraint violation is an error on both (the backends word it their own way).
        let e = db
            .run(|sql| sql.execute("INSERT INTO items (k) VALUES (1)", &[]))
            .unwrap_err();
        assert!(!e.is_unavailable(), "{name}: {e:?}");
    }
}
