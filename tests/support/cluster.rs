//! The high-availability harness: N `bridge-agent run` processes (the built binary) on the anvil
//! devnet, each with its own config, store, journal and log; operator keys in SoftHSM, or in
//! hsm-sim behind the aws-kms backend for chosen agents; a fault proxy between every agent and
//! each chain; stop, kill -9 and restart; and the invariants checked at the end.
//!
//! Scenarios in one test binary run one at a time (a process-wide lock): each starts two chains
//! and N agents, which is all two cores can take. The SoftHSM tokens are made once per process
//! (SoftHSM reads its token folder when the module is first loaded) and reused by every
//! scenario, each on fresh chains.

use super::capped::{CappedProxy, Caps};
use super::proxy::{FaultProxy, Mode};
use super::rate_limit::RateLimitProxy;
use super::replicas::{PgLink, PgStore};
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use bridge_agent::contracts::{Bridge, VOTE_TYPE_VALUE_TRANSFER};
use bridge_agent::dialect::Dialect;
use bridge_devkit::demo::traffic::Traffic;
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};
pub use bridge_devkit::softhsm::{MODULE, SoftHsmDir};
use bridge_signer::Pin;
use bridge_signer::pkcs11::Pkcs11Token;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

pub const PIN: &str = "ha-harness-pin-1618";
/// SoftHSM operator keys made per process (scenarios use the first N).
const SOFTHSM_KEYS: usize = 4;

static SCENARIO: Mutex<()> = Mutex::const_new(());
static SOFTHSM: OnceCell<SoftHsm> = OnceCell::const_new();

/// `BRIDGE_SOAK=1` scales load and durations up for long runs; CI runs the bounded version.
pub fn soak() -> bool {
    std::env::var("BRIDGE_SOAK").is_ok_and(|v| v == "1")
}

/// `bounded` in CI, `soak` with `BRIDGE_SOAK=1`.
pub fn scaled(bounded: usize, soak_value: usize) -> usize {
    if soak() { soak_value } else { bounded }
}

/// The process's SoftHSM: one token per operator key, so agents never log in to the same token.
pub struct SoftHsm {
    pub conf: PathBuf,
    pub keys: Vec<Address>,
}

impl SoftHsm {
    pub fn token_label(i: usize) -> String {
        format!("ha-op{}", i + 1)
    }

    /// Opens operator `i`'s token in this process: what an attacker on that host could do.
    pub async fn token(i: usize) -> Pkcs11Token {
        Pkcs11Token::open(MODULE, &Self::token_label(i), Pin::new(PIN))
            .await
            .expect("open the operator's token")
    }
}

async fn softhsm() -> &'static SoftHsm {
    SOFTHSM
        .get_or_init(|| async {
            assert!(
                Path::new(MODULE).is_file(),
                "{MODULE} missing: run ./scripts/setup"
            );
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("ha-softhsm-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let hsm = SoftHsmDir::create(&dir).unwrap();
            // SAFETY: set once, under the scenario lock, before this process loads SoftHSM.
            unsafe { std::env::set_var("SOFTHSM2_CONF", &hsm.conf) };
            let labels: Vec<String> = (0..SOFTHSM_KEYS).map(SoftHsm::token_label).collect();
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            hsm.init_tokens(&labels, PIN, "ha-so-pin").unwrap();
            let mut keys = Vec::new();
            for i in 0..SOFTHSM_KEYS {
                let token = SoftHsm::token(i).await;
                keys.push(token.generate_key("operator", None).await.unwrap().address);
            }
            SoftHsm {
                conf: hsm.conf,
                keys,
            }
        })
        .await
}

