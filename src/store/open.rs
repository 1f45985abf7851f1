//! The one place the agent's databases are opened from its config (`[store]`).
//!
//! ```text
//! [store] backend = "sqlite"     store()          <data_dir>/store.sqlite          NORMAL
//!                                journal(side)    <data_dir>/journal-<side>.sqlite FULL
//! [store] backend = "postgres"   store()          one connection  ┐ the server in the URL read
//!                                journal(side)    one per side    ┘ from url = { env | file }
//! ```
//!
//! Every command that touches the store or the journals (`run`, `status`, `admin`, `keys`,
//! `config`) goes through [`Databases`], so `backend = "postgres"` moves all of them at once.
//! Each database is opened on first use and the handle kept: a command that only reads the store
//! never connects for the journals.
//!
//! The PostgreSQL URL holds a password: it is read here, when the databases are opened (not when
//! the config is loaded, so no config value carries it), lives only inside the
//! [`bridge_db::PgConfig`] (whose `Debug` hides it), and no error here prints it.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use std::sync::Arc;

use bridge_db::{Db, DbError, Fence, Kind, PgConfig, PgTls, SqliteOptions, Synchronous};
use bridge_signer::guard::{Journal, JournalError};

use crate::config::{AgentConfig, DbUrlSource, PgSettings, Side, StoreBackend, StoreTls};

/// Bound on connecting to the server (and on each reconnect).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one statement on the server.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The journals' SQLite files: every commit reaches the disk before the vote is signed.
const JOURNAL_SQLITE: SqliteOptions = SqliteOptions {
    synchronous: Synchronous::Full,
    busy_timeout: Duration::from_secs(5),
};

/// The agent's store and the guard's journals, per `[store]`.
pub struct Databases {
    backend: Backend,
    store: Mutex<Option<Db>>,
    journals: [Mutex<Option<Db>>; 2],
}

enum Backend {
    Sqlite { data_dir: PathBuf },
    Postgres(PgConfig),
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            // `PgConfig`'s Debug prints no URL.
            Backend::Postgres(pg) => f.debug_tuple("Databases").field(pg).finish(),
            Backend::Sqlite { data_dir } => f.debug_tuple("Databases").field(data_dir).finish(),
        }
    }
}

