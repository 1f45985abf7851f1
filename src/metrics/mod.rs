//! The agent's metrics registry, rendered as Prometheus text at `/metrics`, and the readiness
//! rules `/readyz` applies to the same numbers.
//!
//! ```text
//!  watcher / planner / tx manager / recovery ── inc(), set() (relaxed atomics) ──┐
//!                                                                                ▼
//!  ChainClient::stats, Signer health, Guard counters, WatcherStats ──► sources ─► AgentMetrics
//!       (pulled only at scrape time, through registered closures)                 │
//!                                                              render() ◄─────────┤
//!                                                          not_ready() ◄──────────┘
//! ```
//!
//! Tasks hold an `Arc<AgentMetrics>` and update it with plain atomics: no lock on any hot path.
//! What other components already count (per-endpoint RPC stats, signer health, guard decisions,
//! the watcher's counters) is not copied: the run loop registers a closure once and the registry
//! pulls a snapshot when scraped.
//!
//! ```ignore
//! let metrics = Arc::new(AgentMetrics::new());
//! metrics.register_chain_client(Side::Parent, parent.clone());
//! metrics.register_signer(Side::Child, { let s = signer.clone(); move || s.health().map(Health::snapshot) });
//! metrics.register_guard(Side::Child, { let g = guard.clone(); move || GuardStats::from(g.counters()) });
//! metrics.register_watcher(Direction::ParentToChild, watcher.stats());
//! metrics.direction(Direction::ParentToChild).votes_sent.inc();
//! metrics.set_direction_running(Direction::ParentToChild);
//! ```
//!
//! Label values come from fixed names, except the RPC endpoint label, which is always re-redacted
//! here (see [`endpoint_label`]) whatever the source hands over: no API key reaches a scrape.

mod bridges;
pub mod exposition;
mod readiness;

pub use bridges::BridgeState;
pub use exposition::CONTENT_TYPE;
pub use readiness::{NotReady, Readiness};

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use alloy::primitives::U256;
use bridge_signer::guard::GuardCounters;
use bridge_signer::health::{HealthSnapshot, HealthState, LATENCY_BUCKETS_SECONDS};

use crate::chain::{ChainClient, ChainStats, SensitiveUrl};
use crate::config::Side;
use crate::direction::Direction;
use crate::store::UnexecutableReason;
use crate::watcher::WatcherStats;
use exposition::{Encoder, HistogramSample, Kind, Sample, Value};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An integer that goes up and down (a nonce, a queue length).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A float gauge (stored as its bit pattern).
#[derive(Debug, Default)]
pub struct FloatGauge(AtomicU64);

impl FloatGauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

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

/// One direction's numbers. Fields are public: `metrics.direction(d).votes_sent.inc()`.
#[derive(Debug, Default)]
pub struct DirectionMetrics {
    /// Source bridge `requestNonce` (the next request's nonce).
    pub request_nonce: Gauge,
    /// Destination bridge `lowerHandleNonce` (every nonce below it executed).
    pub lower_handle_nonce: Gauge,
    /// Destination bridge `upperHandleNonce` (highest executed).
    pub upper_handle_nonce: Gauge,
    /// Requests seen but not yet executed on the destination.
    pub pending_requests: Gauge,
    /// Vote transactions submitted.
    pub votes_sent: Counter,
    /// Votes that could not be sent or reverted unexpectedly.
    pub votes_failed: Counter,
    /// Requests decoded from source logs (added to a registered [`WatcherStats`]).
    pub requests_seen: Counter,
    /// Request logs that did not decode (added to a registered [`WatcherStats`]).
    pub malformed_logs: Counter,
    /// Halts on a reorg deeper than the confirmation depth.
    pub reorg_halts: Counter,
    /// Recovery checks run.
    pub recoveries: Counter,
    /// Recovery checks that found a stall and rescanned.
    pub recovery_rescans: Counter,
    /// Votes on the destination by an operator for calldata no honest agent would build.
    pub forged_votes_seen: Counter,
    /// Plans that sent nothing, by why (see [`SkipReason`]).
    pub votes_skipped: [Counter; SkipReason::ALL.len()],
    /// Requests recorded in the store as never executable, by [`UnexecutableReason`] (set from
    /// the store, so it survives restarts).
    pub unexecutable_requests: [Gauge; UnexecutableReason::ALL.len()],
    /// Destination seats that voted none of the last many executed nonces (the auditor's).
    pub silent_seats: Gauge,
    state: Mutex<DirectionState>,
}

