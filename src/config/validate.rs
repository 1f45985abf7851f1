//! From the deserialized tables to a typed [`AgentConfig`], collecting every problem.

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use bridge_signer::{PinSource, SignerConfig};

use super::Secrets;
use super::endpoint::{Endpoint, Url};
use super::error::Problem;
use super::load::Section;
use super::schema::{
    AgentSection, ChainSection, FeeMode, FeeSection, HttpSection, LogSection, RecoverySection,
    StoreBackendName, StoreSection, StoreTls, UrlSource,
};
use super::{
    AgentConfig, AgentSettings, ChainConfig, DEFAULT_LEASE_NAME, DEFAULT_LEASE_TTL, DbUrlSource,
    FeePolicy, GWEI, HttpConfig, LogConfig, PgSettings, RecoveryConfig, Side, StoreBackend,
    StoreConfig,
};

/// The top-level tables as deserialized.
pub(crate) struct Sections {
    pub agent: Section<AgentSection>,
    pub http: Section<HttpSection>,
    pub log: Section<LogSection>,
    pub recovery: Section<RecoverySection>,
    pub store: Section<StoreSection>,
    pub signer: Section<SignerConfig>,
    pub parent: Section<ChainSection>,
    pub child: Section<ChainSection>,
    /// `parent.chain_id` and `child.chain_id` as written, when they are integers.
    pub chain_ids: [Option<u64>; 2],
}

struct Sink<'a> {
    problems: &'a mut Vec<Problem>,
    secrets: Secrets,
}

impl Sink<'_> {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }
    fn count(&self) -> usize {
        self.problems.len()
    }
}

/// Checks everything; `Some` only when no problem at all was found (before or here).
pub(crate) fn build(
    s: Sections,
    problems: &mut Vec<Problem>,
    secrets: Secrets,
) -> Option<AgentConfig> {
    let mut sink = Sink { problems, secrets };

    let agent = required(s.agent, "agent", &mut sink).and_then(|a| agent(a, &mut sink));
    let http = optional(s.http).and_then(|h| http(h, &mut sink));
    let log = optional(s.log).and_then(|l| log(l, &mut sink));
    let recovery = optional(s.recovery).and_then(|r| recovery(r, &mut sink));
    let store = optional(s.store).and_then(|st| store(st, &mut sink));

    // The top-level signer, and whether its absence is a problem (decided once both chains
    // are known).
    let (top_signer, top_signer_absent) = match s.signer {
        Section::Absent => (None, true),
        Section::Invalid => (None, false),
        Section::Present(c) => {
            let before = sink.count();
            signer(&c, "signer", &mut sink);
            (Some(c).filter(|_| sink.count() == before), false)
        }
    };
    // A chain without its own signer (or not in the file at all) needs the top-level one.
    let needs_top_signer = [&s.parent, &s.child].iter().any(|c| match c {
        Section::Absent => true,
        Section::Invalid => false,
        Section::Present(c) => c.signer.is_none(),
    });
    if let [Some(p), Some(c)] = s.chain_ids
        && p == c
        && p != 0
    {
        sink.push(
            "child.chain_id",
            format!("the same as parent.chain_id ({c}); the two chains must have different ids"),
        );
    }
    if let (Section::Present(p), Section::Present(c)) = (&s.parent, &s.child) {
        cross_chain(p, c, &mut sink);
    }
    let parent = required(s.parent, "parent", &mut sink)
        .and_then(|raw| chain(raw, Side::Parent, top_signer.as_ref(), &mut sink));
    let child = required(s.child, "child", &mut sink)
        .and_then(|raw| chain(raw, Side::Child, top_signer.as_ref(), &mut sink));
    if needs_top_signer && top_signer_absent {
        sink.push(
            "signer",
            "missing: add a [signer] table (backend = \"pkcs11\" or \"aws-kms\"), or a \
             `signer = { … }` in both [parent] and [child]",
        );
    }
    if !sink.problems.is_empty() {
        return None;
    }
    Some(AgentConfig {
        agent: agent?,
        http: http?,
        log: log?,
        recovery: recovery?,
        parent: parent?,
        child: child?,
        store: store?,
    })
}

fn required<T>(s: Section<T>, name: &str, sink: &mut Sink<'_>) -> Option<T> {
    match s {
        Section::Present(v) => Some(v),
        Section::Invalid => None,
        Section::Absent => {
            sink.push(name, format!("missing: the [{name}] table is required"));
            None
        }
    }
}

