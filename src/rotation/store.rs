//! Rotation records, in the agent's own `store.sqlite` (their own tables, their own
//! connection): which rotation is under way, its new key, and each step done.
//!
//! ```text
//! key_rotations       id → old address, new address (once known), new key (JSON), state
//!                     state: active ──> retired (old key retired) ──> destroyed (--destroy-old)
//! key_rotation_steps  (rotation, step) → detail (tx hash…), time. Steps: key, fund:<side>,
//!                     propose:<side>, accept:<side>, switch:<side> (written by the agent),
//!                     sweep:<side>, retire, destroy
//! ```
//!
//! The CLI (`keys rotate`) and the running agent both open the file; SQLite's WAL and a busy
//! timeout let them take turns. A step is recorded after its effect is on chain; the CLI
//! re-checks the chain before every step, so a crash between the two only repeats a check.

use alloy::primitives::Address;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Side;

/// The key that replaces the old one, in the old key's backend (stored as JSON in
/// `key_rotations.new_key`; the signer crate keeps that format).
pub use bridge_signer::KeyName as NewKey;

/// One step of a rotation. Per-chain steps carry their side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// The new key exists and its address is known.
    Key,
    /// The new address holds gas on this chain.
    Fund(Side),
    /// The old key proposed the new address on this chain's bridge.
    Propose(Side),
    /// The new key accepted: the seat on this chain's bridge is the new address's.
    Accept(Side),
    /// The running agent signs this chain's votes with the new key (written by the agent).
    Switch(Side),
    /// The old account's leftover gas went to the new address on this chain.
    Sweep(Side),
    /// The old key is marked retired.
    Retire,
    /// The old key was destroyed (`--destroy-old`).
    Destroy,
}

