//! The families every agent exports with known labels, and the per-direction and per-chain
//! handle sets components count into. Every sample is created at registration, so each family
//! is described and at 0 before its first event (the alert rules and dashboards can tell "none
//! yet" from "not exported").

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::handles::{
    Counter, CounterFamily, FloatGauge, FloatGaugeFamily, Gauge, GaugeFamily, Registrar,
};
use crate::config::Side;
use crate::direction::Direction;
use crate::store::UnexecutableReason;

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

/// One direction's handles. Fields are public: `metrics.direction(d).votes_mined.inc()`.
#[derive(Debug, Clone)]
pub struct DirectionMetrics {
    /// Source bridge `requestNonce` (the next request's nonce).
    pub request_nonce: Gauge,
    /// Destination bridge `lowerHandleNonce` (every nonce below it executed).
    pub lower_handle_nonce: Gauge,
    /// Destination bridge `upperHandleNonce` (highest executed).
    pub upper_handle_nonce: Gauge,
    /// Requests seen but not yet executed on the destination.
    pub pending_requests: Gauge,
    /// This operator's votes mined successfully (a plan that ended `Voted`).
    pub votes_mined: Counter,
    /// Plans that ended in an error: the vote could not be sent, reverted for a reason other
    /// than lateness, or a read it needed failed (recovery retries it).
    pub votes_failed: Counter,
    /// Requests decoded from source logs (the watcher's, `Watcher::count_into`).
    pub requests_seen: Counter,
    /// Request logs that did not decode, by the watcher and by recovery rescans.
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
    /// 1 while halted (set with the direction's state, `AgentMetrics::halt_direction`).
    pub(super) halted: Gauge,
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

/// Whether a chain answers; unknown until the first call. The chain client sets it on every
/// call (`ChainClient::report_reach_to`): answered by any endpoint (an error answer or a rate
/// limit included) → reachable; failed on every endpoint without an answer → unreachable.
/// `bridge_chain_reachable` follows it (0 while unknown).
#[derive(Debug, Default)]
pub struct Reachability {
    state: AtomicU8,
    gauge: Gauge,
}

impl Reachability {
    // 0 (the default): unknown.
    const REACHABLE: u8 = 1;
    const UNREACHABLE: u8 = 2;

    pub fn set(&self, reachable: bool) {
        let v = if reachable {
            Self::REACHABLE
        } else {
            Self::UNREACHABLE
        };
        self.state.store(v, Ordering::Relaxed);
        self.gauge.set(u64::from(reachable));
    }

    /// `None` until the first call ended.
    pub fn get(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            Self::REACHABLE => Some(true),
            Self::UNREACHABLE => Some(false),
            _ => None,
        }
    }
}

impl crate::chain::ReachSink for Reachability {
    fn set_reachable(&self, reachable: bool) {
        self.set(reachable);
    }
}

/// One chain's handles (as the destination of votes and the holder of the operator's
/// balance). `Default`: detached handles, for a tx manager run on its own.
#[derive(Debug, Default)]
pub struct ChainMetrics {
    /// Operator balance in wei (a float: precise enough for alarms and graphs).
    pub balance_wei: FloatGauge,
    /// 1 while the balance is below the alarm level (`AgentMetrics::set_balance`).
    pub(super) low_balance: Gauge,
    /// Shared with the chain client that sets it.
    reach: Arc<Reachability>,
    /// Transactions broadcast, one per submission (its first send; a submission whose nonce
    /// was taken starts over and counts again); replacements are `txs_replaced`.
    pub txs_sent: Counter,
    /// Transactions mined successfully.
    pub txs_mined: Counter,
    /// Votes mined reverted, for a reason other than "executed already" (an alarm).
    pub txs_reverted: Counter,
    /// Votes mined reverted because the transfer had executed already (harmless).
    pub txs_reverted_already_executed: Counter,
    /// Fee-bump replacements of stuck transactions.
    pub txs_replaced: Counter,
    /// The tx manager's convergence repairs (see `txmgr/converge.rs`), by kind.
    pub nonce_repairs_resend: Counter,
    pub nonce_repairs_gap_fill: Counter,
    pub nonce_repairs_rebase: Counter,
    /// Times the operator's mined nonce went down (a reorg of this chain orphaned its txs).
    pub nonce_went_down: Counter,
    /// While wedged: 1, the nonce not being mined and since when (Unix seconds); 0 otherwise
    /// (`AgentMetrics::set_wedged`).
    pub(super) wedged: Gauge,
    pub(super) wedged_since: Gauge,
    pub(super) wedged_nonce: AtomicU64,
}

impl ChainMetrics {
    /// The value the chain client keeps current (see [`Reachability`]).
    pub fn reachability(&self) -> Arc<Reachability> {
        Arc::clone(&self.reach)
    }
}

fn dir(d: Direction) -> Vec<(&'static str, &'static str)> {
    vec![("direction", d.as_str())]
}

fn chain(s: Side) -> Vec<(&'static str, &'static str)> {
    vec![("chain", s.as_str())]
}