fn optional<T: Default>(s: Section<T>) -> Option<T> {
    match s {
        Section::Present(v) => Some(v),
        Section::Invalid => None,
        Section::Absent => Some(T::default()),
    }
}

fn agent(a: AgentSection, sink: &mut Sink<'_>) -> Option<AgentSettings> {
    let before = sink.count();
    if a.data_dir.as_os_str().is_empty() {
        sink.push(
            "agent.data_dir",
            "must not be empty: name the directory for this operator's store and journals",
        );
    } else if a.data_dir.exists() && !a.data_dir.is_dir() {
        sink.push(
            "agent.data_dir",
            format!("{} exists and is not a directory", a.data_dir.display()),
        );
    }
    if a.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        sink.push("agent.name", "must not be blank; remove it or give a label");
    }
    (sink.count() == before).then_some(AgentSettings {
        data_dir: a.data_dir,
        name: a.name,
    })
}

fn http(h: HttpSection, sink: &mut Sink<'_>) -> Option<HttpConfig> {
    match h.listen.parse::<SocketAddr>() {
        Ok(listen) => Some(HttpConfig { listen }),
        Err(e) => {
            sink.push(
                "http.listen",
                format!(
                    "{:?} is not IP:PORT (e.g. \"127.0.0.1:9100\"): {e}",
                    h.listen
                ),
            );
            None
        }
    }
}

fn log(l: LogSection, sink: &mut Sink<'_>) -> Option<LogConfig> {
    if l.level.trim().is_empty() {
        sink.push("log.level", "must not be empty (e.g. \"info\")");
        return None;
    }
    match tracing_subscriber::EnvFilter::builder().parse(&l.level) {
        Ok(_) => Some(LogConfig {
            format: l.format,
            level: l.level,
        }),
        Err(e) => {
            sink.push(
                "log.level",
                format!(
                    "not a tracing filter directive ({e}); e.g. \"info\" or \
                     \"info,bridge_agent=debug\""
                ),
            );
            None
        }
    }
}

fn recovery(r: RecoverySection, sink: &mut Sink<'_>) -> Option<RecoveryConfig> {
    let before = sink.count();
    if r.interval_secs == 0 {
        sink.push("recovery.interval_secs", "must be at least 1");
    }
    if r.window_blocks == 0 {
        sink.push("recovery.window_blocks", "must be at least 1");
    }
    (sink.count() == before).then(|| RecoveryConfig {
        interval: Duration::from_secs(r.interval_secs),
        window_blocks: r.window_blocks,
    })
}

/// Longest lease `[store] lease_ttl_secs` accepts: a leader that died holds the operator's
/// votes back for up to this long.
const MAX_LEASE_TTL_SECS: u64 = 300;