/// The databases could not be opened. No variant holds or prints the PostgreSQL URL.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "[store] url: environment variable {var} is not set; export it with the postgres:// URL"
    )]
    EnvMissing { var: String },
    #[error("[store] url: environment variable {var} is empty or not UTF-8")]
    EnvEmpty { var: String },
    #[error("[store] url: cannot read {}: {reason}", path.display())]
    FileUnreadable { path: PathBuf, reason: String },
    #[error("[store] url: {} is empty", path.display())]
    FileEmpty { path: PathBuf },
    #[error(
        "[store] tls = \"disable\" is only for a server on this host, but the URL's host is not a \
         Unix socket or a loopback address (not shown: the URL holds the password); use \
         tls = \"verify-full\""
    )]
    NotLocal,
    #[error("data directory {}: {reason}", path.display())]
    DataDir { path: PathBuf, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Databases {
    /// Reads what `[store]` needs (the URL, for PostgreSQL) and checks it; nothing is
    /// connected yet.
    pub fn open(cfg: &AgentConfig) -> Result<Self, OpenError> {
        let backend = match &cfg.store.backend {
            StoreBackend::Sqlite => Backend::Sqlite {
                data_dir: cfg.data_dir().to_owned(),
            },
            StoreBackend::Postgres(pg) => Backend::Postgres(pg_config(cfg, pg)?),
        };
        Ok(Self {
            backend,
            store: Mutex::new(None),
            journals: [Mutex::new(None), Mutex::new(None)],
        })
    }

    /// The engine the config chose.
    pub fn kind(&self) -> Kind {
        match self.backend {
            Backend::Sqlite { .. } => Kind::Sqlite,
            Backend::Postgres(_) => Kind::Postgres,
        }
    }

    /// The store's database (opened on first call; clones share the connection). Its schema
    /// is prepared by `Store::with_db` / `RotationStore::with_db`.
    pub fn store(&self) -> Result<Db, OpenError> {
        self.cached(&self.store, || match &self.backend {
            Backend::Sqlite { data_dir } => {
                create_dir(data_dir)?;
                Ok(Db::sqlite(
                    data_dir.join("store.sqlite"),
                    super::SQLITE_OPTIONS,
                )?)
            }
            // Like the SQLite store's `synchronous = NORMAL`: a server crash may lose the last
            // commits, which only means rescanning them (the journal's are always durable).
            Backend::Postgres(pg) => Ok(Db::postgres(&PgConfig {
                durable_commits: false,
                ..named(pg, "store")
            })?),
        })
    }

    /// The database of the guard's journal for votes sent to `side` (opened on first call).
    pub fn journal(&self, side: Side) -> Result<Db, OpenError> {
        let slot = &self.journals[side as usize];
        self.cached(slot, || match &self.backend {
            Backend::Sqlite { data_dir } => {
                create_dir(data_dir)?;
                Ok(Db::sqlite(
                    data_dir.join(format!("journal-{side}.sqlite")),
                    JOURNAL_SQLITE,
                )?)
            }
            Backend::Postgres(pg) => Ok(Db::postgres(&named(pg, &format!("journal-{side}")))?),
        })
    }

    /// The guard's journal of `side`: SQLite, the file (with its own writer and reader
    /// connections, `Journal::open`); PostgreSQL, [`Self::journal`]'s connection, every batch
    /// checked against `fence` (the replicas' leader lease) when one is given.
    pub fn open_journal(
        &self,
        side: Side,
        fence: Option<Arc<dyn Fence>>,
    ) -> Result<Journal, JournalError> {
        match &self.backend {
            Backend::Sqlite { data_dir } => {
                create_dir(data_dir).map_err(|e| JournalError::Db {
                    at: data_dir.display().to_string(),
                    source: DbError::Unavailable {
                        at: data_dir.display().to_string(),
                        reason: e.to_string(),
                    },
                })?;
                Journal::open(data_dir.join(format!("journal-{side}.sqlite")))
            }
            Backend::Postgres(_) => match self.journal(side) {
                Ok(db) => Journal::with_db(db, fence),
                Err(OpenError::Db(source)) => Err(JournalError::Db {
                    at: format!("journal-{side}"),
                    source,
                }),
                Err(other) => Err(JournalError::Db {
                    at: format!("journal-{side}"),
                    source: DbError::Unavailable {
                        at: format!("journal-{side}"),
                        reason: other.to_string(),
                    },
                }),
            },
        }
    }

    /// A connection of its own for the replicas' leader lease (`agent/replica.rs`), so a lease
    /// tick never waits behind store work; `None` with SQLite (no replicas). Not cached: one
    /// caller, at start.
    pub fn lease(&self) -> Result<Option<Db>, OpenError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Postgres(pg) => Ok(Some(Db::postgres(&named(pg, "lease"))?)),
        }
    }

    /// The SQLite store file, when the backend is SQLite (for commands that look at the file
    /// before creating one).
    pub fn store_file(&self) -> Option<PathBuf> {
        match &self.backend {
            Backend::Sqlite { data_dir } => Some(data_dir.join("store.sqlite")),
            Backend::Postgres(_) => None,
        }
    }

    /// The SQLite journal file of `side`, when the backend is SQLite: what
    /// `bridge_signer::guard::Journal::open` takes until the journal opens from a [`Db`].
    pub fn journal_file(&self, side: Side) -> Option<PathBuf> {
        match &self.backend {
            Backend::Sqlite { data_dir } => Some(data_dir.join(format!("journal-{side}.sqlite"))),
            Backend::Postgres(_) => None,
        }
    }

    /// The agent's store ([`super::Store`]), its schema prepared.
    pub fn open_store(&self) -> Result<super::Store, super::StoreError> {
        super::Store::with_db(self.store()?)
    }

    fn cached(
        &self,
        slot: &Mutex<Option<Db>>,
        open: impl FnOnce() -> Result<Db, OpenError>,
    ) -> Result<Db, OpenError> {
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        let db = open()?;
        *slot = Some(db.clone());
        Ok(db)
    }
}

fn create_dir(dir: &std::path::Path) -> Result<(), OpenError> {
    std::fs::create_dir_all(dir).map_err(|e| OpenError::DataDir {
        path: dir.to_owned(),
        reason: e.to_string(),
    })
}

/// `pg` with `application_name` naming what the connection is for, e.g.
/// `bridge-agent operator-1 store` (seen in `pg_stat_activity`).
fn named(pg: &PgConfig, role: &str) -> PgConfig {
    PgConfig {
        application_name: format!("{} {role}", pg.application_name),
        ..pg.clone()
    }
}

