//! SQLite-only behaviour of the journal file: WAL, `synchronous=FULL`, the schema version and
//! files written before `bridge_db`. The rules (new/same/conflict, concurrency, fencing) run on
//! both backends in `signer/tests/journal.rs`.

use std::path::Path;

use rusqlite::Connection;

use super::*;

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn key(nonce: u64) -> VoteKey {
    VoteKey {
        chain_id: 1001,
        bridge: Address::repeat_byte(0xbb),
        namespace: Namespace::Request,
        nonce,
    }
}

#[test]
fn schema_version_is_written_and_checked_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    drop(Journal::open(&path).unwrap());
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    // Reopening the current version keeps it.
    drop(Journal::open(&path).unwrap());
    assert_eq!(user_version(&path), SCHEMA_VERSION);

    // A file a newer build wrote: refused, naming file and both versions, left as it was.
    let newer = dir.path().join("newer.sqlite");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 7;")
        .unwrap();
    let e = Journal::open(&newer).unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::NewerSchema {
                found: 7,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    for needle in ["newer.sqlite", "version 7", "supports (2)", "never delete"] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    assert_eq!(user_version(&newer), 7);
    let tables: i64 = Connection::open(&newer)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('votes', 'conflicts')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "a refused journal was written to");

    let odd = dir.path().join("odd.sqlite");
    Connection::open(&odd)
        .unwrap()
        .execute_batch("PRAGMA user_version = -3;")
        .unwrap();
    let e = Journal::open(&odd).unwrap_err();
    assert!(
        matches!(e, JournalError::UnknownSchema { found: -3, .. }),
        "{e:?}"
    );
}

/// A file the SQLite journal wrote before `bridge_db` (schema v1, no epoch/holder) opens, keeps
/// its votes (a different vote for a recorded nonce is still a conflict) and gains v2's
/// columns, NULL in its old rows.
#[test]
fn a_version_1_file_opens_and_keeps_its_votes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    let old = B256::repeat_byte(0x11);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0].sqlite).unwrap();
        conn.execute(
            "INSERT INTO votes VALUES (?1, ?2, 'request', 5, ?3, 'f', 1)",
            rusqlite::params![1001, Address::repeat_byte(0xbb).as_slice(), old.as_slice()],
        )
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 1;").unwrap();
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(user_version(&path), 2);
    assert_eq!(j.lookup(&key(5)).unwrap(), Some(old));
    assert_eq!(
        j.check_and_record(&key(5), &B256::repeat_byte(0x22), "f")
            .unwrap(),
        Recorded::Conflict { recorded: old }
    );
    assert_eq!(
        j.check_and_record(&key(6), &old, "f").unwrap(),
        Recorded::New
    );
    drop(j);
    let rows: Vec<(i64, Option<i64>, Option<String>)> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT nonce, epoch, holder FROM votes ORDER BY nonce")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![(5, None, None), (6, None, None)]);
}

/// Both connections of a file journal are in WAL mode with `synchronous=FULL`: a vote is on
/// disk when `check_and_record` returns.
#[test]
fn file_is_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let j = Journal::open(&path).unwrap();
    assert_eq!(
        j.check_and_record(&key(1), &B256::repeat_byte(1), "f")
            .unwrap(),
        Recorded::New
    );
    let (mode, sync) = j
        .reader
        .run(|sql| {
            let mode = sql.query_opt("PRAGMA journal_mode", &[])?.unwrap();
            let sync = sql.query_opt("PRAGMA synchronous", &[])?.unwrap();
            Ok((mode.text(0)?.to_owned(), sync.int(0)?))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous must be FULL");
    assert_eq!(
        Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal",
        "the file itself is in WAL mode"
    );
}