/// `[store]`. The URL is not read here (it is read when the database is opened, so that no
/// config value holds the password) and never echoed.
fn store(st: StoreSection, sink: &mut Sink<'_>) -> Option<StoreConfig> {
    let before = sink.count();
    if let Some(ttl) = st.lease_ttl_secs
        && !(1..=MAX_LEASE_TTL_SECS).contains(&ttl)
    {
        sink.push(
            "store.lease_ttl_secs",
            format!("{ttl} is not in 1..={MAX_LEASE_TTL_SECS} (seconds)"),
        );
    }
    if st
        .lease_name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty())
    {
        sink.push(
            "store.lease_name",
            "must not be blank; remove it (default \"bridge-agent\") or name the operator",
        );
    }
    let backend = match st.backend {
        StoreBackendName::Sqlite => {
            for (key, given) in [
                ("url", st.url.is_some()),
                ("tls", st.tls.is_some()),
                ("ca_file", st.ca_file.is_some()),
                ("lease_ttl_secs", st.lease_ttl_secs.is_some()),
                ("lease_name", st.lease_name.is_some()),
            ] {
                if given {
                    sink.push(
                        format!("store.{key}"),
                        "only used with backend = \"postgres\" (the SQLite store has no \
                         server and no replicas); remove it, or set backend = \"postgres\"",
                    );
                }
            }
            Some(StoreBackend::Sqlite)
        }
        StoreBackendName::Postgres => {
            let url = match st.url {
                None => {
                    sink.push(
                        "store.url",
                        "missing: backend = \"postgres\" needs url = { env = \"VAR\" } or \
                         url = { file = \"PATH\" } (holding the postgres:// URL)",
                    );
                    None
                }
                Some(UrlSource::Inline(_)) => {
                    sink.push(
                        "store.url",
                        "a database URL holds its password and is never written in the config \
                         file (not shown here): use url = { env = \"VAR\" } (an environment \
                         variable holding it) or url = { file = \"PATH\" } (a chmod-600 file)",
                    );
                    None
                }
                Some(UrlSource::Env(var)) if var.trim().is_empty() => {
                    sink.push("store.url.env", "must name an environment variable");
                    None
                }
                Some(UrlSource::Env(var)) => {
                    // Like the PIN: `config check` and start-up say at once when it is missing
                    // (its value is read, and never shown, when the database is opened).
                    if sink.secrets == Secrets::Check
                        && std::env::var_os(&var).is_none_or(|v| v.is_empty())
                    {
                        sink.push(
                            "store.url.env",
                            format!(
                                "environment variable {var} is not set or empty; export it \
                                 with the postgres:// URL before starting the agent"
                            ),
                        );
                    }
                    Some(DbUrlSource::Env(var))
                }
                Some(UrlSource::File(path)) if path.as_os_str().is_empty() => {
                    sink.push("store.url.file", "must name a file");
                    None
                }
                Some(UrlSource::File(path)) => {
                    if sink.secrets == Secrets::Check
                        && let Err(e) = std::fs::File::open(&path)
                    {
                        sink.push(
                            "store.url.file",
                            format!(
                                "cannot read {}: {e}; create it with the postgres:// URL on one \
                                 line, chmod 600",
                                path.display()
                            ),
                        );
                    }
                    Some(DbUrlSource::File(path))
                }
            };
            let tls = st.tls.unwrap_or_default();
            if tls == StoreTls::Disable && st.ca_file.is_some() {
                sink.push(
                    "store.ca_file",
                    "only used with tls = \"verify-full\"; remove it, or verify the server",
                );
            }
            url.map(|url| {
                StoreBackend::Postgres(PgSettings {
                    url,
                    tls,
                    ca_file: st.ca_file,
                })
            })
        }
    };
    (sink.count() == before).then(|| StoreConfig {
        backend: backend.expect("no problem means a backend"),
        lease_ttl: st
            .lease_ttl_secs
            .map_or(DEFAULT_LEASE_TTL, Duration::from_secs),
        lease_name: st
            .lease_name
            .unwrap_or_else(|| DEFAULT_LEASE_NAME.to_owned()),
    })
}

/// The signer crate's own checks, plus: the PIN can actually be read now.
fn signer(c: &SignerConfig, path: &str, sink: &mut Sink<'_>) {
    if let Err(e) = c.validate(path) {
        for p in e.problems {
            sink.push(p.path, p.message);
        }
    }
    if let Some(pin) = c.pin()
        && sink.secrets == Secrets::Check
        && let Err(e) = pin.load()
    {
        let (at, hint) = match pin {
            PinSource::Env(_) => (
                format!("{path}.pin.env"),
                "export it (holding the token's user PIN) before starting the agent",
            ),
            PinSource::File(_) => (
                format!("{path}.pin.file"),
                "create it with the token's user PIN on one line, chmod 600",
            ),
        };
        sink.push(at, format!("{e}; {hint}"));
    }
}