/// The connection config of `[store]`, the URL read from its source.
fn pg_config(cfg: &AgentConfig, pg: &PgSettings) -> Result<PgConfig, OpenError> {
    let url = read_url(&pg.url)?;
    let tls = match pg.tls {
        StoreTls::VerifyFull => PgTls::VerifyFull {
            ca_file: pg.ca_file.clone(),
        },
        StoreTls::Disable => {
            if !is_local(&url) {
                return Err(OpenError::NotLocal);
            }
            PgTls::Disable
        }
    };
    let application_name = match &cfg.agent.name {
        Some(name) => format!("bridge-agent {name}"),
        None => "bridge-agent".to_owned(),
    };
    Ok(PgConfig {
        url,
        tls,
        connect_timeout: CONNECT_TIMEOUT,
        statement_timeout: STATEMENT_TIMEOUT,
        application_name,
        // Below the lease's TTL: a replica paused inside a journal transaction (holding the
        // lease row FOR SHARE) is cut off before a follower's takeover would wait on it.
        idle_in_transaction_timeout: Some(
            (cfg.store.lease_ttl / 2).max(Duration::from_millis(200)),
        ),
        durable_commits: true,
    })
}

/// The URL from its environment variable or the first line of its file, trimmed.
fn read_url(source: &DbUrlSource) -> Result<String, OpenError> {
    let text = match source {
        DbUrlSource::Env(var) => match std::env::var(var) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(OpenError::EnvMissing { var: var.clone() });
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(OpenError::EnvEmpty { var: var.clone() });
            }
        },
        DbUrlSource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| OpenError::FileUnreadable {
                path: path.clone(),
                // The io error names the OS reason only, never the content.
                reason: e.kind().to_string(),
            })?
        }
    };
    let url = text.lines().next().unwrap_or("").trim().to_owned();
    if url.is_empty() {
        return Err(match source {
            DbUrlSource::Env(var) => OpenError::EnvEmpty { var: var.clone() },
            DbUrlSource::File(path) => OpenError::FileEmpty { path: path.clone() },
        });
    }
    Ok(url)
}