/// The per-direction families.
pub(super) struct DirectionFamilies {
    request_nonce: GaugeFamily,
    lower_handle_nonce: GaugeFamily,
    upper_handle_nonce: GaugeFamily,
    pending_requests: GaugeFamily,
    votes_mined: CounterFamily,
    votes_failed: CounterFamily,
    requests_seen: CounterFamily,
    malformed_logs: CounterFamily,
    reorg_halts: CounterFamily,
    recoveries: CounterFamily,
    recovery_rescans: CounterFamily,
    forged_votes_seen: CounterFamily,
    silent_seats: GaugeFamily,
    halted: GaugeFamily,
    votes_skipped: CounterFamily,
    unexecutable: GaugeFamily,
}

impl DirectionFamilies {
    pub fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            request_nonce: r.gauge(
                "bridge_request_nonce",
                "Source bridge requestNonce: the next request's nonce.",
            ),
            lower_handle_nonce: r.gauge(
                "bridge_lower_handle_nonce",
                "Destination bridge lowerHandleNonce: every nonce below it has executed.",
            ),
            upper_handle_nonce: r.gauge(
                "bridge_upper_handle_nonce",
                "Destination bridge upperHandleNonce: the highest executed nonce.",
            ),
            pending_requests: r.gauge(
                "bridge_pending_requests",
                "Requests not yet below the destination's lowerHandleNonce (requestNonce - lowerHandleNonce).",
            ),
            votes_mined: r.counter(
                "bridge_votes_mined_total",
                "This operator's votes mined successfully.",
            ),
            votes_failed: r.counter(
                "bridge_votes_failed_total",
                "Plans that ended in an error (not sent, reverted unexpectedly, or a read failed); recovery retries them.",
            ),
            requests_seen: r.counter(
                "bridge_requests_seen_total",
                "Transfer requests decoded from source bridge logs.",
            ),
            malformed_logs: r.counter(
                "bridge_malformed_logs_total",
                "Request logs that did not decode (skipped), by the watcher and by each recovery rescan that meets one again.",
            ),
            reorg_halts: r.counter(
                "bridge_reorg_halts_total",
                "Halts on a reorg deeper than the confirmation depth.",
            ),
            recoveries: r.counter("bridge_recoveries_total", "Recovery checks run."),
            recovery_rescans: r.counter(
                "bridge_recovery_rescans_total",
                "Recovery checks that found a stall and rescanned from recoveryBlockNumber.",
            ),
            forged_votes_seen: r.counter(
                "bridge_forged_votes_seen_total",
                "Destination votes whose calldata no honest agent would build.",
            ),
            silent_seats: r.gauge(
                "bridge_silent_seats",
                "Destination seats that voted none of the last many executed nonces.",
            ),
            halted: r.gauge(
                "bridge_direction_halted",
                "1 while the direction is halted and needs an operator.",
            ),
            votes_skipped: r.counter(
                "bridge_votes_skipped_total",
                "Plans that sent no vote, by reason (executed, already_voted, late, unexecutable).",
            ),
            unexecutable: r.gauge(
                "bridge_unexecutable_requests",
                "Requests that can never execute (recorded in the store), by reason.",
            ),
        }
    }

    pub fn handles(&self, d: Direction) -> DirectionMetrics {
        DirectionMetrics {
            request_nonce: self.request_nonce.handle(dir(d)),
            lower_handle_nonce: self.lower_handle_nonce.handle(dir(d)),
            upper_handle_nonce: self.upper_handle_nonce.handle(dir(d)),
            pending_requests: self.pending_requests.handle(dir(d)),
            votes_mined: self.votes_mined.handle(dir(d)),
            votes_failed: self.votes_failed.handle(dir(d)),
            requests_seen: self.requests_seen.handle(dir(d)),
            malformed_logs: self.malformed_logs.handle(dir(d)),
            reorg_halts: self.reorg_halts.handle(dir(d)),
            recoveries: self.recoveries.handle(dir(d)),
            recovery_rescans: self.recovery_rescans.handle(dir(d)),
            forged_votes_seen: self.forged_votes_seen.handle(dir(d)),
            votes_skipped: SkipReason::ALL.map(|r| {
                self.votes_skipped
                    .handle(vec![("direction", d.as_str()), ("reason", r.as_str())])
            }),
            unexecutable_requests: UnexecutableReason::ALL.map(|r| {
                self.unexecutable
                    .handle(vec![("direction", d.as_str()), ("reason", r.as_str())])
            }),
            silent_seats: self.silent_seats.handle(dir(d)),
            halted: self.halted.handle(dir(d)),
        }
    }
}

/// The per-chain families.
pub(super) struct ChainFamilies {
    balance_wei: FloatGaugeFamily,
    low_balance: GaugeFamily,
    reachable: GaugeFamily,
    txs_sent: CounterFamily,
    txs_mined: CounterFamily,
    txs_replaced: CounterFamily,
    txs_reverted: CounterFamily,
    nonce_repairs: CounterFamily,
    nonce_went_down: CounterFamily,
    wedged: GaugeFamily,
    wedged_since: GaugeFamily,
}

