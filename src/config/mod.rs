//! The agent's configuration: one TOML file, checked as a whole before anything starts.
//!
//! ```text
//!  file ──read──> text ──toml parse (spans kept)──> syntax errors? ──> report them (line, column)
//!                                                      │ no
//!                                                      ▼
//!        per top-level table: serde into schema::*Section (deny_unknown_fields)
//!        unknown tables, missing tables                │ every failure becomes a Problem
//!                                                      ▼ with its dotted path
//!        validate: URLs, addresses, amounts, fees, listen address, log filter, signer sections
//!        (SignerConfig::validate + PIN source readable), cross-chain sanity
//!                                                      │
//!                          problems? ── yes ──> ConfigError { every Problem, in file order }
//!                                                      │ no
//!                                                      ▼
//!                                                AgentConfig (typed)
//! ```
//!
//! Secrets are never written in the file: PINs come from `pin = { env = … }` / `{ file = … }`
//! (the signer crate has no inline form), AWS credentials from the standard AWS chain, and an
//! endpoint URL that carries an API key can be given as `{ env = "VAR" }` / `{ file = "PATH" }`.
//! `Debug` of every type here is safe to log: endpoints print as `scheme://host:port/…`.
//!
//! Examples: `config/softhsm.toml`, `config/aws-kms.toml`, `config/devnet-operator.toml`.

mod endpoint;
mod error;
mod load;
pub mod schema;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use bridge_signer::{GuardConfig, SignerConfig};

pub use endpoint::{Endpoint, Url};
pub use error::{ConfigError, Location, Problem};
pub use load::{check, load, load_str, load_with};

/// Whether loading a config checks that its secrets (the PIN) can be read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Check,
    /// For commands that never sign.
    Skip,
}
pub use schema::{FeeMode, LogFormat, StoreTls};

/// One of the two chains the bridge connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The parent chain (`[parent]`).
    Parent,
    /// The service chain (`[child]`).
    Child,
}

impl Side {
    /// Both sides, parent first.
    pub const ALL: [Side; 2] = [Side::Parent, Side::Child];

    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::Parent => Self::Child,
            Self::Child => Self::Parent,
        }
    }

    /// `"parent"` or `"child"`: the table name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Child => "child",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked configuration. Build it with [`load`] (or [`load_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `[agent]`.
    pub agent: AgentSettings,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[recovery]`.
    pub recovery: RecoveryConfig,
    /// `[parent]`.
    pub parent: ChainConfig,
    /// `[child]`.
    pub child: ChainConfig,
    /// `[store]`.
    pub store: StoreConfig,
}

/// `[store]`: where the agent's store and the guard's journals live, and the replicas' lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// SQLite files under `data_dir`, or a PostgreSQL server.
    pub backend: StoreBackend,
    /// How long the replicas' leader lease lasts without renewal (PostgreSQL).
    pub lease_ttl: Duration,
    /// The lease's name: one per operator, shared by its replicas.
    pub lease_name: String,
}

/// Default lease length (`[store] lease_ttl_secs`).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);
/// Default lease name (`[store] lease_name`).
pub const DEFAULT_LEASE_NAME: &str = "bridge-agent";

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            lease_ttl: DEFAULT_LEASE_TTL,
            lease_name: DEFAULT_LEASE_NAME.into(),
        }
    }
}

/// The database engine of `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// `store.sqlite` and `journal-<side>.sqlite` under `agent.data_dir`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres(PgSettings),
}

/// `[store]` with `backend = "postgres"`. Holds where the URL is, never the URL itself: it is
/// read when the database is opened (`crate::store::open`), so no config value carries the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// Where the connection URL is.
    pub url: DbUrlSource,
    /// Encryption of the connection.
    pub tls: StoreTls,
    /// With `verify-full`: the CA bundle that signed the server's certificate; `None`: the
    /// Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

/// Where a database URL (which holds a password) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrlSource {
    /// The environment variable of this name.
    Env(String),
    /// The first line of this file.
    File(PathBuf),
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// Holds the store and the guard journals; created at start if missing.
    pub data_dir: PathBuf,
    /// Optional label for logs and metrics.
    pub name: Option<String>,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub listen: SocketAddr,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive, already checked to parse.
    pub level: String,
}

/// `[recovery]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Time between two recovery checks, per direction.
    pub interval: Duration,
    /// Blocks per `eth_getLogs` call when rescanning.
    pub window_blocks: u64,
}