/// Whether every host the connection string names is on this machine: a Unix-socket directory
/// (a path, or no host at all: libpq's default socket) or a loopback name or address. Both
/// forms: `postgres://…@host,host2:port/db?host=/dir` and `host=… hostaddr=…`.
pub(crate) fn is_local(url: &str) -> bool {
    let mut hosts: Vec<String> = Vec::new();
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = before_query.split('/').next().unwrap_or("");
        let hostspec = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        for host in hostspec.split(',') {
            let host = if let Some(v6) = host.strip_prefix('[') {
                v6.split(']').next().unwrap_or("")
            } else {
                host.split(':').next().unwrap_or("")
            };
            hosts.push(percent_decode(host));
        }
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && matches!(key, "host" | "hostaddr")
            {
                // A `host` parameter replaces the URL's hosts.
                hosts.retain(|_| key == "hostaddr");
                hosts.extend(percent_decode(value).split(',').map(str::to_owned));
            }
        }
    } else {
        for pair in url.split_whitespace() {
            if let Some((key, value)) = pair.split_once('=')
                && matches!(key, "host" | "hostaddr")
            {
                hosts.extend(value.trim_matches('\'').split(',').map(str::to_owned));
            }
        }
    }
    hosts.iter().all(|h| {
        h.is_empty()
            || h.starts_with('/')
            || h.starts_with('@')
            || h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sockets_and_loopback_are_local() {
        for url in [
            "postgres://u:pw@/db",
            "postgres://u:pw@%2Frun%2Fpostgresql/db",
            "postgres://u:pw@localhost:5432/db",
            "postgres://u:pw@127.0.0.1/db",
            "postgresql://u:pw@[::1]:5432/db",
            "postgres://u:pw@db.example/db?host=/tmp/sock",
            "host=/tmp/sock user=u password=pw dbname=db",
            "user=u dbname=db",
            "host=localhost,127.0.0.2 dbname=db",
        ] {
            assert!(is_local(url), "{url}");
        }
        for url in [
            "postgres://u:pw@db.example/db",
            "postgres://u:pw@localhost,db.example/db",
            "postgres://u:pw@10.0.0.5:5432/db",
            "postgres://u:pw@/db?host=db.example",
            "host=db.example dbname=db",
            "hostaddr=10.1.1.1 dbname=db",
        ] {
            assert!(!is_local(url), "{url}");
        }
    }

    #[test]
    fn url_sources_fail_clearly_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DbUrlSource::Env("BRIDGE_STORE_TEST_SURELY_UNSET".into());
        assert!(matches!(
            read_url(&missing),
            Err(OpenError::EnvMissing { .. })
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_url(&DbUrlSource::File(empty)).unwrap_err();
        assert!(matches!(e, OpenError::FileEmpty { .. }), "{e}");
        let e = read_url(&DbUrlSource::File(dir.path().join("absent"))).unwrap_err();
        assert!(matches!(e, OpenError::FileUnreadable { .. }), "{e}");
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://u:SECRET@db.example/db\nignored\n").unwrap();
        let url = read_url(&DbUrlSource::File(file)).unwrap();
        assert_eq!(url, "postgres://u:SECRET@db.example/db");
        assert!(!format!("{}", OpenError::NotLocal).contains("SECRET"));
    }

    /// A config with `store` as its `[store]` table, data in `dir`.
    fn config(dir: &std::path::Path, store: &str) -> AgentConfig {
        let text = format!(
            "[agent]\ndata_dir = \"{}\"\nname = \"op-7\"\n\n[store]\n{store}\n\n\
             [signer]\nbackend = \"aws-kms\"\nkey_id = \"alias/op\"\n\n\
             [parent]\nchain_id = 1001\nrpc = [\"http://127.0.0.1:8545\"]\n\
             bridge = \"0x00000000000000000000000000000000000000b1\"\n\n\
             [child]\nchain_id = 1002\nrpc = [\"http://127.0.0.1:8546\"]\n\
             bridge = \"0x00000000000000000000000000000000000000b2\"\n",
            dir.join("data").display()
        );
        // Secrets not checked at load (as for `status`): the URL's problems are then found
        // here, when the database is opened.
        let file = dir.join("t.toml");
        std::fs::write(&file, text).unwrap();
        crate::config::load_with(&file, crate::config::Secrets::Skip)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sqlite_files_are_the_ones_of_before_and_opened_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "backend = \"sqlite\"");
        let dbs = Databases::open(&cfg).unwrap();
        assert_eq!(dbs.kind(), Kind::Sqlite);
        assert_eq!(dbs.store_file(), Some(cfg.store_path()));
        assert_eq!(
            dbs.journal_file(Side::Child),
            Some(cfg.journal_path(Side::Child))
        );
        // Opening creates the data folder; the store is one connection, shared.
        let store = dbs.store().unwrap();
        assert_eq!(store.describe(), cfg.store_path().display().to_string());
        let s = super::super::Store::with_db(store).unwrap();
        drop(s);
        assert!(cfg.store_path().is_file());
        assert_eq!(
            dbs.journal(Side::Parent).unwrap().describe(),
            cfg.journal_path(Side::Parent).display().to_string()
        );
        let j = dbs.open_journal(Side::Child, None).unwrap();
        assert_eq!(
            j.describe(),
            cfg.journal_path(Side::Child).display().to_string()
        );
    }

    #[test]
    fn postgres_url_problems_are_clear_and_never_print_it() {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("store-url");
        let cfg = config(
            dir.path(),
            "backend = \"postgres\"\nurl = { env = \"BRIDGE_STORE_TEST_SURELY_UNSET_URL\" }",
        );
        let e = Databases::open(&cfg).unwrap_err();
        assert!(matches!(e, OpenError::EnvMissing { .. }), "{e}");
        assert!(
            e.to_string().contains("BRIDGE_STORE_TEST_SURELY_UNSET_URL"),
            "{e}"
        );

        let with_file = |tls: &str| {
            config(
                dir.path(),
                &format!(
                    "backend = \"postgres\"\nurl = {{ file = \"{}\" }}\ntls = \"{tls}\"",
                    url_file.display()
                ),
            )
        };
        let e = Databases::open(&with_file("disable")).unwrap_err();
        assert!(matches!(e, OpenError::FileUnreadable { .. }), "{e}");
        std::fs::write(&url_file, "postgres://bridge:SECRET-pw@db.example/bridge\n").unwrap();
        let e = Databases::open(&with_file("disable")).unwrap_err();
        assert!(matches!(e, OpenError::NotLocal), "{e}");
        assert!(!format!("{e} {e:?}").contains("SECRET"), "{e}");
        // verify-full to a remote server is accepted; nothing is connected yet, and nothing
        // printed shows the URL.
        let dbs = Databases::open(&with_file("verify-full")).unwrap();
        assert_eq!(dbs.kind(), Kind::Postgres);
        assert_eq!(dbs.store_file(), None);
        let shown = format!("{dbs:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("bridge-agent op-7"), "{shown}");
    }
}