impl Step {
    /// Stored name, e.g. `propose:child`.
    pub fn name(self) -> String {
        match self {
            Self::Key => "key".into(),
            Self::Fund(s) => format!("fund:{s}"),
            Self::Propose(s) => format!("propose:{s}"),
            Self::Accept(s) => format!("accept:{s}"),
            Self::Switch(s) => format!("switch:{s}"),
            Self::Sweep(s) => format!("sweep:{s}"),
            Self::Retire => "retire".into(),
            Self::Destroy => "destroy".into(),
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A rotation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub id: i64,
    pub old: Address,
    /// Known once the key step is done.
    pub new: Option<Address>,
    pub new_key: NewKey,
    /// `active`, `retired` or `destroyed`.
    pub state: String,
    /// Steps done, in the order recorded, with their detail.
    pub steps: Vec<(String, String)>,
}

impl Rotation {
    /// Whether `step` was recorded.
    pub fn done(&self, step: Step) -> bool {
        let name = step.name();
        self.steps.iter().any(|(s, _)| *s == name)
    }

    /// Finished: the old key is retired (or destroyed).
    pub fn finished(&self) -> bool {
        self.state != "active"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationStoreError {
    #[error("store {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("store {}: corrupt rotation row: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The file as a whole (its schema version) is not usable.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS key_rotations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    old_address BLOB    NOT NULL,
    new_address BLOB,
    new_key     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_rotation_steps (
    rotation INTEGER NOT NULL REFERENCES key_rotations (id),
    step     TEXT    NOT NULL,
    detail   TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (rotation, step)
);
";

/// The rotation tables of one agent's store.
pub struct RotationStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for RotationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RotationStore {
    /// Opens the store file at `path` (creating it and the tables if needed).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RotationStoreError> {
        let path = path.as_ref().to_owned();
        let err = |source| RotationStoreError::Sqlite {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(&path).map_err(err)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000;")
            .map_err(err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(err)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(err)?;
        // The file's one schema version, checked (a newer agent's file is refused untouched)
        // and brought up to date by the store, before these tables are added to it.
        crate::store::prepare(&conn, &path)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn err(&self, source: rusqlite::Error) -> RotationStoreError {
        RotationStoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a rotation of `old`; `new_key` names the new key from the rotation's id (a
    /// default label carries it). Row and key are written in one transaction.
    pub fn begin(
        &self,
        old: Address,
        new_key: impl FnOnce(i64) -> NewKey,
    ) -> Result<(i64, NewKey), RotationStoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO key_rotations (old_address, new_key, state, started_at, updated_at)
             VALUES (?1, '', 'active', ?2, ?2)",
            params![old.as_slice(), now()],
        )
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        let key = new_key(id);
        let json = serde_json::to_string(&key).map_err(|e| RotationStoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        tx.execute(
            "UPDATE key_rotations SET new_key = ?2 WHERE id = ?1",
            params![id, json],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok((id, key))
    }

    /// Records the new address (with the key step).
    pub fn set_new_address(&self, id: i64, new: Address) -> Result<(), RotationStoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE key_rotations SET new_address = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, new.as_slice(), now()],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR IGNORE INTO key_rotation_steps (rotation, step, detail, at) VALUES (?1, ?2, ?3, ?4)",
            params![id, Step::Key.name(), new.to_string(), now()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records `step` as done (idempotent: the first detail stays).
    pub fn record(&self, id: i64, step: Step, detail: &str) -> Result<(), RotationStoreError> {
        let state = match step {
            Step::Retire => Some("retired"),
            Step::Destroy => Some("destroyed"),
            _ => None,
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR IGNORE INTO key_rotation_steps (rotation, step, detail, at) VALUES (?1, ?2, ?3, ?4)",
            params![id, step.name(), detail, now()],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE key_rotations SET updated_at = ?2, state = COALESCE(?3, state) WHERE id = ?1",
            params![id, now(), state],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// The newest rotation, finished or not.
    pub fn latest(&self) -> Result<Option<Rotation>, RotationStoreError> {
        let id: Option<i64> = self
            .conn()
            .query_row("SELECT MAX(id) FROM key_rotations", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        match id {
            Some(id) => self.get(id),
            None => Ok(None),
        }
    }

    /// Every rotation, oldest first.
    pub fn all(&self) -> Result<Vec<Rotation>, RotationStoreError> {
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT id FROM key_rotations ORDER BY id")
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.err(e))?
        };
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.get(id)?);
        }
        Ok(out)
    }

    /// One rotation with its steps.
    pub fn get(&self, id: i64) -> Result<Option<Rotation>, RotationStoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT old_address, new_address, new_key, state FROM key_rotations WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((old, new, key, state)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| RotationStoreError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let addr = |b: Vec<u8>| {
            Address::try_from(b.as_slice())
                .map_err(|_| corrupt(format!("address of {} bytes", b.len())))
        };
        let new_key: NewKey =
            serde_json::from_str(&key).map_err(|e| corrupt(format!("new_key {key:?}: {e}")))?;
        let mut stmt = conn
            .prepare("SELECT step, detail FROM key_rotation_steps WHERE rotation = ?1 ORDER BY at, rowid")
            .map_err(|e| self.err(e))?;
        let steps = stmt
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<(String, String)>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some(Rotation {
            id,
            old: addr(old)?,
            new: new.map(addr).transpose()?,
            new_key,
            state,
            steps,
        }))
    }

    /// The key that holds `side`'s seat after the last accepted rotation, with its address,
    /// or `None` when no rotation was ever accepted there (the config's key holds it).
    pub fn accepted_key(
        &self,
        side: Side,
    ) -> Result<Option<(NewKey, Address)>, RotationStoreError> {
        Ok(self
            .all()?
            .into_iter()
            .rev()
            .find(|r| r.done(Step::Accept(side)))
            .and_then(|r| r.new.map(|a| (r.new_key, a))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recorded_once_and_the_accepted_key_follows_each_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = RotationStore::open(dir.path().join("store.sqlite")).unwrap();
        let (old, new) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let key = NewKey::Pkcs11 {
            key_label: "operator-1-r1".into(),
        };
        let (id, _) = store.begin(old, |_| key.clone()).unwrap();
        assert_eq!(store.accepted_key(Side::Parent).unwrap(), None);
        store.set_new_address(id, new).unwrap();
        store.record(id, Step::Fund(Side::Parent), "0xaa").unwrap();
        store.record(id, Step::Fund(Side::Parent), "0xbb").unwrap();
        store
            .record(id, Step::Accept(Side::Parent), "0xcc")
            .unwrap();
        let r = store.latest().unwrap().unwrap();
        assert_eq!(r.new, Some(new));
        assert!(r.done(Step::Key) && r.done(Step::Fund(Side::Parent)));
        assert!(!r.done(Step::Accept(Side::Child)) && !r.finished());
        let fund: Vec<_> = r.steps.iter().filter(|(s, _)| s == "fund:parent").collect();
        assert_eq!(
            fund,
            [&("fund:parent".to_owned(), "0xaa".to_owned())],
            "first detail kept"
        );
        // Parent's seat moved, child's not yet: each side has its own seated key.
        assert_eq!(
            store.accepted_key(Side::Parent).unwrap(),
            Some((key.clone(), new))
        );
        assert_eq!(store.accepted_key(Side::Child).unwrap(), None);
        store.record(id, Step::Retire, "old").unwrap();
        assert!(store.get(id).unwrap().unwrap().finished());
        // Reopened (another process): the same records.
        let again = RotationStore::open(dir.path().join("store.sqlite")).unwrap();
        assert_eq!(again.all().unwrap(), vec![store.get(id).unwrap().unwrap()]);
    }

    #[test]
    fn the_store_files_one_schema_version_is_checked_first() {
        let dir = tempfile::tempdir().unwrap();
        let version = |path: &Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        // Opened first by `keys rotate`: the file gets the store's version, and the agent's
        // store opens it as its own.
        let path = dir.path().join("store.sqlite");
        drop(RotationStore::open(&path).unwrap());
        assert_eq!(version(&path), crate::store::SCHEMA_VERSION);
        drop(crate::store::Store::open(&path).unwrap());
        drop(RotationStore::open(&path).unwrap());

        // A newer agent's file: refused with both versions named, and nothing added to it.
        let newer = dir.path().join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 9;")
            .unwrap();
        let e = RotationStore::open(&newer).unwrap_err();
        assert!(
            matches!(
                e,
                RotationStoreError::Store(crate::store::StoreError::NewerSchema { found: 9, .. })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("schema version 9"), "{e}");
        let tables: i64 = Connection::open(&newer)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "a refused store was written to");
    }
}