/// Why a plan sent no vote: the `reason` label of `bridge_votes_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The destination had executed the request.
    Executed,
    /// This operator's vote stands on chain (`voteOf`, or the recorded mined vote).
    AlreadyVoted,
    /// The vote was refused or reverted because the request had just executed.
    Late,
    /// The request can never execute.
    Unexecutable,
}

impl SkipReason {
    pub const ALL: [SkipReason; 4] = [
        SkipReason::Executed,
        SkipReason::AlreadyVoted,
        SkipReason::Late,
        SkipReason::Unexecutable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Executed => "executed",
            SkipReason::AlreadyVoted => "already_voted",
            SkipReason::Late => "late",
            SkipReason::Unexecutable => "unexecutable",
        }
    }
}

impl DirectionMetrics {
    pub fn skipped(&self, reason: SkipReason) -> &Counter {
        &self.votes_skipped[reason as usize]
    }

    pub fn unexecutable(&self, reason: UnexecutableReason) -> &Gauge {
        let i = UnexecutableReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        &self.unexecutable_requests[i]
    }
}

/// Whether a chain answers; `Unknown` until the first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Unknown = 0,
    Reachable = 1,
    Unreachable = 2,
}

/// One chain's numbers (as the destination of votes and the holder of the operator's balance).
#[derive(Debug)]
pub struct ChainMetrics {
    /// Operator balance in wei (a float: precise enough for alarms and graphs).
    pub balance_wei: FloatGauge,
    low_balance: AtomicBool,
    reach: AtomicU8,
    /// Vote transactions broadcast (resends and replacements included).
    pub txs_sent: Counter,
    /// Transactions mined successfully.
    pub txs_mined: Counter,
    /// Transactions mined reverted, for a reason other than "executed already" (an alarm).
    pub txs_reverted: Counter,
    /// Transactions mined reverted because the transfer had executed already (harmless).
    pub txs_reverted_already_executed: Counter,
    /// Fee-bump replacements of stuck transactions.
    pub txs_replaced: Counter,
    /// The tx manager's convergence repairs (see `txmgr/converge.rs`), by kind.
    pub nonce_repairs_resend: Counter,
    pub nonce_repairs_gap_fill: Counter,
    pub nonce_repairs_rebase: Counter,
    /// Times the operator's mined nonce went down (a reorg of this chain orphaned its txs).
    pub nonce_went_down: Counter,
    /// While wedged: the nonce not being mined and since when (Unix seconds); 0 otherwise.
    wedged_nonce: AtomicU64,
    wedged_since: AtomicU64,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        Self {
            balance_wei: FloatGauge::default(),
            low_balance: AtomicBool::new(false),
            reach: AtomicU8::new(Reach::Unknown as u8),
            txs_sent: Counter::default(),
            txs_mined: Counter::default(),
            txs_reverted: Counter::default(),
            txs_reverted_already_executed: Counter::default(),
            txs_replaced: Counter::default(),
            nonce_repairs_resend: Counter::default(),
            nonce_repairs_gap_fill: Counter::default(),
            nonce_repairs_rebase: Counter::default(),
            nonce_went_down: Counter::default(),
            wedged_nonce: AtomicU64::new(0),
            wedged_since: AtomicU64::new(0),
        }
    }
}

impl ChainMetrics {
    fn reach(&self) -> Reach {
        match self.reach.load(Ordering::Relaxed) {
            1 => Reach::Reachable,
            2 => Reach::Unreachable,
            _ => Reach::Unknown,
        }
    }
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
    watchers: [Option<Arc<WatcherStats>>; 2],
}