/// What a scenario needs.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub operators: usize,
    pub threshold: u8,
    /// Agents (0-based) signing through hsm-sim (aws-kms backend) rather than SoftHSM.
    pub kms: Vec<usize>,
    /// (agent, parent side?) links that get the chain's direct endpoint as a second RPC
    /// endpoint behind the proxied one.
    pub backup_rpc: Vec<(usize, bool)>,
    /// Confirmations on the parent chain (requests parent → child).
    pub parent_confirmations: u64,
    /// Confirmations on the child chain (requests child → parent).
    pub child_confirmations: u64,
    pub recovery_secs: u64,
    /// `standby_delay_ms` of both chains (the agent's default when `None`).
    pub standby_delay_ms: Option<u64>,
    /// Which bridge contract the devnet deploys (the agents find it out themselves).
    pub dialect: Dialect,
    /// `(every, retry_after_secs)`: an HTTP rate-limiting proxy ([`RateLimitProxy`]) on every
    /// agent's RPC links (in front of the fault proxy), refusing one request in `every`.
    pub rate_limit: Option<(u64, u64)>,
    /// An HTTP proxy capping `eth_getLogs` ([`CappedProxy`]) on every agent's RPC links (in
    /// front of the others), starting with these caps.
    pub capped: Option<Caps>,
    /// Processes per operator (index = operator; missing = 1). An operator with more than one
    /// runs them as replicas of one key on the PostgreSQL store (see [`super::replicas`]).
    pub replicas: Vec<usize>,
    /// Operators on the PostgreSQL store even with one process (throughput comparisons).
    pub postgres: Vec<usize>,
    /// `[store] lease_ttl_secs` of the operators on PostgreSQL.
    pub lease_ttl_secs: u64,
}

impl ClusterOptions {
    /// How many processes operator `op` runs.
    pub fn replicas_of(&self, op: usize) -> usize {
        self.replicas.get(op).copied().unwrap_or(1).max(1)
    }

    /// Whether operator `op` keeps its store and journal in PostgreSQL.
    pub fn on_postgres(&self, op: usize) -> bool {
        self.replicas_of(op) > 1 || self.postgres.contains(&op)
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            operators: 4,
            threshold: 3,
            kms: Vec::new(),
            backup_rpc: Vec::new(),
            parent_confirmations: 0,
            child_confirmations: 0,
            recovery_secs: 2,
            standby_delay_ms: None,
            dialect: Dialect::Ours,
            rate_limit: None,
            capped: None,
            replicas: Vec::new(),
            postgres: Vec::new(),
            lease_ttl_secs: 2,
        }
    }
}

/// One agent process: an operator's only one, or one of its replicas.
pub struct Node {
    /// The operator (0-based).
    pub index: usize,
    /// Which of the operator's processes (0-based; 0 when it runs one).
    pub replica: usize,
    /// Its link to PostgreSQL (operators on the PostgreSQL store).
    pub pg: Option<PgLink>,
    /// This process's own copy of the SoftHSM tokens (same keys), as every operator and
    /// replica has its own HSM on its own host. A token directory shared by the agents let one
    /// read a token file while another's login rewrote it: SoftHSM then read two tokens with
    /// no serial, gave both slot 0 and aborted in `C_Initialize` (`SlotManager::insertToken`).
    /// Shared token files could also hold a stopped replica's locks. `None` for hsm-sim.
    softhsm_conf: Option<PathBuf>,
    pub address: Address,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub metrics_port: u16,
    kms: bool,
    /// Between this agent and the parent chain, and the child chain.
    pub parent_proxy: FaultProxy,
    pub child_proxy: FaultProxy,
    /// With [`ClusterOptions::rate_limit`]: the rate-limiting proxies (parent, child) the
    /// agent's RPC URLs point at.
    pub rate_limit: Option<(RateLimitProxy, RateLimitProxy)>,
    /// With [`ClusterOptions::capped`]: the log-capping proxies (parent, child) the agent's RPC
    /// URLs point at.
    pub capped: Option<(CappedProxy, CappedProxy)>,
    process: Option<Child>,
}

impl Node {
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// "op2", or "op2r1" for a replica: how logs and messages name it.
    pub fn label(&self) -> String {
        match &self.pg {
            Some(link) if link.replicated => format!("op{}r{}", self.index + 1, self.replica + 1),
            _ => format!("op{}", self.index + 1),
        }
    }

    /// The process id while it runs (or is stopped by a signal).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    pub fn proxy(&self, parent: bool) -> &FaultProxy {
        if parent {
            &self.parent_proxy
        } else {
            &self.child_proxy
        }
    }
}