impl ChainFamilies {
    pub fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            balance_wei: r.float_gauge(
                "bridge_operator_balance_wei",
                "The operator's balance on the chain, in wei.",
            ),
            low_balance: r.gauge(
                "bridge_operator_balance_low",
                "1 while the operator's balance is below the alarm level.",
            ),
            reachable: r.gauge(
                "bridge_chain_reachable",
                "1 when the last call to the chain got an answer from an endpoint; 0 when it failed on \
                 every endpoint (or before the first call).",
            ),
            txs_sent: r.counter(
                "bridge_txs_sent_total",
                "Transactions broadcast, one per submission (its first send); fee-bump replacements \
                 are bridge_txs_replaced_total, identical re-sends are not counted.",
            ),
            txs_mined: r.counter("bridge_txs_mined_total", "Transactions mined successfully."),
            txs_replaced: r.counter(
                "bridge_txs_replaced_total",
                "Fee-bump replacements of stuck transactions.",
            ),
            txs_reverted: r.counter(
                "bridge_txs_reverted_total",
                "Votes mined reverted: reason=\"already_executed\" (late, harmless) or \"unexpected\" (an alarm).",
            ),
            nonce_repairs: r.counter(
                "bridge_tx_nonce_repairs_total",
                "Tx manager repairs after the node lost its transactions: kind=resend (re-sent), \
                 gap_fill (a hole below queued votes filled), rebase (numbering restarted at the chain's nonce).",
            ),
            nonce_went_down: r.counter(
                "bridge_tx_nonce_went_down_total",
                "Times the operator's mined nonce went down (a reorg orphaned its transactions).",
            ),
            wedged: r.gauge(
                "bridge_sender_wedged",
                "1 while the operator's lowest pending transaction is not mined although the chain \
                 produces blocks (for wedged_after_secs).",
            ),
            wedged_since: r.gauge(
                "bridge_sender_wedged_since_seconds",
                "Unix time since when the wedged sender's lowest pending nonce is unmined; 0 when not wedged.",
            ),
        }
    }

    pub fn handles(&self, s: Side) -> ChainMetrics {
        let with = |k: &'static str, v: &'static str| vec![("chain", s.as_str()), (k, v)];
        ChainMetrics {
            balance_wei: self.balance_wei.handle(chain(s)),
            low_balance: self.low_balance.handle(chain(s)),
            reach: Arc::new(Reachability {
                state: AtomicU8::new(0),
                gauge: self.reachable.handle(chain(s)),
            }),
            txs_sent: self.txs_sent.handle(chain(s)),
            txs_mined: self.txs_mined.handle(chain(s)),
            txs_reverted: self.txs_reverted.handle(with("reason", "unexpected")),
            txs_reverted_already_executed: self
                .txs_reverted
                .handle(with("reason", "already_executed")),
            txs_replaced: self.txs_replaced.handle(chain(s)),
            nonce_repairs_resend: self.nonce_repairs.handle(with("kind", "resend")),
            nonce_repairs_gap_fill: self.nonce_repairs.handle(with("kind", "gap_fill")),
            nonce_repairs_rebase: self.nonce_repairs.handle(with("kind", "rebase")),
            nonce_went_down: self.nonce_went_down.handle(chain(s)),
            wedged: self.wedged.handle(chain(s)),
            wedged_since: self.wedged_since.handle(chain(s)),
            wedged_nonce: AtomicU64::new(0),
        }
    }
}

/// The replica's handles: whether this process leads its operator's replicas, and the lease's
/// history as this process saw it (`agent/replica.rs` counts into them where the term changes).
#[derive(Debug, Clone)]
pub struct ReplicaMetrics {
    /// 1 while this process leads (always 1 without replicas, SQLite store); 0 following.
    pub leading: Gauge,
    /// The lease's epoch this process holds or last saw (0 without replicas).
    pub epoch: Gauge,
    /// Terms this process began: it took the lease (a first start counts one).
    pub takeovers: Counter,
    /// Lease ticks that failed (the database did not answer or refused).
    pub lease_errors: Counter,
}

impl ReplicaMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            leading: r
                .gauge(
                    "bridge_replica_leading",
                    "1 while this process leads its operator's replicas and may sign (always 1 with \
                     the SQLite store: one process, no lease); 0 while it follows.",
                )
                .handle(vec![]),
            epoch: r
                .gauge(
                    "bridge_replica_epoch",
                    "The leader lease's epoch (fencing number) this process holds or last saw; 0 without replicas.",
                )
                .handle(vec![]),
            takeovers: r
                .counter(
                    "bridge_replica_takeovers_total",
                    "Terms this process began as leader (it took the lease, at start or from another replica).",
                )
                .handle(vec![]),
            lease_errors: r
                .counter(
                    "bridge_replica_lease_errors_total",
                    "Leader lease ticks that failed (database unreachable or refusing); past the term's deadline the leader steps down.",
                )
                .handle(vec![]),
        }
    }
}