/// The registry: create one per process, share it as `Arc<AgentMetrics>`.
#[derive(Default)]
pub struct AgentMetrics {
    directions: [DirectionMetrics; 2],
    chains: [ChainMetrics; 2],
    sources: RwLock<Sources>,
    /// What the last bridge check found per chain (`bridge_check::watch`).
    bridges: [Mutex<BridgeState>; 2],
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
    /// Every direction `Starting`, every chain's reachability unknown: not ready until told.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn direction(&self, d: Direction) -> &DirectionMetrics {
        &self.directions[dir_index(d)]
    }

    pub fn chain(&self, side: Side) -> &ChainMetrics {
        &self.chains[side_index(side)]
    }

    // ---- state the readiness check reads ----

    /// The direction's loop is past start-up and working.
    pub fn set_direction_running(&self, d: Direction) {
        *lock(&self.direction(d).state) = DirectionState::Running;
    }

    /// The direction stopped until an operator acts. `reason` is served on `/readyz`.
    pub fn halt_direction(&self, d: Direction, reason: impl Into<String>) {
        *lock(&self.direction(d).state) = DirectionState::Halted(reason.into());
    }

    pub fn direction_state(&self, d: Direction) -> DirectionState {
        lock(&self.direction(d).state).clone()
    }

    /// The operator's balance on `side`, and whether it is below the configured alarm level.
    pub fn set_balance(&self, side: Side, wei: U256, low: bool) {
        let c = self.chain(side);
        c.balance_wei.set(f64::from(wei));
        c.low_balance.store(low, Ordering::Relaxed);
    }

    /// The sender on `side` is wedged at `nonce` since `since_unix` (seconds), or not (`None`).
    pub fn set_wedged(&self, side: Side, wedged: Option<(u64, u64)>) {
        let c = self.chain(side);
        let (nonce, since) = wedged.map_or((0, 0), |(n, s)| (n, s.max(1)));
        c.wedged_nonce.store(nonce, Ordering::Relaxed);
        c.wedged_since.store(since, Ordering::Relaxed);
    }

    /// The nonce and since-when of a wedged sender on `side`.
    pub fn wedged(&self, side: Side) -> Option<(u64, u64)> {
        let c = self.chain(side);
        let since = c.wedged_since.load(Ordering::Relaxed);
        (since != 0).then(|| (c.wedged_nonce.load(Ordering::Relaxed), since))
    }

    pub fn low_balance(&self, side: Side) -> bool {
        self.chain(side).low_balance.load(Ordering::Relaxed)
    }

    /// Whether the last attempt to reach the chain (any endpoint) succeeded.
    pub fn set_chain_reachable(&self, side: Side, reachable: bool) {
        let v = if reachable {
            Reach::Reachable
        } else {
            Reach::Unreachable
        };
        self.chain(side).reach.store(v as u8, Ordering::Relaxed);
    }

    /// What the last bridge check found on `side` (served on `/readyz` and `/metrics`).
    pub fn set_bridge(&self, side: Side, state: BridgeState) {
        *lock(&self.bridges[side_index(side)]) = state;
    }

    pub fn bridge(&self, side: Side) -> BridgeState {
        lock(&self.bridges[side_index(side)]).clone()
    }

    // ---- sources pulled at scrape time ----
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

    /// The watcher's counters for `d`; added to [`DirectionMetrics::requests_seen`] and
    /// [`DirectionMetrics::malformed_logs`].
    pub fn register_watcher(&self, d: Direction, stats: Arc<WatcherStats>) {
        self.sources_mut().watchers[dir_index(d)] = Some(stats);
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
            let c = self.chain(side);
            match c.reach() {
                Reach::Reachable => {}
                Reach::Unknown => out.push(NotReady::ChainNotYetReached(side)),
                Reach::Unreachable => out.push(NotReady::ChainUnreachable(side)),
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
            if c.low_balance.load(Ordering::Relaxed) {
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

    /// The Prometheus text exposition of every metric ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut e = Encoder::new();
        let version = env!("CARGO_PKG_VERSION");
        e.family(
            "bridge_agent_info",
            "Agent build information (always 1).",
            Kind::Gauge,
            &[(vec![("version", version)], Value::Int(1))],
        );
        e.family(
            "bridge_ready",
            "1 when /readyz answers 200.",
            Kind::Gauge,
            &[(vec![], self.not_ready().is_empty().into())],
        );
        self.render_directions(&mut e);
        self.render_chains(&mut e);
        self.render_signers(&mut e);
        bridges::render(&mut e, &Side::ALL.map(|s| (s, self.bridge(s))));
        e.finish()
    }

    fn render_directions(&self, e: &mut Encoder) {
        let watched: [(u64, u64); 2] = {
            let sources = self.sources();
            Direction::ALL.map(|d| {
                sources.watchers[dir_index(d)].as_ref().map_or((0, 0), |w| {
                    (
                        w.requests.load(Ordering::Relaxed),
                        w.malformed_logs.load(Ordering::Relaxed),
                    )
                })
            })
        };
        type Get<'a> = &'a dyn Fn(Direction, &DirectionMetrics) -> Value;
        let families: [(&str, &str, Kind, Get<'_>); 14] = [
            (
                "bridge_request_nonce",
                "Source bridge requestNonce: the next request's nonce.",
                Kind::Gauge,
                &|_, m| m.request_nonce.get().into(),
            ),
            (
                "bridge_lower_handle_nonce",
                "Destination bridge lowerHandleNonce: every nonce below it has executed.",
                Kind::Gauge,
                &|_, m| m.lower_handle_nonce.get().into(),
            ),
            (
                "bridge_upper_handle_nonce",
                "Destination bridge upperHandleNonce: the highest executed nonce.",
                Kind::Gauge,
                &|_, m| m.upper_handle_nonce.get().into(),
            ),
            (
                "bridge_pending_requests",
                "Requests seen and not yet executed on the destination.",
                Kind::Gauge,
                &|_, m| m.pending_requests.get().into(),
            ),
            (
                "bridge_votes_sent_total",
                "Vote transactions submitted.",
                Kind::Counter,
                &|_, m| m.votes_sent.get().into(),
            ),
            (
                "bridge_votes_failed_total",
                "Votes that could not be sent or reverted unexpectedly.",
                Kind::Counter,
                &|_, m| m.votes_failed.get().into(),
            ),
            (
                "bridge_requests_seen_total",
                "Transfer requests decoded from source bridge logs.",
                Kind::Counter,
                &|d, m| (m.requests_seen.get() + watched[dir_index(d)].0).into(),
            ),
            (
                "bridge_malformed_logs_total",
                "Request logs that did not decode (skipped), by the watcher and by each recovery rescan that meets one again.",
                Kind::Counter,
                &|d, m| (m.malformed_logs.get() + watched[dir_index(d)].1).into(),
            ),
            (
                "bridge_reorg_halts_total",
                "Halts on a reorg deeper than the confirmation depth.",
                Kind::Counter,
                &|_, m| m.reorg_halts.get().into(),
            ),
            (
                "bridge_recoveries_total",
                "Recovery checks run.",
                Kind::Counter,
                &|_, m| m.recoveries.get().into(),
            ),
            (
                "bridge_recovery_rescans_total",
                "Recovery checks that found a stall and rescanned from recoveryBlockNumber.",
                Kind::Counter,
                &|_, m| m.recovery_rescans.get().into(),
            ),
            (
                "bridge_forged_votes_seen_total",
                "Destination votes whose calldata no honest agent would build.",
                Kind::Counter,
                &|_, m| m.forged_votes_seen.get().into(),
            ),
            (
                "bridge_silent_seats",
                "Destination seats that voted none of the last many executed nonces.",
                Kind::Gauge,
                &|_, m| m.silent_seats.get().into(),
            ),
            (
                "bridge_direction_halted",
                "1 while the direction is halted and needs an operator.",
                Kind::Gauge,
                &|d, _| matches!(self.direction_state(d), DirectionState::Halted(_)).into(),
            ),
        ];
        for (name, help, kind, get) in families {
            let samples: Vec<Sample<'_>> = Direction::ALL
                .iter()
                .map(|&d| (vec![("direction", d.as_str())], get(d, self.direction(d))))
                .collect();
            e.family(name, help, kind, &samples);
        }
        let mut skipped: Vec<Sample<'_>> = Vec::new();
        let mut unexecutable: Vec<Sample<'_>> = Vec::new();
        for d in Direction::ALL {
            let m = self.direction(d);
            for r in SkipReason::ALL {
                skipped.push((
                    vec![("direction", d.as_str()), ("reason", r.as_str())],
                    m.skipped(r).get().into(),
                ));
            }
            for r in UnexecutableReason::ALL {
                unexecutable.push((
                    vec![("direction", d.as_str()), ("reason", r.as_str())],
                    m.unexecutable(r).get().into(),
                ));
            }
        }
        e.family(
            "bridge_votes_skipped_total",
            "Plans that sent no vote, by reason (executed, already_voted, late, unexecutable).",
            Kind::Counter,
            &skipped,
        );
        e.family(
            "bridge_unexecutable_requests",
            "Requests that can never execute (recorded in the store), by reason.",
            Kind::Gauge,
            &unexecutable,
        );
    }

    fn render_chains(&self, e: &mut Encoder) {
        let per_chain =
            |e: &mut Encoder, name, help, kind, get: &dyn Fn(&ChainMetrics) -> Value| {
                let samples: Vec<Sample<'_>> = Side::ALL
                    .iter()
                    .map(|&s| (vec![("chain", s.as_str())], get(self.chain(s))))
                    .collect();
                e.family(name, help, kind, &samples);
            };
        per_chain(
            e,
            "bridge_operator_balance_wei",
            "The operator's balance on the chain, in wei.",
            Kind::Gauge,
            &|c| c.balance_wei.get().into(),
        );
        per_chain(
            e,
            "bridge_operator_balance_low",
            "1 while the operator's balance is below the alarm level.",
            Kind::Gauge,
            &|c| c.low_balance.load(Ordering::Relaxed).into(),
        );
        per_chain(
            e,
            "bridge_chain_reachable",
            "1 when the last attempt to reach the chain succeeded.",
            Kind::Gauge,
            &|c| (c.reach() == Reach::Reachable).into(),
        );
        per_chain(
            e,
            "bridge_txs_sent_total",
            "Vote transactions broadcast, resends and replacements included.",
            Kind::Counter,
            &|c| c.txs_sent.get().into(),
        );
        per_chain(
            e,
            "bridge_txs_mined_total",
            "Transactions mined successfully.",
            Kind::Counter,
            &|c| c.txs_mined.get().into(),
        );
        per_chain(
            e,
            "bridge_txs_replaced_total",
            "Fee-bump replacements of stuck transactions.",
            Kind::Counter,
            &|c| c.txs_replaced.get().into(),
        );
        per_chain(
            e,
            "bridge_sender_wedged",
            "1 while the operator's lowest pending transaction is not mined although the chain \
             produces blocks (for wedged_after_secs).",
            Kind::Gauge,
            &|c| (c.wedged_since.load(Ordering::Relaxed) != 0).into(),
        );
        per_chain(
            e,
            "bridge_sender_wedged_since_seconds",
            "Unix time since when the wedged sender's lowest pending nonce is unmined; 0 when not wedged.",
            Kind::Gauge,
            &|c| c.wedged_since.load(Ordering::Relaxed).into(),
        );
        per_chain(
            e,
            "bridge_tx_nonce_went_down_total",
            "Times the operator's mined nonce went down (a reorg orphaned its transactions).",
            Kind::Counter,
            &|c| c.nonce_went_down.get().into(),
        );
        let mut repairs = Vec::new();
        for s in Side::ALL {
            let c = self.chain(s);
            for (kind, n) in [
                ("resend", &c.nonce_repairs_resend),
                ("gap_fill", &c.nonce_repairs_gap_fill),
                ("rebase", &c.nonce_repairs_rebase),
            ] {
                repairs.push((vec![("chain", s.as_str()), ("kind", kind)], n.get().into()));
            }
        }
        e.family(
            "bridge_tx_nonce_repairs_total",
            "Tx manager repairs after the node lost its transactions: kind=resend (re-sent), \
             gap_fill (a hole below queued votes filled), rebase (numbering restarted at the chain's nonce).",
            Kind::Counter,
            &repairs,
        );
        let mut reverted = Vec::new();
        for s in Side::ALL {
            let c = self.chain(s);
            reverted.push((
                vec![("chain", s.as_str()), ("reason", "already_executed")],
                c.txs_reverted_already_executed.get().into(),
            ));
            reverted.push((
                vec![("chain", s.as_str()), ("reason", "unexpected")],
                c.txs_reverted.get().into(),
            ));
        }
        e.family(
            "bridge_txs_reverted_total",
            "Transactions mined reverted; reason=\"unexpected\" is an alarm.",
            Kind::Counter,
            &reverted,
        );

        // RPC endpoints, pulled from the registered chain clients.
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