pub struct Cluster {
    pub devnet: Arc<Devnet>,
    pub nodes: Vec<Node>,
    pub sim: Option<hsm_sim::HsmSim>,
    pub dir: tempfile::TempDir,
    /// Operators whose keys a test used outside their agents: their votes on chain need not
    /// match their journals.
    pub compromised: Vec<usize>,
    /// The PostgreSQL server of the operators on the PostgreSQL store, and the lease terms seen.
    pub pg: Option<PgStore>,
    pub options: ClusterOptions,
    softhsm_conf: PathBuf,
    _scenario: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts the devnet with the operators registered and every agent running.
    pub async fn start(opts: ClusterOptions) -> Cluster {
        let lock = SCENARIO.lock().await;
        let hsm = softhsm().await;
        let dir = tempfile::tempdir().unwrap();
        let sim = if opts.kms.is_empty() {
            None
        } else {
            Some(
                hsm_sim::HsmSim::start(hsm_sim::Config::default())
                    .await
                    .unwrap(),
            )
        };
        let mut operators = Vec::new();
        for i in 0..opts.operators {
            let address = match &sim {
                Some(sim) if opts.kms.contains(&i) => kms_key(sim, &format!("ha-op{}", i + 1)),
                _ => hsm.keys[i],
            };
            operators.push(address);
        }
        let devnet = Devnet::start(DevnetOptions {
            dir: dir.path().join("chains"),
            operators: operators.clone(),
            value_transfer_threshold: opts.threshold,
            configuration_threshold: opts.threshold,
            dialect: opts.dialect,
            ..DevnetOptions::default()
        })
        .await
        .unwrap();
        let pg = if (0..opts.operators).any(|op| opts.on_postgres(op)) {
            Some(PgStore::start(&opts))
        } else {
            None
        };
        let mut nodes = Vec::new();
        for (i, address) in operators.into_iter().enumerate() {
            for replica in 0..opts.replicas_of(i) {
                let name = if opts.replicas_of(i) > 1 {
                    format!("op{}r{}", i + 1, replica + 1)
                } else {
                    format!("op{}", i + 1)
                };
                let pg_link = match &pg {
                    Some(pg) if opts.on_postgres(i) => Some(pg.link(i, opts.replicas_of(i) > 1)),
                    _ => None,
                };
                let own_softhsm = (!opts.kms.contains(&i))
                    .then(|| copy_softhsm(&hsm.conf, &dir.path().join(format!("softhsm-{name}"))));
                let store = pg_link
                    .as_ref()
                    .map(|_| PgStore::config_section(opts.lease_ttl_secs))
                    .unwrap_or_default();
                let parent_proxy = FaultProxy::start(&devnet.parent.rpc_url()).await;
                let child_proxy = FaultProxy::start(&devnet.child.rpc_url()).await;
                let rate_limit = match opts.rate_limit {
                    Some((every, retry_after)) => Some((
                        RateLimitProxy::start(&parent_proxy.url("http"), every, retry_after).await,
                        RateLimitProxy::start(&child_proxy.url("http"), every, retry_after).await,
                    )),
                    None => None,
                };
                let inner_url = |parent: bool| match (&rate_limit, parent) {
                    (Some((p, _)), true) => p.url(),
                    (Some((_, c)), false) => c.url(),
                    (None, true) => parent_proxy.url("http"),
                    (None, false) => child_proxy.url("http"),
                };
                let capped = match opts.capped {
                    Some(caps) => Some((
                        CappedProxy::start(&inner_url(true), caps).await,
                        CappedProxy::start(&inner_url(false), caps).await,
                    )),
                    None => None,
                };
                let data_dir = dir.path().join(&name);
                let kms = opts.kms.contains(&i);
                let signer = match &sim {
                    Some(sim) if kms => format!(
                        "[signer]\nbackend = \"aws-kms\"\nkey_id = \"alias/ha-op{}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
                        i + 1,
                        sim.endpoint()
                    ),
                    _ => format!(
                        "[signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{}\"\nkey_label = \"operator\"\n\
                     pin = {{ env = \"BRIDGE_PKCS11_PIN\" }}\n",
                        SoftHsm::token_label(i)
                    ),
                };
                let chain = |name: &str, s: &Side, proxy: &FaultProxy, confirmations: u64| {
                    let parent = name == "parent";
                    let first = match (&capped, parent) {
                        (Some((p, _)), true) => p.url(),
                        (Some((_, c)), false) => c.url(),
                        (None, _) => inner_url(parent),
                    };
                    let mut rpc = vec![format!("\"{first}\"")];
                    if opts.backup_rpc.contains(&(i, parent)) {
                        rpc.push(format!("\"{}\"", s.rpc_url()));
                    }
                    format!(
                        "[{name}]\nchain_id = {}\nrpc = [{}]\nws = \"{}\"\nbridge = \"{}\"\ndeploy_block = {}\n\
                     confirmations = {confirmations}\npoll_interval_ms = 100\nrpc_timeout_ms = 2000\nmin_balance = \"1\"\n\n\
                     {}[{name}.fees]\nbump_after_secs = 5\n",
                        s.chain_id,
                        rpc.join(", "),
                        proxy.url("ws"),
                        s.bridge,
                        s.bridge_deploy_block,
                        opts.standby_delay_ms
                            .map(|ms| format!("standby_delay_ms = {ms}\n\n"))
                            .unwrap_or_default()
                    )
                };
                let text = format!(
                    "[agent]\ndata_dir = \"{}\"\nname = \"ha-{name}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                 [log]\nlevel = \"info\"\n\n[recovery]\ninterval_secs = {}\n\n{store}{signer}\n{}\n{}",
                    data_dir.display(),
                    opts.recovery_secs,
                    chain(
                        "parent",
                        &devnet.parent,
                        &parent_proxy,
                        opts.parent_confirmations
                    ),
                    chain(
                        "child",
                        &devnet.child,
                        &child_proxy,
                        opts.child_confirmations
                    ),
                );
                let config = dir.path().join(format!("{name}.toml"));
                std::fs::write(&config, text).unwrap();
                nodes.push(Node {
                    index: i,
                    replica,
                    pg: pg_link,
                    softhsm_conf: own_softhsm,
                    address,
                    config,
                    data_dir,
                    log: dir.path().join(format!("{name}.log")),
                    // Known once the agent runs: it binds port 0 and publishes what it got.
                    metrics_port: 0,
                    kms,
                    parent_proxy,
                    child_proxy,
                    rate_limit,
                    capped,
                    process: None,
                });
            }
        }
        let mut cluster = Cluster {
            devnet: Arc::new(devnet),
            nodes,
            sim,
            dir,
            compromised: Vec::new(),
            pg,
            options: opts,
            softhsm_conf: hsm.conf.clone(),
            _scenario: lock,
        };
        let all: Vec<usize> = (0..cluster.nodes.len()).collect();
        cluster.start_agents(&all).await;
        cluster
    }

