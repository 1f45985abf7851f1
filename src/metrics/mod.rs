//! The agent's metrics: a `prometheus-client` registry rendered as Prometheus text at
//! `/metrics`, and the readiness rules `/readyz` applies to the same numbers.
//!
//! ```text
//!  tx manager, planner, watcher, direction loop, auditor, chain client (reachability)
//!      └─ handles (Counter / Gauge: one sample each of a registered family) ── inc(), set()
//!                                                                              │
//!  ChainClient::stats, signer health, guard counters,                          ▼
//!  bridge checks ── read at scrape time ──► Encoder ──────────────► render() (registry first)
//!                                                                   not_ready() ◄── same values
//! ```
//!
//! Components hold handles and count where the event happens. One copy remains: the operator
//! balance and wedged state of the key in use are published every 2 s (`agent::balance_loop`),
//! because a tx manager replaced by a key switch lives on until its last vote is tracked and
//! must not overwrite the new key's values. A family whose
//! labels are known (direction, chain, reason) has every sample created at registration, so it
//! is described and at 0 before its first event. What other crates or components keep in their
//! own state (per-endpoint RPC stats, signer health, guard decisions, the bridge check's
//! verdict) is read when scraped, through sources registered once.
//!
//! ```ignore
//! let metrics = Arc::new(AgentMetrics::new());
//! client.report_reach_to(metrics.chain(Side::Parent).reachability());
//! let txm_config = TxManagerConfig { metrics: metrics.chain_handle(Side::Child), .. };
//! metrics.register_chain_client(Side::Parent, parent.clone());
//! metrics.register_signer(Side::Child, { let s = signer.clone(); move || s.health().map(Health::snapshot) });
//! metrics.direction(Direction::ParentToChild).votes_mined.inc();
//! metrics.set_direction_running(Direction::ParentToChild);
//! ```
//!
//! Label values come from fixed names, except the RPC endpoint label, which is always re-redacted
//! here (see [`endpoint_label`]) whatever the source hands over: no API key reaches a scrape.

mod bridges;
pub mod exposition;
mod families;
mod handles;
mod readiness;
mod role;

pub use bridges::BridgeState;
pub use exposition::CONTENT_TYPE;
pub use families::{ChainMetrics, DirectionMetrics, Reachability, ReplicaMetrics, SkipReason};
pub use handles::{Counter, FloatGauge, Gauge};
pub use readiness::{NotReady, Readiness};
pub use role::Role;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use alloy::primitives::U256;
use bridge_signer::guard::GuardCounters;
use bridge_signer::health::{HealthSnapshot, HealthState, LATENCY_BUCKETS_SECONDS};
use prometheus_client::registry::Registry;

use crate::chain::{ChainClient, ChainStats, SensitiveUrl};
use crate::config::Side;
use crate::direction::Direction;
use exposition::{Encoder, HistogramSample, Kind, Sample, Value};

/// Where a direction's loop is; only `Running` is ready.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DirectionState {
    /// Not yet past start-up (chain-id check, start-up recovery).
    #[default]
    Starting,
    Running,
    /// Stopped until an operator acts; the reason is shown on `/readyz`, so it must hold no
    /// secret (write it as you would a log line).
    Halted(String),
}

/// A copy of a guard's [`GuardCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub signed: u64,
    pub same_vote: u64,
    pub refused: u64,
    pub conflicting: u64,
}

impl From<&GuardCounters> for GuardStats {
    fn from(c: &GuardCounters) -> Self {
        Self {
            signed: c.signed(),
            same_vote: c.same_vote(),
            refused: c.refused(),
            conflicting: c.conflicting(),
        }
    }
}

type ChainSource = Box<dyn Fn() -> ChainStats + Send + Sync>;
type SignerSource = Box<dyn Fn() -> Option<HealthSnapshot> + Send + Sync>;
type GuardSource = Box<dyn Fn() -> GuardStats + Send + Sync>;

#[derive(Default)]
struct Sources {
    chains: [Option<ChainSource>; 2],
    signers: [Option<SignerSource>; 2],
    guards: [Option<GuardSource>; 2],
}