fn chain(
    raw: ChainSection,
    side: Side,
    top_signer: Option<&SignerConfig>,
    sink: &mut Sink<'_>,
) -> Option<ChainConfig> {
    let before = sink.count();
    let p = side.as_str();
    if raw.chain_id == 0 {
        sink.push(format!("{p}.chain_id"), "must not be 0");
    }
    if raw.rpc.is_empty() {
        sink.push(
            format!("{p}.rpc"),
            "needs at least one endpoint, e.g. rpc = [\"http://127.0.0.1:8545\"]",
        );
    }
    let mut rpc = Vec::new();
    for (i, src) in raw.rpc.iter().enumerate() {
        let at = format!("{p}.rpc[{i}]");
        if let Some(url) = endpoint(src, &at, &["http", "https"], sink) {
            if let Some(j) = rpc.iter().position(|u: &Endpoint| u == &url) {
                sink.push(
                    at,
                    format!("the same endpoint as {p}.rpc[{j}]; list each once"),
                );
            } else {
                rpc.push(url);
            }
        }
    }
    let ws = raw
        .ws
        .as_ref()
        .and_then(|src| endpoint(src, &format!("{p}.ws"), &["ws", "wss"], sink));
    let bridge = address(&raw.bridge, &format!("{p}.bridge"), sink);
    let dialect = match raw
        .dialect
        .as_deref()
        .map(str::parse::<crate::dialect::Dialect>)
    {
        Some(Err(why)) => {
            sink.push(format!("{p}.dialect"), why);
            None
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    if raw.poll_interval_ms == 0 {
        sink.push(format!("{p}.poll_interval_ms"), "must be at least 1");
    }
    if raw.rpc_timeout_ms == 0 {
        sink.push(format!("{p}.rpc_timeout_ms"), "must be at least 1");
    }
    if raw.wedged_after_secs == 0 {
        sink.push(format!("{p}.wedged_after_secs"), "must be at least 1");
    }
    let min_balance = match parse_coins(&raw.min_balance) {
        Ok(v) => Some(v),
        Err(why) => {
            sink.push(
                format!("{p}.min_balance"),
                format!(
                    "{:?} is not an amount of whole coins ({why}); write a decimal string \
                     such as \"0.5\"",
                    raw.min_balance
                ),
            );
            None
        }
    };
    if raw.rpc_requests_per_second > MAX_RPC_REQUESTS_PER_SECOND {
        sink.push(
            format!("{p}.rpc_requests_per_second"),
            format!(
                "{} is more than {MAX_RPC_REQUESTS_PER_SECOND}; use 0 for no budget",
                raw.rpc_requests_per_second
            ),
        );
    }
    let fees = fees(&raw.fees, &format!("{p}.fees"), sink);
    let signer = match &raw.signer {
        Some(own) => {
            let n = sink.count();
            signer(own, &format!("{p}.signer"), sink);
            (sink.count() == n).then(|| own.clone())
        }
        None => top_signer.cloned(),
    };
    if sink.count() != before {
        return None;
    }
    Some(ChainConfig {
        chain_id: raw.chain_id,
        rpc,
        ws,
        bridge: bridge?,
        deploy_block: raw.deploy_block,
        confirmations: raw.confirmations,
        poll_interval: Duration::from_millis(raw.poll_interval_ms),
        standby_delay: Duration::from_millis(raw.standby_delay_ms),
        wedged_after: Duration::from_secs(raw.wedged_after_secs),
        rpc_timeout: Duration::from_millis(raw.rpc_timeout_ms),
        min_balance: min_balance?,
        fees: fees?,
        signer: signer?,
        dialect,
        rpc_requests_per_second: raw.rpc_requests_per_second,
    })
}

/// Above this a budget protects nothing (and is likely a typo); 0 says "no budget".
const MAX_RPC_REQUESTS_PER_SECOND: u32 = 100_000;

fn fees(f: &FeeSection, p: &str, sink: &mut Sink<'_>) -> Option<FeePolicy> {
    let before = sink.count();
    if f.max_fee_gwei == 0 {
        sink.push(format!("{p}.max_fee_gwei"), "must be at least 1");
    }
    if f.mode == FeeMode::Eip1559 && f.priority_fee_gwei > f.max_fee_gwei {
        sink.push(
            format!("{p}.max_fee_gwei"),
            format!(
                "{} is below priority_fee_gwei ({}); the cap must cover the tip: raise \
                 max_fee_gwei or lower priority_fee_gwei",
                f.max_fee_gwei, f.priority_fee_gwei
            ),
        );
    }
    match (f.mode, f.gas_price_gwei) {
        (FeeMode::Eip1559, Some(_)) => sink.push(
            format!("{p}.gas_price_gwei"),
            "only used with mode = \"legacy\"; remove it, or set mode = \"legacy\"",
        ),
        (FeeMode::Legacy, Some(g)) if g > f.max_fee_gwei => sink.push(
            format!("{p}.gas_price_gwei"),
            format!("{g} is above max_fee_gwei ({}), the cap", f.max_fee_gwei),
        ),
        (FeeMode::Legacy, Some(0)) => {
            sink.push(format!("{p}.gas_price_gwei"), "must be at least 1")
        }
        _ => {}
    }
    if f.bump_after_secs == 0 {
        sink.push(format!("{p}.bump_after_secs"), "must be at least 1");
    }
    if f.bump_percent < 10 {
        sink.push(
            format!("{p}.bump_percent"),
            format!(
                "{} is below 10: nodes refuse a replacement that raises the fees by less than \
                 10 %",
                f.bump_percent
            ),
        );
    }
    (sink.count() == before).then(|| FeePolicy {
        mode: f.mode,
        max_fee_per_gas: u128::from(f.max_fee_gwei) * GWEI,
        priority_fee_per_gas: u128::from(f.priority_fee_gwei) * GWEI,
        gas_price: f.gas_price_gwei.map(|g| u128::from(g) * GWEI),
        bump_after: Duration::from_secs(f.bump_after_secs),
        bump_percent: f.bump_percent,
        max_bumps: f.max_bumps,
    })
}

/// Checks between the two chains, on the tables as written so that they run even when a chain
/// has problems of its own. Endpoints from env/file are not compared.
fn cross_chain(parent: &ChainSection, child: &ChainSection, sink: &mut Sink<'_>) {
    let inline = |src: &UrlSource| match src {
        UrlSource::Inline(s) => Url::parse(s).ok(),
        _ => None,
    };
    let parent_rpc: Vec<Option<Url>> = parent.rpc.iter().map(inline).collect();
    for (i, url) in child.rpc.iter().map(inline).enumerate() {
        if let Some(url) = url
            && let Some(j) = parent_rpc.iter().position(|u| u.as_ref() == Some(&url))
        {
            sink.push(
                format!("child.rpc[{i}]"),
                format!("the same endpoint as parent.rpc[{j}]; a node serves one chain"),
            );
        }
    }
    if let (Some(p), Some(c)) = (
        parent.ws.as_ref().and_then(inline),
        child.ws.as_ref().and_then(inline),
    ) && p == c
    {
        sink.push(
            "child.ws",
            "the same endpoint as parent.ws; a node serves one chain",
        );
    }
}

/// Resolves and checks one endpoint URL. Messages never echo the URL beyond scheme and host.
fn endpoint(src: &UrlSource, at: &str, schemes: &[&str], sink: &mut Sink<'_>) -> Option<Endpoint> {
    let (text, inline) = match src {
        UrlSource::Inline(s) => (s.clone(), true),
        UrlSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => (v.trim().to_owned(), false),
            Ok(_) => {
                sink.push(
                    format!("{at}.env"),
                    format!("environment variable {var} is empty"),
                );
                return None;
            }
            Err(_) => {
                sink.push(
                    format!("{at}.env"),
                    format!("environment variable {var} is not set; export it with the URL"),
                );
                return None;
            }
        },
        UrlSource::File(path) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => (v.trim().to_owned(), false),
            Ok(_) => {
                sink.push(format!("{at}.file"), format!("{} is empty", path.display()));
                return None;
            }
            Err(e) => {
                sink.push(
                    format!("{at}.file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        },
    };
    let want = schemes.join("://, ") + "://";
    let url = match Url::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            sink.push(
                at,
                format!("not a URL ({e}); expected {want}HOST[:PORT][/PATH]"),
            );
            return None;
        }
    };
    let shown = super::endpoint::redact(&url);
    if !schemes.contains(&url.scheme()) {
        sink.push(at, format!("{shown}: the scheme must be {want}"));
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        sink.push(at, format!("{shown}: no host"));
        return None;
    }
    if inline && (!url.username().is_empty() || url.password().is_some()) {
        sink.push(
            at,
            format!(
                "{shown}: carries credentials (user:password@), which must not be written in \
                 the config; give this endpoint as {{ env = \"VAR\" }} or {{ file = \"PATH\" }}"
            ),
        );
        return None;
    }
    Some(Endpoint::new(url))
}

fn address(s: &str, at: &str, sink: &mut Sink<'_>) -> Option<Address> {
    let hex = s.strip_prefix("0x").unwrap_or_default();
    if !s.starts_with("0x") || hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        sink.push(
            at,
            format!("{s:?} is not an address (0x and 40 hex digits)"),
        );
        return None;
    }
    let mixed =
        hex.chars().any(|c| c.is_ascii_uppercase()) && hex.chars().any(|c| c.is_ascii_lowercase());
    let parsed = if mixed {
        Address::parse_checksummed(s, None).map_err(|_| ())
    } else {
        s.parse::<Address>().map_err(|_| ())
    };
    match parsed {
        Ok(a) if a.is_zero() => {
            sink.push(at, "is the zero address; give this chain's Bridge contract");
            None
        }
        Ok(a) => Some(a),
        Err(()) => {
            sink.push(
                at,
                format!(
                    "{s:?} has a wrong EIP-55 checksum; check for a typo, or write it in lower case"
                ),
            );
            None
        }
    }
}

/// Whole coins as a decimal string (`"0.5"`, `"2"`, `"1.000000000000000001"`) → wei.
pub(crate) fn parse_coins(s: &str) -> Result<U256, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("empty".into());
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err("only digits and one '.' are allowed".into());
    }
    if frac.len() > 18 {
        return Err("more than 18 decimals".into());
    }
    let digits = format!("{int}{frac:0<18}");
    U256::from_str_radix(&digits, 10).map_err(|_| "too large".into())
}