    /// Starts agent `i` and waits until it logs that it runs (see [`Cluster::start_agents`]).
    pub async fn start_agent(&mut self, i: usize) {
        self.start_agents(&[i]).await;
    }

    /// Starts the agents `which` together, as independent operators would, and waits until each
    /// logs that it runs (their logs are appended to). Each binds port 0 for its metrics and
    /// publishes the address it got (`<data_dir>/http.addr`), read here: no port is guessed.
    pub async fn start_agents(&mut self, which: &[usize]) {
        let marks: Vec<(usize, usize)> = which.iter().map(|&i| self.spawn_agent(i)).collect();
        for (&i, mark) in which.iter().zip(marks) {
            self.wait_started(i, mark).await;
            let node = &mut self.nodes[i];
            let published = std::fs::read_to_string(node.data_dir.join("http.addr")).unwrap();
            let addr: std::net::SocketAddr = published.trim().parse().unwrap();
            node.metrics_port = addr.port();
        }
    }

    /// Spawns agent `i`; returns where its log stood (length, "agent running" count).
    fn spawn_agent(&mut self, i: usize) -> (usize, usize) {
        let node = &mut self.nodes[i];
        assert!(!node.is_running(), "agent {i} is already running");
        // An earlier run's address is never read for this one.
        let _ = std::fs::remove_file(node.data_dir.join("http.addr"));
        let text = node.log_text();
        let mark = (text.len(), text.matches("agent running").count());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridge-agent"));
        cmd.args(["run", "--config"])
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(link) = &node.pg {
            cmd.env(super::replicas::URL_ENV, link.url());
        }
        if node.kms {
            kms_env(&mut cmd);
        } else {
            cmd.env(
                "SOFTHSM2_CONF",
                node.softhsm_conf.as_ref().unwrap_or(&self.softhsm_conf),
            )
            .env("BRIDGE_PKCS11_PIN", PIN);
        }
        node.process = Some(cmd.spawn().unwrap());
        mark
    }

