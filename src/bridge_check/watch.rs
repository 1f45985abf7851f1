//! The running agent's bridge check: once at start (the directions are built only after both
//! chains' dialects are known), then again on every RPC failover, on a key switch, and
//! periodically (often while failing, so a seat granted later is picked up soon).
//!
//! ```text
//!  BridgeWatch (one task per chain) ── check() ──> BridgeState ──┬─> metrics (/readyz, /metrics)
//!      ▲ failovers counter moved, key switched, leadership          └─> Gate ─> direction loops:
//!        changed, or timer                                           no watcher step, recovery
//!                                                                    or standby vote while closed
//! ```
//!
//! The gate and the chains' sends also obey [`Leads`]: a replica that does not lead its
//! operator's replicas (`agent/replica.rs`) votes nothing and its sends stay held; the first
//! tick after it takes over re-checks the bridge, and only that check opens its sends.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Target, check, implications};
use crate::chain::ChainClient;
use crate::config::Side;
use crate::dialect::Dialect;
use crate::metrics::{AgentMetrics, BridgeState};
use crate::txmgr::ActiveKey;

/// Re-check period while the check fails (no code, no seat, …).
const RECHECK_FAILING: Duration = Duration::from_secs(3);
/// Re-check period while verified.
const RECHECK_VERIFIED: Duration = Duration::from_secs(60);
/// How often the failover counter and the active key are compared (no RPC).
const WATCH_TICK: Duration = Duration::from_millis(500);
/// A failing state is logged again every this many failing checks (about a minute).
const REPEAT_LOG_EVERY: u32 = 20;

fn index(side: Side) -> usize {
    match side {
        Side::Parent => 0,
        Side::Child => 1,
    }
}

/// Whether this process may vote and send now: false while a replica follows (or its term
/// ran out by its own clock); always true without replicas ([`always_leads`]).
pub type Leads = Arc<dyn Fn() -> bool + Send + Sync>;

/// [`Leads`] of a process without replicas.
pub fn always_leads() -> Leads {
    Arc::new(|| true)
}

/// Both chains' verdicts, for the loops that must not vote while a bridge is unverified.
#[derive(Clone)]
pub struct Gate {
    rx: [watch::Receiver<BridgeState>; 2],
    leads: Leads,
}

impl Gate {
    /// A direction from `source` to `dest` may run: this process leads, `dest`'s bridge is
    /// verified with this key seated, and `source`'s address is its bridge.
    pub fn allows(&self, source: Side, dest: Side) -> bool {
        (self.leads)()
            && self.rx[index(dest)].borrow().can_vote()
            && self.rx[index(source)].borrow().is_bridge()
    }

    /// Whether this process leads now (see [`Leads`]).
    pub fn leads(&self) -> bool {
        (self.leads)()
    }

    pub fn state(&self, side: Side) -> BridgeState {
        self.rx[index(side)].borrow().clone()
    }

    /// Waits until both chains' dialects are known (their bridges answered), or `shutdown`.
    pub async fn dialects(&mut self, shutdown: &CancellationToken) -> Option<[Dialect; 2]> {
        for rx in &mut self.rx {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = rx.wait_for(|s| s.dialect().is_some()) => { r.ok()?; }
            }
        }
        Some([Side::Parent, Side::Child].map(|s| self.state(s).dialect().expect("waited for")))
    }
}

/// One chain's watch: what it checks with, where it reports.
pub struct BridgeWatch {
    pub side: Side,
    pub client: ChainClient,
    /// `operator` is replaced by the active key's address before every check.
    pub target: Target,
    pub key: ActiveKey,
    pub metrics: Arc<AgentMetrics>,
}

/// Starts one watch task per chain; the [`Gate`] sees their verdicts and `leads`.
pub fn spawn(watches: [BridgeWatch; 2], leads: Leads, shutdown: &CancellationToken) -> Gate {
    let rx = watches.map(|w| {
        let (tx, rx) = watch::channel(BridgeState::Unchecked);
        tokio::spawn(w.run(tx, Arc::clone(&leads), shutdown.clone()));
        rx
    });
    Gate { rx, leads }
}

