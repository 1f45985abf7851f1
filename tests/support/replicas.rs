//! Replicas in the HA harness: one PostgreSQL server (a temp dir, a Unix socket, no TCP port)
//! for the operators on the PostgreSQL store, one database each; every replica reaches it
//! through its own TCP [`SocketProxy`], so one replica can be cut from the database while the
//! others keep it. A watcher records every lease term the database shows, so the end
//! invariants can prove each journal row was written by the holder of the term it names.
//!
//! ```text
//!  op1r1 ─ SocketProxy ─┐                  database op1: replica_lease, votes, conflicts, store
//!  op1r2 ─ SocketProxy ─┼─ PgServer (unix) ─ database op2: …
//!  op2r1 ─ SocketProxy ─┘        ▲
//!                                └─ LeaseWatch (direct, every 50 ms): (epoch → holders) seen
//! ```

use super::cluster::{Cluster, ClusterOptions};
use alloy::primitives::B256;
use bridge_db::{Db, Value};
use bridge_devkit::postgres::{PgServer, ProxyMode, SocketProxy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The variable each replica's `[store] url = { env = … }` names.
pub const URL_ENV: &str = "BRIDGE_STORE_URL";

/// How often the watcher reads the lease rows. A term's row stays in the database at least
/// until the next holder's tick (a third of the TTL), so none is missed at this pace.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The PostgreSQL side of a cluster.
pub struct PgStore {
    /// Behind a lock: stopping and starting it again change it.
    server: Mutex<PgServer>,
    /// Per operator: its database's name (None: SQLite store).
    databases: Vec<Option<String>>,
    /// Per operator: its database's own URL (the Unix socket; holds the password).
    urls: Vec<Option<String>>,
    /// Per operator on PostgreSQL: a direct connection (the harness's own reads).
    direct: Vec<Option<Db>>,
    terms: Arc<Mutex<Terms>>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

/// Lease terms seen: per operator, epoch → the holders the database named for it.
#[derive(Default, Debug)]
pub struct Terms(pub BTreeMap<usize, BTreeMap<u64, BTreeSet<String>>>);

/// One replica's link to the database.
pub struct PgLink {
    pub proxy: SocketProxy,
    url: String,
    /// The database's own URL (its Unix socket), for runs that skip the proxy.
    direct: String,
    /// The operator runs more than one process (the node's label names its replica).
    pub replicated: bool,
}

impl PgLink {
    /// The URL the replica is given (through its proxy; holds the password: never logged).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Points the replica at the database's socket itself, not through its proxy (benchmarks:
    /// the proxy is a hop in the test process). Takes effect at its next start.
    pub fn bypass_proxy(&mut self) {
        self.url = self.direct.clone();
    }

    /// Passes, cuts or stalls this replica's database connections.
    pub fn set(&self, mode: ProxyMode) {
        self.proxy.set_mode(mode);
    }
}

/// One journal row, as the invariants read it.
#[derive(Debug, Clone)]
pub struct VoteRow {
    pub chain_id: u64,
    pub namespace: String,
    pub nonce: u64,
    pub epoch: Option<u64>,
    pub holder: Option<String>,
}

/// The process id in a holder name ("host:pid:start-nanos").
pub fn holder_pid(holder: &str) -> Option<u32> {
    holder.rsplit(':').nth(1)?.parse().ok()
}

impl PgStore {
    /// Starts the server (in a temporary folder of its own) and creates a database per
    /// operator on PostgreSQL; starts the lease watcher.
    pub fn start(opts: &ClusterOptions) -> Self {
        let server = tokio::task::block_in_place(PgServer::start)
            .unwrap_or_else(|e| panic!("starting PostgreSQL: {e:#}"));
        let mut databases = Vec::new();
        let mut urls = Vec::new();
        let mut direct = Vec::new();
        for op in 0..opts.operators {
            if !opts.on_postgres(op) {
                databases.push(None);
                urls.push(None);
                direct.push(None);
                continue;
            }
            let name = format!("op{}", op + 1);
            let url = tokio::task::block_in_place(|| server.create_database(&name))
                .unwrap_or_else(|e| panic!("creating database {name}: {e:#}"));
            let db = Db::postgres(&server.pg_config(&name))
                .unwrap_or_else(|e| panic!("connecting to database {name}: {e}"));
            databases.push(Some(name));
            urls.push(Some(url));
            direct.push(Some(db));
        }
        let terms = Arc::new(Mutex::new(Terms::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (direct, terms, stop) = (direct.clone(), terms.clone(), stop.clone());
            std::thread::Builder::new()
                .name("lease-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        poll_terms(&direct, &terms);
                        std::thread::sleep(WATCH_EVERY);
                    }
                })
                .unwrap()
        };
        Self {
            server: Mutex::new(server),
            databases,
            urls,
            direct,
            terms,
            stop,
            watcher: Some(watcher),
        }
    }

    /// The `[store]` section of a replica's config.
    pub fn config_section(lease_ttl_secs: u64) -> String {
        format!(
            "[store]\nbackend = \"postgres\"\nurl = {{ env = \"{URL_ENV}\" }}\ntls = \"disable\"\n\
             lease_ttl_secs = {lease_ttl_secs}\n\n"
        )
    }

    /// A new link (its own proxy) to operator `op`'s database.
    pub fn link(&self, op: usize, replicated: bool) -> PgLink {
        let name = self.databases[op]
            .as_deref()
            .expect("operator on PostgreSQL");
        let proxy = SocketProxy::start(&self.server.lock().unwrap())
            .unwrap_or_else(|e| panic!("starting a socket proxy: {e:#}"));
        let url = proxy.url(name);
        PgLink {
            proxy,
            url,
            direct: self.urls[op].clone().expect("operator on PostgreSQL"),
            replicated,
        }
    }

    /// Stops the server (fast shutdown: open connections are closed).
    pub async fn stop(&self) {
        tokio::task::block_in_place(|| self.server.lock().unwrap().stop())
            .unwrap_or_else(|e| panic!("stopping PostgreSQL: {e:#}"));
    }

    /// Starts the stopped server again on the same data.
    pub async fn start_again(&self) {
        tokio::task::block_in_place(|| self.server.lock().unwrap().start_again())
            .unwrap_or_else(|e| panic!("starting PostgreSQL again: {e:#}"));
    }

    fn db(&self, op: usize) -> &Db {
        self.direct[op].as_ref().expect("operator on PostgreSQL")
    }

    /// Every journal row of operator `op` (both chains, every namespace).
    pub fn votes(&self, op: usize) -> Vec<VoteRow> {
        self.db(op)
            .run(|sql| {
                sql.query(
                    "SELECT chain_id, namespace, nonce, epoch, holder FROM votes",
                    &[],
                )
            })
            .unwrap_or_else(|e| panic!("reading op{}'s journal: {e}", op + 1))
            .into_iter()
            .map(|r| VoteRow {
                chain_id: r.int(0).unwrap() as u64,
                namespace: r.text(1).unwrap().to_owned(),
                nonce: r.int(2).unwrap() as u64,
                epoch: r.opt_int(3).unwrap().map(|e| e as u64),
                holder: r.opt_text(4).unwrap().map(str::to_owned),
            })
            .collect()
    }

    /// Operator `op`'s journal rows written by process `pid`.
    pub fn votes_by_pid(&self, op: usize, pid: u32) -> usize {
        self.votes(op)
            .iter()
            .filter(|r| r.holder.as_deref().and_then(holder_pid) == Some(pid))
            .count()
    }

    /// Operator `op`'s journal rows of an epoch above `epoch` (None: the database did not
    /// answer).
    pub fn votes_after_epoch(&self, op: usize, epoch: u64) -> Option<i64> {
        let epoch = Value::Int(epoch as i64);
        self.db(op)
            .run(move |sql| sql.query_opt("SELECT COUNT(*) FROM votes WHERE epoch > $1", &[epoch]))
            .ok()?
            .map(|r| r.int(0).unwrap())
    }

    /// The conflict rows and the request votes by nonce of operator `op`'s journal for the
    /// chain `chain_id` (where the votes are cast).
    pub fn journal(&self, op: usize, chain_id: u64) -> (i64, HashMap<u64, B256>) {
        let chain = Value::Int(chain_id as i64);
        let c = chain.clone();
        let conflicts = self
            .db(op)
            .run(move |sql| {
                sql.query_opt("SELECT COUNT(*) FROM conflicts WHERE chain_id = $1", &[c])
            })
            .unwrap_or_else(|e| panic!("reading op{}'s conflicts: {e}", op + 1))
            .map(|r| r.int(0).unwrap())
            .unwrap_or(0);
        let votes = self
            .db(op)
            .run(move |sql| {
                sql.query(
                    "SELECT nonce, vote_hash FROM votes \
                     WHERE namespace = 'request' AND chain_id = $1",
                    &[chain],
                )
            })
            .unwrap_or_else(|e| panic!("reading op{}'s journal: {e}", op + 1))
            .into_iter()
            .map(|r| {
                (
                    r.int(0).unwrap() as u64,
                    B256::from_slice(r.bytes(1).unwrap()),
                )
            })
            .collect();
        (conflicts, votes)
    }

    /// The terms seen so far (read once more now).
    pub fn terms(&self) -> std::sync::MutexGuard<'_, Terms> {
        poll_terms(&self.direct, &self.terms);
        self.terms.lock().unwrap()
    }

    /// The fencing invariant: every epoch had one holder, and every journal row names an
    /// (epoch, holder) the database showed as a term.
    pub fn check_terms(&self, logs: &str) {
        let terms = self.terms();
        for (op, db) in self.databases.iter().enumerate() {
            if db.is_none() {
                continue;
            }
            let seen = terms.0.get(&op).cloned().unwrap_or_default();
            for (epoch, holders) in &seen {
                assert_eq!(
                    holders.len(),
                    1,
                    "op{} epoch {epoch} had several holders: {holders:?}",
                    op + 1
                );
            }
            for row in self.votes(op) {
                let (Some(epoch), Some(holder)) = (row.epoch, &row.holder) else {
                    panic!("op{}: a journal row without its term: {row:?}", op + 1);
                };
                assert!(
                    seen.get(&epoch).is_some_and(|h| h.contains(holder)),
                    "op{}: {row:?} names a term its holder never led (terms seen: {seen:?})\n{logs}",
                    op + 1
                );
            }
        }
    }
}