    /// Waits until agent `i` logs that it runs.
    async fn wait_started(&mut self, i: usize, (before_len, before): (usize, usize)) {
        let node = &mut self.nodes[i];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = node.log_text();
            if text.matches("agent running").count() > before {
                return;
            }
            if let Some(Some(status)) = node.process.as_mut().map(|c| c.try_wait().unwrap()) {
                node.process = None;
                panic!(
                    "agent {i} exited at start ({status}):\n{}",
                    tail(text.get(before_len..).unwrap_or(&text), 30)
                );
            }
            assert!(
                Instant::now() < deadline,
                "agent {i} did not start within 60 s:\n{}",
                tail(&text, 30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM to agent `i`; asserts it exits cleanly within 30 s.
    pub async fn stop_agent(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(mut child) = node.process.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "agent {i} exited with {status}:\n{}",
                    tail(&node.log_text(), 30)
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent {i} ignored SIGTERM for 30 s:\n{}",
                    tail(&node.log_text(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9 agent `i`.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of every agent's log, for failure reports.
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} log ---\n{}", n.label(), tail(&n.log_text(), 25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sum of a metric's samples (all label sets) on agent `i`'s /metrics.
    pub async fn metric(&self, i: usize, name: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.nodes[i].metrics_port);
        let body = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap();
        sum_of(&body, name)
    }

    /// Like [`Cluster::metric`], or None when agent `i` does not answer within `timeout` (a
    /// stopped or killed process).
    pub async fn metric_within(&self, i: usize, name: &str, timeout: Duration) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.nodes[i].metrics_port);
        let body = tokio::time::timeout(timeout, async {
            reqwest::get(&url).await.ok()?.text().await.ok()
        })
        .await
        .ok()
        .flatten()?;
        Some(sum_of(&body, name))
    }

    /// Waits until every request `traffic` sent executed, or panics after `timeout` with the
    /// agents' log tails.
    pub async fn wait_executed(&self, traffic: &Traffic, timeout: Duration) {
        let d = &self.devnet;
        let want = |p2c: bool| traffic.sent().iter().filter(|s| s.p2c == p2c).count() as u64;
        let deadline = Instant::now() + timeout;
        loop {
            let child = lower_handle_nonce(&d.child).await;
            let parent = lower_handle_nonce(&d.parent).await;
            if child >= want(true) && parent >= want(false) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not all executed within {timeout:?}: parent → child {child}/{}, child → parent \
                 {parent}/{}\n{}",
                want(true),
                want(false),
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The end-of-scenario invariants: every request executed exactly once with no gap,
    /// balances conserved and delivered, no operator's journal conflicts with its votes on
    /// chain, no operator left with a stuck nonce.
    pub async fn check_invariants(&self, traffic: &Traffic) {
        let d = &self.devnet;
        for (source, dest, p2c) in [(&d.parent, &d.child, true), (&d.child, &d.parent, false)] {
            let requested = request_nonce(source).await;
            let sent = traffic.sent().iter().filter(|s| s.p2c == p2c).count() as u64;
            assert_eq!(requested, sent, "requests on the source (p2c {p2c})");
            let mut executed = handled_nonces(dest).await;
            let count = executed.len();
            executed.sort_unstable();
            executed.dedup();
            assert_eq!(
                executed.len(),
                count,
                "a request executed twice (p2c {p2c})\n{}",
                self.log_tails()
            );
            assert_eq!(
                executed,
                (0..requested).collect::<Vec<_>>(),
                "executed nonces must be exactly 0..{requested} (p2c {p2c})\n{}",
                self.log_tails()
            );
        }
        let lines = traffic
            .reconcile(d)
            .await
            .unwrap_or_else(|e| panic!("balances: {e}\n{}", self.log_tails()));
        assert!(!lines.is_empty());
        let handles = [
            ("child", super::chain_votes::handle_txs(&d.child).await),
            ("parent", super::chain_votes::handle_txs(&d.parent).await),
        ];
        for node in &self.nodes {
            self.check_journals(node, &handles).await;
        }
        if let Some(pg) = &self.pg {
            pg.check_terms(&self.log_tails());
        }
        self.check_votes_per_transfer(&handles).await;
        self.check_no_stuck_nonce().await;
        self.check_nothing_queued().await;
    }

    /// No transaction of any operator left in either node's pool, pending or queued (within
    /// 30 s): a future-nonce transaction queued behind a hole does not show in the pending
    /// nonce, so the pool's content is read.
    pub async fn check_nothing_queued(&self) {
        let d = &self.devnet;
        let deadline = Instant::now() + Duration::from_secs(30);
        for side in [&d.parent, &d.child] {
            loop {
                let left: Vec<String> = pool_entries(side)
                    .await
                    .into_iter()
                    .filter_map(|(from, section, nonce)| {
                        let op = self.nodes.iter().find(|n| n.address == from)?;
                        Some(format!("op{} {section} nonce {nonce}", op.index + 1))
                    })
                    .collect();
                if left.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "operators' transactions left in chain {}'s pool: {left:?}\n{}",
                    side.chain_id,
                    self.log_tails()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// [`Cluster::check_votes_per_transfer`] on both chains, for scenarios whose requests are
    /// not all in one [`Traffic`] (a stuck nonce, tokens of their own).
    pub async fn check_votes_on_chain(&self) {
        let d = &self.devnet;
        let handles = [
            ("child", super::chain_votes::handle_txs(&d.child).await),
            ("parent", super::chain_votes::handle_txs(&d.parent).await),
        ];
        self.check_votes_per_transfer(&handles).await;
    }

    /// Votes on chain per executed transfer = t, no extra: for every executed nonce exactly t
    /// successful handle transactions carry the executed call (a repeated identical vote, mined
    /// on both dialects, counts as an extra), and no operator whose key stayed with its agent
    /// cast any other call. Read from the blocks, so it holds on Kaia's bridge too.
    async fn check_votes_per_transfer(
        &self,
        handles: &[(&str, Vec<super::chain_votes::HandleTx>)],
    ) {
        let d = &self.devnet;
        let compromised: Vec<Address> = self
            .compromised
            .iter()
            .map(|&i| self.nodes[i].address)
            .collect();
        for (name, txs) in handles {
            let dest = if *name == "child" {
                &d.child
            } else {
                &d.parent
            };
            let t = u64::from(
                Bridge::new(dest.bridge, dest.reader())
                    .operatorThresholds(VOTE_TYPE_VALUE_TRANSFER)
                    .call()
                    .await
                    .unwrap(),
            );
            let reverted = txs.iter().filter(|h| !h.ok).count();
            let by_nonce = super::chain_votes::ok_by_nonce(txs);
            let mut executed = 0;
            for (nonce, votes) in &by_nonce {
                let Some(closing) = votes.iter().find(|h| h.executed) else {
                    continue;
                };
                executed += 1;
                let same: Vec<String> = votes
                    .iter()
                    .filter(|h| h.key == closing.key)
                    .map(|h| format!("{} (block {})", h.from, h.block))
                    .collect();
                if same.len() as u64 != t {
                    // The voters' own words about this nonce, for the failure report.
                    let mut lines = String::new();
                    for node in &self.nodes {
                        if votes.iter().any(|h| h.from == node.address) {
                            lines += &format!("--- {} on nonce {nonce} ---\n", node.label());
                            for l in node.log_text().lines() {
                                if l.contains(&format!("nonce={nonce} "))
                                    || l.ends_with(&format!("nonce={nonce}"))
                                {
                                    lines += l;
                                    lines.push('\n');
                                }
                            }
                        }
                    }
                    panic!(
                        "{name} nonce {nonce}: {} successful votes for the executed call, want t = \
                         {t}: {same:?}\n{lines}\n{}",
                        same.len(),
                        self.log_tails()
                    );
                }
                let other: Vec<String> = votes
                    .iter()
                    .filter(|h| h.key != closing.key && !compromised.contains(&h.from))
                    .map(|h| format!("{} (block {})", h.from, h.block))
                    .collect();
                assert!(
                    other.is_empty(),
                    "{name} nonce {nonce}: honest operators voted another call: {other:?}\n{}",
                    self.log_tails()
                );
            }
            eprintln!(
                "votes on {name}: {executed} executed transfers with exactly t = {t} votes each; \
                 {reverted} reverted handle transaction(s)"
            );
        }
    }

    /// Each journal: no conflicting vote attempted, and every vote of this operator on chain
    /// is the one its journal recorded.
    async fn check_journals(
        &self,
        node: &Node,
        handles: &[(&str, Vec<super::chain_votes::HandleTx>)],
    ) {
        let d = &self.devnet;
        if node.pg.is_some() && node.replica > 0 {
            // The operator's one journal in PostgreSQL is checked with its first replica.
            return;
        }
        for (side, name) in [(&d.parent, "parent"), (&d.child, "child")] {
            let (conflicts, journal) = match (&node.pg, &self.pg) {
                (Some(_), Some(pg)) => pg.journal(node.index, side.chain_id),
                _ => {
                    let path = node.data_dir.join(format!("journal-{name}.sqlite"));
                    if !path.exists() {
                        continue;
                    }
                    sqlite_journal(&path)
                }
            };
            assert_eq!(
                conflicts,
                0,
                "op{} {name} journal refused a conflicting vote",
                node.index + 1
            );
            if d.dialect == Dialect::Kaia {
                // No vote view: every successful handle this key sent must be its journal's.
                if self.compromised.contains(&node.index) {
                    continue;
                }
                let txs = handles
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.as_slice())
                    .unwrap_or_default();
                for h in txs.iter().filter(|h| h.ok && h.from == node.address) {
                    assert_eq!(
                        journal.get(&h.nonce),
                        Some(&h.key),
                        "op{} voted on {name} nonce {} (tx {}) without (or unlike) its journal",
                        node.index + 1,
                        h.nonce,
                        h.hash
                    );
                }
                continue;
            }
            let bridge = Bridge::new(side.bridge, side.reader());
            for nonce in 0..request_nonce(if name == "child" { &d.parent } else { &d.child }).await
            {
                let on_chain = bridge
                    .voteOf(VOTE_TYPE_VALUE_TRANSFER, nonce, node.address)
                    .call()
                    .await
                    .unwrap();
                if on_chain != B256::ZERO && !self.compromised.contains(&node.index) {
                    assert_eq!(
                        journal.get(&nonce),
                        Some(&on_chain),
                        "op{} voted on {name} nonce {nonce} without (or unlike) its journal",
                        node.index + 1
                    );
                }
            }
        }
    }

    /// Every operator's pending nonce equals its mined nonce on both chains (within 30 s: a
    /// replacement may still be on its way).
    async fn check_no_stuck_nonce(&self) {
        let d = &self.devnet;
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            for side in [&d.parent, &d.child] {
                let p = side.reader();
                loop {
                    let latest = p
                        .get_transaction_count(node.address)
                        .latest()
                        .await
                        .unwrap();
                    let pending = p
                        .get_transaction_count(node.address)
                        .pending()
                        .await
                        .unwrap();
                    if latest == pending {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "op{} has a stuck nonce on chain {}: mined {latest}, pending {pending}\n{}",
                        node.index + 1,
                        side.chain_id,
                        self.log_tails()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Sets every proxy of agent `i` toward one chain.
    pub fn link(&self, i: usize, parent: bool, mode: Mode) {
        self.nodes[i].proxy(parent).set(mode);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_agent(i);
        }
    }
}

/// Runs `n` transfers from a task, `pause` apart; returns the traffic when done.
pub fn spawn_load(
    devnet: Arc<Devnet>,
    n: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<Traffic> {
    tokio::spawn(async move {
        let mut traffic = Traffic::new(&devnet);
        for _ in 0..n {
            traffic
                .send_next(&devnet)
                .await
                .unwrap_or_else(|e| panic!("sending a transfer: {e}"));
            tokio::time::sleep(pause).await;
        }
        traffic
    })
}

/// Sends transfers from a task, `pause` apart, until `stop` is cancelled (at most 10 000);
/// returns the traffic when stopped.
pub fn spawn_load_until(
    devnet: Arc<Devnet>,
    stop: tokio_util::sync::CancellationToken,
    pause: Duration,
) -> tokio::task::JoinHandle<Traffic> {
    tokio::spawn(async move {
        let mut traffic = Traffic::new(&devnet);
        for _ in 0..10_000 {
            if stop.is_cancelled() {
                break;
            }
            traffic
                .send_next(&devnet)
                .await
                .unwrap_or_else(|e| panic!("sending a transfer: {e}"));
            tokio::time::sleep(pause).await;
        }
        traffic
    })
}

/// Every transaction in `side`'s pool: (sender, "pending" | "queued", nonce).
pub async fn pool_entries(side: &Side) -> Vec<(Address, &'static str, u64)> {
    let content: serde_json::Value = side
        .reader()
        .raw_request("txpool_content".into(), ())
        .await
        .unwrap();
    let mut out = Vec::new();
    for section in ["pending", "queued"] {
        for (from, by_nonce) in content[section].as_object().into_iter().flatten() {
            let from: Address = from.parse().unwrap();
            for nonce in by_nonce.as_object().into_iter().flatten().map(|(n, _)| n) {
                out.push((from, section, nonce.parse().unwrap()));
            }
        }
    }
    out
}

/// Replaces `side`'s last `depth` blocks (`anvil_reorg`): every transaction of the `operators`
/// in them is orphaned (anvil does not put it back in its pool), everyone else's is mined again
/// in the block of the same height, so users' requests survive and only votes and executions
/// are undone. Returns how many operator transactions were orphaned.
pub async fn reorg_orphaning(side: &Side, depth: u64, operators: &[Address]) -> usize {
    use alloy::eips::eip2718::Encodable2718;
    use alloy::providers::ext::AnvilApi;
    use alloy::rpc::types::anvil::{ReorgOptions, TransactionData};
    let p = side.reader();
    let head = p.get_block_number().await.unwrap();
    let mut keep = Vec::new();
    let mut orphaned = 0;
    for (offset, number) in (head + 1 - depth..=head).enumerate() {
        let block = p
            .get_block_by_number(number.into())
            .full()
            .await
            .unwrap()
            .unwrap();
        for tx in block.transactions.into_transactions() {
            if operators.contains(&tx.inner.signer()) {
                orphaned += 1;
            } else {
                let raw = tx.inner.into_inner().encoded_2718();
                keep.push((TransactionData::Raw(raw.into()), offset as u64));
            }
        }
    }
    p.anvil_reorg(ReorgOptions {
        depth,
        tx_block_pairs: keep,
    })
    .await
    .unwrap();
    orphaned
}

/// Mines a block on both chains every `every` until aborted, so confirmations accrue while no
/// transaction is sent (the devnet mines only on transactions).
pub fn spawn_miner(devnet: Arc<Devnet>, every: Duration) -> tokio::task::JoinHandle<()> {
    use alloy::providers::ext::AnvilApi;
    tokio::spawn(async move {
        loop {
            for side in [&devnet.parent, &devnet.child] {
                let _ = side.reader().anvil_mine(Some(1), None).await;
            }
            tokio::time::sleep(every).await;
        }
    })
}

pub async fn request_nonce(side: &Side) -> u64 {
    Bridge::new(side.bridge, side.reader())
        .requestNonce()
        .call()
        .await
        .unwrap()
}

pub async fn lower_handle_nonce(side: &Side) -> u64 {
    Bridge::new(side.bridge, side.reader())
        .lowerHandleNonce()
        .call()
        .await
        .unwrap()
}

/// Every HandleValueTransfer's request nonce on `dest`, in log order.
pub async fn handled_nonces(dest: &Side) -> Vec<u64> {
    let filter = Filter::new()
        .address(dest.bridge)
        .from_block(dest.bridge_deploy_block)
        .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH);
    dest.reader()
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|l| {
            l.log_decode::<Bridge::HandleValueTransfer>()
                .unwrap()
                .inner
                .data
                .handleNonce
        })
        .collect()
}

/// Environment for a process using the hsm-sim KMS (it accepts any credentials).
fn kms_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "ha-harness")
        .env("AWS_SECRET_ACCESS_KEY", "ha-harness-not-a-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

/// A new hsm-sim key with alias `alias/LABEL`, through `bridge-agent keys generate`; its address.
fn kms_key(sim: &hsm_sim::HsmSim, label: &str) -> Address {
    let out = kms_env(&mut Command::new(env!("CARGO_BIN_EXE_bridge-agent")))
        .args([
            "keys",
            "generate",
            "--backend",
            "aws-kms",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint", &sim.endpoint(), "--label", label, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["address"].as_str().unwrap().parse().unwrap()
}

/// The sum of metric `name`'s samples (every label set) in a `/metrics` body.
fn sum_of(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Copies the SoftHSM tokens named by `conf` into `dir` and writes a config naming the copy;
/// its path.
fn copy_softhsm(conf: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(conf).unwrap();
    let tokens = text
        .lines()
        .find_map(|l| l.strip_prefix("directories.tokendir = "))
        .expect("tokendir in the SoftHSM config")
        .trim()
        .to_owned();
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join("tokens");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&tokens)
        .arg(&copy)
        .status()
        .unwrap()
        .success();
    assert!(ok, "copying the SoftHSM tokens");
    let own = dir.join("softhsm2.conf");
    std::fs::write(&own, text.replace(&tokens, &copy.display().to_string())).unwrap();
    own
}

/// A SQLite journal file's conflict count and its request votes by nonce.
fn sqlite_journal(path: &Path) -> (i64, std::collections::HashMap<u64, B256>) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let conflicts: i64 = conn
        .query_row("SELECT COUNT(*) FROM conflicts", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT nonce, vote_hash FROM votes WHERE namespace = 'request'")
        .unwrap();
    let journal = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                B256::from_slice(&r.get::<_, Vec<u8>>(1)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (conflicts, journal)
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A small deterministic generator for random schedules (the seed is printed, so a failing run
/// can be replayed with `HA_SEED`).
pub struct Rng(u64);

impl Rng {
    pub fn from_env(scenario: &str) -> Self {
        let seed = std::env::var("HA_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{scenario}: HA_SEED={seed}");
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}