/// `[parent]` / `[child]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// The chain id.
    pub chain_id: u64,
    /// JSON-RPC endpoints (http/https), at least one, in configured order.
    pub rpc: Vec<Endpoint>,
    /// WebSocket endpoint (ws/wss) for log subscriptions, if any.
    pub ws: Option<Endpoint>,
    /// This chain's Bridge contract.
    pub bridge: Address,
    /// Where the watcher starts when the store has no cursor.
    pub deploy_block: u64,
    /// Blocks to wait before acting on a request (0 allowed).
    pub confirmations: u64,
    /// Time between two polls.
    pub poll_interval: Duration,
    /// How long the operators whose turn it is not wait before voting on a request to this
    /// chain (zero: everyone votes at once).
    pub standby_delay: Duration,
    /// How long the lowest pending transaction may stay unmined while blocks are produced
    /// before the sender is reported wedged.
    pub wedged_after: Duration,
    /// Upper bound of one RPC call.
    pub rpc_timeout: Duration,
    /// Low-balance alarm threshold of the operator's gas account, in wei.
    pub min_balance: U256,
    /// How transactions on this chain are priced and replaced.
    pub fees: FeePolicy,
    /// The signer for this chain: its own `signer = {…}`, else the top-level `[signer]`.
    pub signer: SignerConfig,
    /// The bridge dialect pinned in the config; `None`: found from the bridge at start.
    pub dialect: Option<crate::dialect::Dialect>,
    /// Request budget per RPC endpoint, per second; 0: unlimited.
    pub rpc_requests_per_second: u32,
}

/// A chain's fee policy, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// EIP-1559 or legacy transactions.
    pub mode: FeeMode,
    /// Cap per gas (max fee for EIP-1559, gas price for legacy), in wei. Bumps never exceed it.
    pub max_fee_per_gas: u128,
    /// EIP-1559 priority fee per gas, in wei (at most `max_fee_per_gas`).
    pub priority_fee_per_gas: u128,
    /// Legacy: starting gas price in wei; `None` means ask the node (`eth_gasPrice`).
    pub gas_price: Option<u128>,
    /// Replace a transaction not mined after this long.
    pub bump_after: Duration,
    /// Each replacement raises the fees by this many percent (≥ 10).
    pub bump_percent: u32,
    /// Replacements per transaction at most.
    pub max_bumps: u32,
}

/// Wei per gwei.
pub const GWEI: u128 = 1_000_000_000;

impl FeePolicy {
    /// `fee` raised by `bump_percent` (rounded up, so a replacement is always strictly higher),
    /// capped at `max_fee_per_gas`.
    pub fn bumped(&self, fee: u128) -> u128 {
        let pct = u128::from(self.bump_percent);
        let raised = fee
            .saturating_mul(100 + pct)
            .div_ceil(100)
            .max(fee.saturating_add(1));
        raised.min(self.max_fee_per_gas)
    }
}

impl AgentConfig {
    /// One chain's settings.
    pub fn chain(&self, side: Side) -> &ChainConfig {
        match side {
            Side::Parent => &self.parent,
            Side::Child => &self.child,
        }
    }

    /// The signer that signs this chain's transactions.
    pub fn signer_for(&self, side: Side) -> &SignerConfig {
        &self.chain(side).signer
    }

    /// The agent's SQLite store (cursors, pending transactions): `<data_dir>/store.sqlite`.
    pub fn store_path(&self) -> PathBuf {
        self.agent.data_dir.join("store.sqlite")
    }

    /// Where `run` publishes the address its HTTP server is bound to: `<data_dir>/http.addr`.
    /// With `[http] listen` on port 0 the system picks the port (no test guesses a free one);
    /// `status` and tests read it here.
    pub fn http_address_path(&self) -> PathBuf {
        self.agent.data_dir.join("http.addr")
    }

    /// Where a running agent on this config serves: `[http] listen`, or with port 0 the
    /// address it published at [`Self::http_address_path`]. A stale or missing file leaves
    /// port 0, where no agent answers (`status`, `keys rotate` then go on without one).
    pub fn agent_http_address(&self) -> SocketAddr {
        if self.http.listen.port() != 0 {
            return self.http.listen;
        }
        std::fs::read_to_string(self.http_address_path())
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(self.http.listen)
    }

    /// The guard's vote journal for votes sent to `side`:
    /// `<data_dir>/journal-parent.sqlite` or `<data_dir>/journal-child.sqlite`.
    pub fn journal_path(&self, side: Side) -> PathBuf {
        self.agent.data_dir.join(format!("journal-{side}.sqlite"))
    }

    /// The guard settings for transactions sent to `side`: that chain's id and bridge, and its
    /// journal.
    pub fn guard_config(&self, side: Side) -> GuardConfig {
        let chain = self.chain(side);
        GuardConfig {
            chain_id: chain.chain_id,
            bridge: chain.bridge,
            journal: self.journal_path(side),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.agent.data_dir
    }
}

#[cfg(test)]
mod tests;
