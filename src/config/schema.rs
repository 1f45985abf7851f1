//! The file's schema, as written: one struct per table, `deny_unknown_fields` throughout.
//! Values that need more than serde to check (URLs, addresses, amounts, listen addresses, log
//! directives) are kept as written here and turned into typed values by validation, so that one
//! bad value does not hide the other problems of its table.
//!
//! Every field is documented with its default; `config/*.toml` has commented examples.

use std::fmt;
use std::path::PathBuf;

use bridge_signer::SignerConfig;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// `[agent]`: this operator's agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Required. Directory holding `store.sqlite` and the guard journals
    /// `journal-parent.sqlite` / `journal-child.sqlite`; created if missing. One per operator:
    /// two agents must never share it.
    pub data_dir: PathBuf,
    /// Optional label for logs and metrics, e.g. `"operator-1"`. Default: none.
    #[serde(default)]
    pub name: Option<String>,
}

/// `[http]`: the `/metrics`, `/healthz`, `/readyz` endpoint. Optional table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Socket address to listen on. Default `"127.0.0.1:9100"`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9100".into()
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`. Optional table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `"text"` (default) or `"json"`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` `EnvFilter` directive, e.g. `"info"` or `"info,bridge_agent=debug"`.
    /// Default `"info"`. `RUST_LOG`, when set, takes its place (`src/cli/run.rs`).
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// `[recovery]`: the periodic "did we miss anything" check. Optional table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySection {
    /// Seconds between two checks, per direction. Default 30; must be positive.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Blocks per `eth_getLogs` call when rescanning. Default 1000; must be positive.
    #[serde(default = "default_window_blocks")]
    pub window_blocks: u64,
}

impl Default for RecoverySection {
    fn default() -> Self {
        Self {
            interval_secs: default_interval_secs(),
            window_blocks: default_window_blocks(),
        }
    }
}

fn default_interval_secs() -> u64 {
    30
}
fn default_window_blocks() -> u64 {
    1000
}

/// Where an endpoint URL comes from: written inline (`"http://…"`), or, when it carries an API
/// key or credentials, from an environment variable (`{ env = "PARENT_RPC_URL" }`) or a file
/// (`{ file = "/run/secrets/parent-rpc-url" }`, one line).
#[derive(Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// The URL itself. Must not carry `user:password@`.
    Inline(String),
    /// Name of an environment variable holding the URL.
    Env(String),
    /// Path of a file holding the URL.
    File(PathBuf),
}