impl BridgeWatch {
    async fn run(
        mut self,
        tx: watch::Sender<BridgeState>,
        leads: Leads,
        shutdown: CancellationToken,
    ) {
        let mut failovers = self.client.stats().failovers;
        let mut key = self.key.address();
        let mut leading = leads();
        // The dialect the directions were built with: fixed once known.
        let mut fixed: Option<Dialect> = None;
        let mut failing_checks = 0u32;
        let mut since_check = Duration::MAX;
        let mut tick = tokio::time::interval(WATCH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            since_check = since_check.saturating_add(WATCH_TICK);
            let now_failovers = self.client.stats().failovers;
            let now_key = self.key.address();
            let now_leading = leads();
            if !now_leading {
                // A follower (or a leader whose term ran out) sends nothing, whatever the
                // bridge's verdict; the replica loop held them already at the step-down.
                self.client.hold_sends();
            }
            let period = if tx.borrow().can_vote() {
                RECHECK_VERIFIED
            } else {
                RECHECK_FAILING
            };
            let why = if now_failovers != failovers {
                "RPC failover"
            } else if now_key != key {
                "key switched"
            } else if now_leading != leading {
                "leadership changed"
            } else if since_check >= period {
                "periodic"
            } else {
                continue;
            };
            failovers = now_failovers;
            key = now_key;
            leading = now_leading;
            since_check = Duration::ZERO;
            let Some(state) = self.check_once(now_key, why, &mut fixed).await else {
                continue;
            };
            // The tx manager's sends obey the same verdict (chain/send_gate.rs): a failover
            // closed them already; a pass opens them for the endpoint checked (a failover
            // during the check keeps them closed until the next one).
            if state.is_bridge() && leads() {
                self.client.open_sends(now_failovers);
            } else {
                self.client.hold_sends();
            }
            let changed = *tx.borrow() != state;
            if state.can_vote() {
                failing_checks = 0;
            } else {
                failing_checks += 1;
            }
            if changed || (!state.can_vote() && failing_checks.is_multiple_of(REPEAT_LOG_EVERY)) {
                self.log(&state, changed);
            }
            self.metrics.set_bridge(self.side, state.clone());
            tx.send_replace(state);
        }
    }

    /// One check; `None` when the chain did not answer (the verdict stays as it was).
    async fn check_once(
        &mut self,
        key: Address,
        why: &str,
        fixed: &mut Option<Dialect>,
    ) -> Option<BridgeState> {
        self.target.operator = Some(key);
        tracing::debug!(chain = %self.side, bridge = %self.target.bridge, why, "checking the bridge");
        let report = match check(&self.client, &self.target).await {
            Ok(r) => r,
            Err(e) if e.is_verdict() => {
                return Some(BridgeState::Refused(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(chain = %self.side, error = %e, "bridge check could not run; retrying");
                return None;
            }
        };
        match *fixed {
            None => {
                *fixed = Some(report.dialect);
                tracing::info!(
                    chain = %self.side,
                    bridge = %report.bridge,
                    dialect = %report.dialect,
                    detected = %report.detected,
                    implies = %implications(report.dialect).join("; "),
                    "bridge dialect detected"
                );
                for w in &report.warnings {
                    tracing::warn!(chain = %self.side, bridge = %report.bridge, "{w}");
                }
            }
            Some(d) if d != report.dialect => {
                return Some(BridgeState::Refused(format!(
                    "{} bridge {}: answers as dialect \"{}\" now but \"{d}\" at start (a failover \
                     to an endpoint of another chain or deployment?); restart the agent once the \
                     endpoints are right",
                    report.chain, report.bridge, report.dialect
                )));
            }
            Some(_) => {}
        }
        Some(match report.seat_problem() {
            Some(message) => BridgeState::NotSeated {
                dialect: report.dialect,
                message,
            },
            None => BridgeState::Verified(report.dialect),
        })
    }

    fn log(&self, state: &BridgeState, changed: bool) {
        let (chain, bridge) = (self.side, self.target.bridge);
        match state {
            BridgeState::Verified(dialect) => {
                tracing::info!(chain = %chain, bridge = %bridge, dialect = %dialect, operator = ?self.target.operator, "bridge verified and key seated; voting")
            }
            BridgeState::Refused(reason) => tracing::error!(
                chain = %chain,
                still = !changed,
                "bridge check failed: {reason}; nothing is voted on or from this chain until it \
                 passes (re-checked every {}s): fix <chain>.bridge / rpc in the config",
                RECHECK_FAILING.as_secs()
            ),
            BridgeState::NotSeated { message, .. } => tracing::error!(
                chain = %chain,
                still = !changed,
                "key not seated: {message}; re-checked every {}s",
                RECHECK_FAILING.as_secs()
            ),
            BridgeState::Unchecked => {}
        }
    }
}