/// One read of every operator's lease row into `terms` (errors, e.g. the server restarting
/// or the table not made yet, are skipped: the next read catches up, and a term's row stays
/// until the next holder's).
fn poll_terms(direct: &[Option<Db>], terms: &Mutex<Terms>) {
    for (op, db) in direct.iter().enumerate() {
        let Some(db) = db else { continue };
        let Ok(rows) = db.run(|sql| sql.query("SELECT holder, epoch FROM replica_lease", &[]))
        else {
            continue;
        };
        let mut terms = terms.lock().unwrap();
        for r in rows {
            let (Ok(holder), Ok(epoch)) = (r.text(0), r.int(1)) else {
                continue;
            };
            terms
                .0
                .entry(op)
                .or_default()
                .entry(epoch as u64)
                .or_default()
                .insert(holder.to_owned());
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

/// Replicas addressed by operator, their roles read from their own `/metrics`, and signals.
impl Cluster {
    /// The process indexes of operator `op`'s replicas.
    pub fn replicas_of(&self, op: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].index == op)
            .collect()
    }

    /// Whether process `i` says it leads (None: not running or no answer).
    pub async fn leading(&mut self, i: usize) -> Option<bool> {
        if !self.nodes[i].is_running() {
            return None;
        }
        self.metric_within(i, "bridge_replica_leading", Duration::from_secs(1))
            .await
            .map(|v| v == 1.0)
    }

    /// The replicas of `op` that say they lead now (among those answering).
    pub async fn leaders(&mut self, op: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for i in self.replicas_of(op) {
            if self.leading(i).await == Some(true) {
                out.push(i);
            }
        }
        out
    }

    /// Waits until exactly one replica of `op` (other than `not`) leads; its index and how
    /// long that took.
    pub async fn wait_leader(
        &mut self,
        op: usize,
        not: Option<usize>,
        timeout: Duration,
    ) -> (usize, Duration) {
        let start = Instant::now();
        loop {
            let leaders = self.leaders(op).await;
            if let [one] = leaders[..]
                && Some(one) != not
            {
                return (one, start.elapsed());
            }
            assert!(
                start.elapsed() < timeout,
                "op{}: no single leader within {timeout:?} (leading: {leaders:?})\n{}",
                op + 1,
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGSTOP to process `i` (it keeps its sockets; everything it does is frozen).
    pub fn pause_agent(&mut self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// SIGCONT to process `i`.
    pub fn resume_agent(&mut self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&mut self, i: usize, sig: &str) {
        let pid = self.nodes[i].pid().expect("the agent runs");
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// The PostgreSQL side (the scenario asked for replicas).
    pub fn pg(&self) -> &PgStore {
        self.pg
            .as_ref()
            .expect("a cluster with operators on PostgreSQL")
    }
}