impl fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(s) => match super::endpoint::Url::parse(s) {
                Ok(u) => write!(f, "Inline({})", super::endpoint::redact(&u)),
                Err(_) => f.write_str("Inline(<unparsable>)"),
            },
            Self::Env(v) => f.debug_tuple("Env").field(v).finish(),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for UrlSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UrlSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a URL string, { env = \"VAR\" } or { file = \"PATH\" } (the latter two \
                     for URLs that carry an API key)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UrlSource, E> {
                Ok(UrlSource::Inline(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UrlSource, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<String>()? {
                    if out.is_some() {
                        return Err(de::Error::custom("give exactly one of `env` and `file`"));
                    }
                    out = Some(match key.as_str() {
                        "env" => UrlSource::Env(map.next_value()?),
                        "file" => UrlSource::File(map.next_value()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["env", "file"]));
                        }
                    });
                }
                out.ok_or_else(|| de::Error::custom("give one of `env` and `file`"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Fee mode of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeeMode {
    /// EIP-1559 (type-2) transactions: `max_fee_gwei` and `priority_fee_gwei` (default).
    #[default]
    Eip1559,
    /// Legacy (type-0) transactions with a gas price.
    Legacy,
}

/// `[parent.fees]` / `[child.fees]`. Optional table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSection {
    /// `"eip1559"` (default) or `"legacy"`.
    #[serde(default)]
    pub mode: FeeMode,
    /// Never pay more than this per gas, in gwei: the cap for bumps. Default 500.
    #[serde(default = "default_max_fee_gwei")]
    pub max_fee_gwei: u64,
    /// EIP-1559 only: priority fee (tip) per gas, in gwei. Default 1; at most `max_fee_gwei`.
    #[serde(default = "default_priority_fee_gwei")]
    pub priority_fee_gwei: u64,
    /// Legacy only: starting gas price in gwei. Default: none, use `eth_gasPrice`.
    #[serde(default)]
    pub gas_price_gwei: Option<u64>,
    /// Replace a transaction not mined after this many seconds. Default 30; must be positive.
    #[serde(default = "default_bump_after_secs")]
    pub bump_after_secs: u64,
    /// Each replacement raises the fees by this many percent. Default 15; at least 10 (nodes
    /// refuse replacements below +10 %).
    #[serde(default = "default_bump_percent")]
    pub bump_percent: u32,
    /// Replacements per transaction at most. Default 5.
    #[serde(default = "default_max_bumps")]
    pub max_bumps: u32,
}

impl Default for FeeSection {
    fn default() -> Self {
        Self {
            mode: FeeMode::default(),
            max_fee_gwei: default_max_fee_gwei(),
            priority_fee_gwei: default_priority_fee_gwei(),
            gas_price_gwei: None,
            bump_after_secs: default_bump_after_secs(),
            bump_percent: default_bump_percent(),
            max_bumps: default_max_bumps(),
        }
    }
}

fn default_max_fee_gwei() -> u64 {
    500
}
fn default_priority_fee_gwei() -> u64 {
    1
}
fn default_bump_after_secs() -> u64 {
    30
}
fn default_bump_percent() -> u32 {
    15
}
fn default_max_bumps() -> u32 {
    5
}

/// `[parent]` / `[child]`: one chain and this side's bridge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// Required. The chain id; checked against the nodes at start, and the only one the guard
    /// signs for. Must differ between the two chains.
    pub chain_id: u64,
    /// Required, at least one. JSON-RPC endpoints (`http://` or `https://`), used with failover
    /// in health order. Each is a URL string, or `{ env = "VAR" }` / `{ file = "PATH" }` when it
    /// carries an API key.
    pub rpc: Vec<UrlSource>,
    /// Optional WebSocket endpoint (`ws://` or `wss://`) for log subscriptions; without it (or
    /// while it is down) logs are polled. Same forms as `rpc`.
    #[serde(default)]
    pub ws: Option<UrlSource>,
    /// Required. This chain's Bridge contract (`0x…`, 20 bytes, not zero).
    pub bridge: String,
    /// Block the bridge was deployed in: where the watcher starts when the store has no
    /// cursor yet. Default 0.
    #[serde(default)]
    pub deploy_block: u64,
    /// Blocks to wait before acting on a request. Default 0 (for instant-finality chains such
    /// as Kaia).
    #[serde(default)]
    pub confirmations: u64,
    /// Milliseconds between two polls for new blocks/logs. Default 1000; must be positive.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// With more operators than the threshold t, t seats take each request nonce in turn and
    /// vote on it at once; the others hold the request and vote only when this chain's bridge
    /// has executed nothing (`lowerHandleNonce` unchanged) for this many milliseconds while it
    /// is pending (saving the gas of votes past the threshold). 0: every operator votes at
    /// once. Set it to a few of this chain's block times. Default 3000.
    #[serde(default = "default_standby_delay_ms")]
    pub standby_delay_ms: u64,
    /// Seconds the operator's lowest pending transaction on this chain may stay unmined while
    /// the chain produces blocks before the sender counts as wedged (`/readyz` 503, metric
    /// `bridge_sender_wedged`). Default 120; must be positive.
    #[serde(default = "default_wedged_after_secs")]
    pub wedged_after_secs: u64,
    /// Upper bound of one RPC call, in milliseconds. Default 5000; must be positive.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Low-balance alarm threshold for the operator's gas account, in whole coins as a decimal
    /// string (`"0.5"` = 0.5 × 10^18 wei). Default `"0.5"`.
    #[serde(default = "default_min_balance")]
    pub min_balance: String,
    /// Request budget of each RPC endpoint of this chain, in requests per second (bursts up to
    /// one second's worth): set it under a provider's rate limit. 0 (the default): unlimited.
    #[serde(default)]
    pub rpc_requests_per_second: u32,
    /// Fee policy. Default: all of [`FeeSection`]'s defaults.
    #[serde(default)]
    pub fees: FeeSection,
    /// Optional: this chain's signer, overriding the top-level `[signer]`.
    #[serde(default)]
    pub signer: Option<SignerConfig>,
    /// Optional: `"ours"` or `"kaia"`, pinning the bridge's dialect. Default: found from the
    /// bridge itself at start (a disagreement is warned about; the pinned one is used).
    #[serde(default)]
    pub dialect: Option<String>,
}

fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_standby_delay_ms() -> u64 {
    3000
}
fn default_wedged_after_secs() -> u64 {
    120
}
fn default_rpc_timeout_ms() -> u64 {
    5000
}
fn default_min_balance() -> String {
    "0.5".into()
}

/// Which database holds the agent's store and the guard's journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackendName {
    /// SQLite files under `agent.data_dir` (default): one agent per operator.
    #[default]
    Sqlite,
    /// A PostgreSQL server the operator's replicas share (one leader signs at a time).
    Postgres,
}

/// How the PostgreSQL connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreTls {
    /// TLS, the server's certificate and name verified (default).
    #[default]
    VerifyFull,
    /// No TLS: only for a server on this host (a Unix socket or a loopback address).
    Disable,
}

/// `[store]`: where the store and the journals live. Optional table; without it, SQLite.
/// The PostgreSQL-only keys are options here so that validation can tell "left out" from
/// "written for the wrong backend".
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `"sqlite"` (default) or `"postgres"`.
    #[serde(default)]
    pub backend: StoreBackendName,
    /// PostgreSQL only, required there: `{ env = "VAR" }` or `{ file = "PATH" }` holding the
    /// connection URL. An inline string is refused: the URL holds the password.
    #[serde(default)]
    pub url: Option<UrlSource>,
    /// PostgreSQL only: `"verify-full"` (default) or `"disable"`.
    #[serde(default)]
    pub tls: Option<StoreTls>,
    /// PostgreSQL with `verify-full` only: the CA bundle (PEM) that signed the server's
    /// certificate. Default: the Mozilla roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL only: seconds the replicas' leader lease lasts without renewal. Default 5,
    /// 1..=300.
    #[serde(default)]
    pub lease_ttl_secs: Option<u64>,
    /// PostgreSQL only: the lease's name, shared by one operator's replicas. Default
    /// `"bridge-agent"`.
    #[serde(default)]
    pub lease_name: Option<String>,
}