/// The registry: create one per process, share it as `Arc<AgentMetrics>`.
pub struct AgentMetrics {
    /// The families behind every handle below.
    registry: Registry,
    directions: [DirectionMetrics; 2],
    /// Shared (`chain_handle`) with the tx managers and planners that count into them, so
    /// counts outlive a tx manager replaced by a key switch.
    chains: [Arc<ChainMetrics>; 2],
    /// Each direction's loop state (its `bridge_direction_halted` handle follows it).
    states: [Mutex<DirectionState>; 2],
    sources: RwLock<Sources>,
    /// What the last bridge check found per chain (`bridge_check::watch`).
    bridges: [Mutex<BridgeState>; 2],
    /// The replica's handles (`agent/replica.rs`).
    replica: ReplicaMetrics,
    /// This process's role among its operator's replicas (`/readyz`'s role line).
    role: Mutex<Role>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMetrics")
            .field("directions", &self.directions)
            .field("chains", &self.chains)
            .finish_non_exhaustive()
    }
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::ParentToChild => 0,
        Direction::ChildToParent => 1,
    }
}

fn side_index(s: Side) -> usize {
    match s {
        Side::Parent => 0,
        Side::Child => 1,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AgentMetrics {
    /// Every family registered, every direction `Starting`, every chain's reachability
    /// unknown: not ready until told.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut r = handles::Registrar(&mut registry);
        r.gauge("bridge_agent_info", "Agent build information (always 1).")
            .handle(vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        let directions = families::DirectionFamilies::register(&mut r);
        let chains = families::ChainFamilies::register(&mut r);
        let replica = ReplicaMetrics::register(&mut r);
        // One process without replicas leads; a replica says otherwise before its first tick.
        replica.leading.set(1);
        Self {
            directions: Direction::ALL.map(|d| directions.handles(d)),
            chains: Side::ALL.map(|s| Arc::new(chains.handles(s))),
            registry,
            states: Default::default(),
            sources: RwLock::default(),
            bridges: Default::default(),
            replica,
            role: Mutex::default(),
        }
    }

    /// The replica's handles, for the lease loop that counts into them.
    pub fn replica(&self) -> &ReplicaMetrics {
        &self.replica
    }

    /// This process's role among its operator's replicas (`/readyz`, `status`).
    pub fn set_role(&self, role: Role) {
        *lock(&self.role) = role;
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn direction(&self, d: Direction) -> &DirectionMetrics {
        &self.directions[dir_index(d)]
    }

    pub fn chain(&self, side: Side) -> &ChainMetrics {
        &self.chains[side_index(side)]
    }

    /// The chain's handles, for a component that counts into them (the tx manager, the
    /// planner's revert classification).
    pub fn chain_handle(&self, side: Side) -> Arc<ChainMetrics> {
        Arc::clone(&self.chains[side_index(side)])
    }

    // ---- state the readiness check reads ----

    /// The direction's loop is past start-up and working.
    pub fn set_direction_running(&self, d: Direction) {
        *lock(&self.states[dir_index(d)]) = DirectionState::Running;
        self.direction(d).halted.set(0);
    }

    /// The direction stopped until an operator acts. `reason` is served on `/readyz`.
    pub fn halt_direction(&self, d: Direction, reason: impl Into<String>) {
        *lock(&self.states[dir_index(d)]) = DirectionState::Halted(reason.into());
        self.direction(d).halted.set(1);
    }

    pub fn direction_state(&self, d: Direction) -> DirectionState {
        lock(&self.states[dir_index(d)]).clone()
    }

    /// The operator's balance on `side`, and whether it is below the configured alarm level.
    pub fn set_balance(&self, side: Side, wei: U256, low: bool) {
        let c = self.chain(side);
        c.balance_wei.set(f64::from(wei));
        c.low_balance.set(u64::from(low));
    }

    /// The sender on `side` is wedged at `nonce` since `since_unix` (seconds), or not (`None`).
    pub fn set_wedged(&self, side: Side, wedged: Option<(u64, u64)>) {
        let c = self.chain(side);
        let (nonce, since) = wedged.map_or((0, 0), |(n, s)| (n, s.max(1)));
        c.wedged_nonce.store(nonce, Ordering::Relaxed);
        c.wedged_since.set(since);
        c.wedged.set(u64::from(since != 0));
    }

    /// The nonce and since-when of a wedged sender on `side`.
    pub fn wedged(&self, side: Side) -> Option<(u64, u64)> {
        let c = self.chain(side);
        let since = c.wedged_since.get();
        (since != 0).then(|| (c.wedged_nonce.load(Ordering::Relaxed), since))
    }

    pub fn low_balance(&self, side: Side) -> bool {
        self.chain(side).low_balance.get() != 0
    }

    /// Whether the last attempt to reach the chain (any endpoint) succeeded: what the chain
    /// client reporting to [`ChainMetrics::reachability`] does on each call.
    pub fn set_chain_reachable(&self, side: Side, reachable: bool) {
        self.chain(side).reachability().set(reachable);
    }

    /// What the last bridge check found on `side` (served on `/readyz` and `/metrics`).
    pub fn set_bridge(&self, side: Side, state: BridgeState) {
        *lock(&self.bridges[side_index(side)]) = state;
    }

    pub fn bridge(&self, side: Side) -> BridgeState {
        lock(&self.bridges[side_index(side)]).clone()
    }

    // ---- sources read at scrape time ----
    //
    // A source runs on the scraping task under the registry's read lock: it must be quick and
    // must not call back into the registry.

    /// Per-endpoint RPC counters of `side`'s chain.
    pub fn register_chain(&self, side: Side, f: impl Fn() -> ChainStats + Send + Sync + 'static) {
        self.sources_mut().chains[side_index(side)] = Some(Box::new(f));
    }

    /// [`AgentMetrics::register_chain`] with [`ChainClient::stats`].
    pub fn register_chain_client(&self, side: Side, client: ChainClient) {
        self.register_chain(side, move || client.stats());
    }

    /// Health of the signer that signs votes for `side`'s chain (`None`: the backend keeps
    /// none). With one backend for both chains, register it under both sides.
    pub fn register_signer(
        &self,
        side: Side,
        f: impl Fn() -> Option<HealthSnapshot> + Send + Sync + 'static,
    ) {
        self.sources_mut().signers[side_index(side)] = Some(Box::new(f));
    }

    /// Counters of the guard that signs votes for `side`'s chain.
    pub fn register_guard(&self, side: Side, f: impl Fn() -> GuardStats + Send + Sync + 'static) {
        self.sources_mut().guards[side_index(side)] = Some(Box::new(f));
    }

    fn sources_mut(&self) -> std::sync::RwLockWriteGuard<'_, Sources> {
        self.sources.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn sources(&self) -> std::sync::RwLockReadGuard<'_, Sources> {
        self.sources.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn signer_snapshots(&self) -> [Option<HealthSnapshot>; 2] {
        let sources = self.sources();
        Side::ALL.map(|s| sources.signers[side_index(s)].as_ref().and_then(|f| f()))
    }

    /// Per side: its registered chain client says most calls are rate-limited.
    fn chains_degraded(&self) -> [bool; 2] {
        let sources = self.sources();
        Side::ALL.map(|s| {
            sources.chains[side_index(s)]
                .as_ref()
                .is_some_and(|f| f().degraded)
        })
    }

    /// Everything that keeps the agent from being ready; empty when ready.
    pub fn not_ready(&self) -> Vec<NotReady> {
        let mut out = Vec::new();
        for d in Direction::ALL {
            match self.direction_state(d) {
                DirectionState::Running => {}
                DirectionState::Starting => out.push(NotReady::DirectionStarting(d)),
                DirectionState::Halted(reason) => {
                    out.push(NotReady::DirectionHalted {
                        direction: d,
                        reason,
                    });
                }
            }
        }
        let signers = self.signer_snapshots();
        let degraded = self.chains_degraded();
        for side in Side::ALL {
            if degraded[side_index(side)] {
                out.push(NotReady::ChainDegraded(side));
            }
            match self.chain(side).reachability().get() {
                Some(true) => {}
                None => out.push(NotReady::ChainNotYetReached(side)),
                Some(false) => out.push(NotReady::ChainUnreachable(side)),
            }
            match self.bridge(side) {
                BridgeState::Refused(reason) => {
                    out.push(NotReady::BridgeNotVerified { side, reason });
                }
                BridgeState::NotSeated { message, .. } => {
                    out.push(NotReady::KeyNotSeated {
                        side,
                        reason: message,
                    });
                }
                BridgeState::Unchecked | BridgeState::Verified(_) => {}
            }
            if self.low_balance(side) {
                out.push(NotReady::LowBalance(side));
            }
            if let Some((nonce, since_unix)) = self.wedged(side) {
                out.push(NotReady::SenderWedged {
                    side,
                    nonce,
                    since_unix,
                });
            }
            if signers[side_index(side)]
                .as_ref()
                .is_some_and(|h| h.state == HealthState::Unusable)
            {
                out.push(NotReady::SignerUnusable(side));
            }
        }
        out
    }

    /// The Prometheus text exposition of every metric ([`CONTENT_TYPE`]): the registry's
    /// families, then those read from their sources now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        let mut e = Encoder::new();
        e.family(
            "bridge_ready",
            "1 when /readyz answers 200.",
            Kind::Gauge,
            &[(vec![], self.not_ready().is_empty().into())],
        );
        self.render_rpc(&mut e);
        self.render_signers(&mut e);
        bridges::render(&mut e, &Side::ALL.map(|s| (s, self.bridge(s))));
        out.push_str(&e.finish());
        out
    }

    /// RPC endpoints, read from the registered chain clients.
    fn render_rpc(&self, e: &mut Encoder) {
        let stats: Vec<(Side, ChainStats)> = {
            let sources = self.sources();
            Side::ALL
                .iter()
                .filter_map(|&s| sources.chains[side_index(s)].as_ref().map(|f| (s, f())))
                .collect()
        };
        let labels: Vec<Vec<(Side, String, String)>> = stats
            .iter()
            .map(|(s, cs)| {
                cs.endpoints
                    .iter()
                    .map(|ep| (*s, ep.index.to_string(), endpoint_label(&ep.url)))
                    .collect()
            })
            .collect();
        let failovers: Vec<Sample<'_>> = stats
            .iter()
            .map(|(s, cs)| (vec![("chain", s.as_str())], cs.failovers.into()))
            .collect();
        e.family(
            "bridge_rpc_failovers_total",
            "Calls that moved from one RPC endpoint to the next.",
            Kind::Counter,
            &failovers,
        );
        let per_chain_stat = |get: &dyn Fn(&ChainStats) -> Value| -> Vec<Sample<'_>> {
            stats
                .iter()
                .map(|(s, cs)| (vec![("chain", s.as_str())], get(cs)))
                .collect()
        };
        e.family(
            "bridge_rpc_rate_limited_total",
            "RPC attempts refused with a rate limit (HTTP 429, JSON-RPC -32005, ...), all endpoints.",
            Kind::Counter,
            &per_chain_stat(&|cs| cs.rate_limited.into()),
        );
        e.family(
            "bridge_rpc_log_window_blocks",
            "Blocks one eth_getLogs spans at most now: the configured window, narrowed while the provider refuses wider queries.",
            Kind::Gauge,
            &per_chain_stat(&|cs| cs.logs.window.into()),
        );
        e.family(
            "bridge_rpc_log_caps_total",
            "eth_getLogs refused by the provider as too wide or too many results, each asked again narrower (not an endpoint fault).",
            Kind::Counter,
            &per_chain_stat(&|cs| cs.logs.caps.into()),
        );
        e.family(
            "bridge_rpc_log_overflows_total",
            "Single blocks whose logs alone exceed the provider's result cap: reading stops before them until an endpoint serves them.",
            Kind::Counter,
            &per_chain_stat(&|cs| cs.logs.overflows.into()),
        );
        e.family(
            "bridge_rpc_degraded",
            "1 while most recent RPC attempts on the chain are rate-limited (also on /readyz).",
            Kind::Gauge,
            &per_chain_stat(&|cs| cs.degraded.into()),
        );
        type EpGet<'a> = &'a dyn Fn(&crate::chain::EndpointStats) -> Value;
        let endpoint_families: [(&str, &str, Kind, EpGet<'_>); 6] = [
            (
                "bridge_rpc_requests_total",
                "Calls made on the RPC endpoint.",
                Kind::Counter,
                &|ep| ep.requests.into(),
            ),
            (
                "bridge_rpc_errors_total",
                "Transport failures and invalid responses of the RPC endpoint (timeouts apart).",
                Kind::Counter,
                &|ep| ep.errors.into(),
            ),
            (
                "bridge_rpc_timeouts_total",
                "Calls on the RPC endpoint that timed out.",
                Kind::Counter,
                &|ep| ep.timeouts.into(),
            ),
            (
                "bridge_rpc_json_errors_total",
                "JSON-RPC error answers (revert, nonce too low, ...): the endpoint works.",
                Kind::Counter,
                &|ep| ep.rpc_errors.into(),
            ),
            (
                "bridge_rpc_endpoint_score",
                "Health score of the RPC endpoint (higher is healthier).",
                Kind::Gauge,
                &|ep| u64::from(ep.score).into(),
            ),
            (
                "bridge_rpc_endpoint_cooling_down",
                "1 while the RPC endpoint is in its failure cool-down.",
                Kind::Gauge,
                &|ep| ep.cooling_down.into(),
            ),
        ];
        for (name, help, kind, get) in endpoint_families {
            let mut samples: Vec<Sample<'_>> = Vec::new();
            for ((_, cs), labels) in stats.iter().zip(&labels) {
                for (ep, (side, index, url)) in cs.endpoints.iter().zip(labels) {
                    samples.push((
                        vec![
                            ("chain", side.as_str()),
                            ("index", index.as_str()),
                            ("endpoint", url.as_str()),
                        ],
                        get(ep),
                    ));
                }
            }
            e.family(name, help, kind, &samples);
        }
    }

    fn render_signers(&self, e: &mut Encoder) {
        let health = self.signer_snapshots();
        let with_health: Vec<(Side, &HealthSnapshot)> = Side::ALL
            .iter()
            .filter_map(|&s| health[side_index(s)].as_ref().map(|h| (s, h)))
            .collect();
        let state: Vec<Sample<'_>> = with_health
            .iter()
            .map(|(s, h)| {
                let v: u64 = match h.state {
                    HealthState::Usable => 0,
                    HealthState::Degraded => 1,
                    HealthState::Unusable => 2,
                };
                (vec![("chain", s.as_str())], v.into())
            })
            .collect();
        e.family(
            "bridge_signer_state",
            "Signer state: 0 usable, 1 degraded (transient errors), 2 unusable (operator must act).",
            Kind::Gauge,
            &state,
        );
        let signatures: Vec<Sample<'_>> = with_health
            .iter()
            .map(|(s, h)| (vec![("chain", s.as_str())], h.signatures.into()))
            .collect();
        e.family(
            "bridge_signer_signatures_total",
            "Signatures returned by the signer.",
            Kind::Counter,
            &signatures,
        );
        let mut errors: Vec<Sample<'_>> = Vec::new();
        for (s, h) in &with_health {
            errors.push((
                vec![("chain", s.as_str()), ("kind", "transient")],
                h.transient_errors.into(),
            ));
            errors.push((
                vec![("chain", s.as_str()), ("kind", "permanent")],
                h.permanent_errors.into(),
            ));
        }
        e.family(
            "bridge_signer_errors_total",
            "Signer failures: transient (each failed attempt) or permanent.",
            Kind::Counter,
            &errors,
        );
        let retries: Vec<Sample<'_>> = with_health
            .iter()
            .map(|(s, h)| (vec![("chain", s.as_str())], h.retries.into()))
            .collect();
        e.family(
            "bridge_signer_retries_total",
            "Retries after transient signer failures.",
            Kind::Counter,
            &retries,
        );
        let latency: Vec<HistogramSample<'_>> = with_health
            .iter()
            .map(|(s, h)| HistogramSample {
                labels: vec![("chain", s.as_str())],
                bounds: &LATENCY_BUCKETS_SECONDS,
                buckets: &h.latency_buckets,
                count: h.latency_count,
                sum: h.latency_sum_seconds,
            })
            .collect();
        e.histogram(
            "bridge_signer_latency_seconds",
            "Time to obtain one signature from the signer.",
            &latency,
        );

        let guards: Vec<(Side, GuardStats)> = {
            let sources = self.sources();
            Side::ALL
                .iter()
                .filter_map(|&s| sources.guards[side_index(s)].as_ref().map(|f| (s, f())))
                .collect()
        };
        type GuardGet = fn(&GuardStats) -> u64;
        let guard_families: [(&str, &str, GuardGet); 4] = [
            (
                "bridge_guard_signed_total",
                "Transactions the guard let through to the signer.",
                |g| g.signed,
            ),
            (
                "bridge_guard_same_vote_total",
                "Re-sends of an identical, already journaled vote.",
                |g| g.same_vote,
            ),
            (
                "bridge_guard_refused_total",
                "Signing requests the guard refused (any reason).",
                |g| g.refused,
            ),
            (
                "bridge_guard_conflicting_votes_refused_total",
                "Votes refused because a different vote for the same nonce is journaled (alarm).",
                |g| g.conflicting,
            ),
        ];
        for (name, help, get) in guard_families {
            let samples: Vec<Sample<'_>> = guards
                .iter()
                .map(|(s, g)| (vec![("chain", s.as_str())], get(g).into()))
                .collect();
            e.family(name, help, Kind::Counter, &samples);
        }
    }
}

/// The label shown for an RPC endpoint: `scheme://host:port/`, with a `[redacted]` marker when
/// userinfo, path or query were dropped. Applied to whatever a chain source reports, even if it
/// claims to be redacted already (redaction is idempotent); text that is no URL is not shown.
pub fn endpoint_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.has_host() => SensitiveUrl::new(u).redacted().to_owned(),
        _ => "[unparsable]".to_owned(),
    }
}
