//! One operator, several replicas: which process votes. With the PostgreSQL store the agent is a
//! replica: every replica of the operator (same key, same database) ticks the leader lease
//! (`bridge_db::Lease`); the one holding it leads, the others follow. With SQLite there is no
//! lease and the process always leads.
//!
//! ```text
//!  every ttl/3:  Lease::tick (a blocking thread) ─> Term
//!    Following → Leading{epoch}, or a new epoch:
//!        count a takeover, log INFO
//!        per chain: key_switch::start_key (a fresh tx manager: account nonce from the chain,
//!                   the old leader's pending txs taken over as an earlier run's leftovers)
//!        open: Gate (direction loops, recovery, standby, auditor, key switch) and, after a
//!              bridge re-check, the chains' sends
//!    Leading → Following (another holder, or the term ran out by the local clock):
//!        close at once: Gate shut, the chains' sends held, log WARN "stepped down"
//!  shutdown while leading:  close, Lease::release (a follower takes over at its next tick)
//! ```
//!
//! A follower keeps its chain clients, head streams, bridge checks and signer connected (warm)
//! and signs, sends and writes nothing. The gate is only the first line: each chain's vote
//! journal holds the lease as its fence, so even a replica that still believes it leads (paused
//! past its term, cut from the database) gets no signature: the database refuses the record.

use super::key_switch::{SwitchSide, start_key};
use crate::bridge_check::watch::Leads;
use crate::metrics::{AgentMetrics, Role};
use bridge_db::{Db, DbError, Fence, Lease, LeaseConfig, Term};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Whether this process leads its operator's replicas, shared by everything that must not act
/// while it follows. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Replica {
    /// None: no replicas (SQLite store), always leading.
    lease: Option<Arc<Lease>>,
    /// Set once a term's takeover is done (fresh tx managers in use), cleared at a step-down.
    open: Arc<AtomicBool>,
}

impl Replica {
    /// The only process of its operator: leads, no lease.
    pub fn sole() -> Self {
        Self {
            lease: None,
            open: Arc::new(AtomicBool::new(true)),
        }
    }

    /// A replica ticking the lease `name` in `db` (PostgreSQL): follows until its first term's
    /// takeover is done. Prepares the lease table (blocking: call off the async runtime).
    pub fn with_lease(db: Db, name: String, ttl: Duration) -> Result<Self, DbError> {
        let lease = Lease::new(
            db,
            LeaseConfig {
                name,
                holder: holder(),
                ttl,
            },
        )?;
        Ok(Self {
            lease: Some(Arc::new(lease)),
            open: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Says what this process is before the lease loop runs: a replica follows until its first
    /// term (`bridge_replica_leading` is 1 otherwise, the default).
    pub fn announce(&self, metrics: &AgentMetrics) {
        if self.lease.is_some() {
            metrics.replica().leading.set(0);
            metrics.set_role(Role::Following {
                leader: None,
                epoch: 0,
            });
        }
    }

    /// The fence each chain's vote journal checks before recording a vote (None: no replicas).
    pub fn fence(&self) -> Option<Arc<dyn Fence>> {
        self.lease.clone().map(|l| l as Arc<dyn Fence>)
    }

    /// Leading now: the takeover is done and, by this process's clock, the term has not run
    /// out (a process paused past it stops at once, before its next tick says so).
    pub fn leads_now(&self) -> bool {
        self.open.load(Ordering::Acquire) && self.lease.as_ref().is_none_or(|l| l.holds_now())
    }

    /// [`Replica::leads_now`] for the gate and the loops below the agent.
    pub fn leads(&self) -> Leads {
        let me = self.clone();
        Arc::new(move || me.leads_now())
    }

    /// Runs the lease loop until `shutdown` (nothing to do without replicas), then gives the
    /// lease up if this process held it. `sides`: each chain's key, client and tx manager
    /// settings (the key switch's), for the takeover.
    pub async fn run(
        self,
        sides: Vec<SwitchSide>,
        metrics: Arc<AgentMetrics>,
        shutdown: CancellationToken,
    ) {
        let Some(lease) = self.lease.clone() else {
            return;
        };
        let m = metrics.replica();
        let period = lease.config().ttl / 3;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The epoch whose takeover is done (its tx managers in use), and the last one counted.
        let mut served: Option<u64> = None;
        let mut counted: Option<u64> = None;
        let mut outage = Outage::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let l = Arc::clone(&lease);
            match tokio::task::spawn_blocking(move || l.tick()).await {
                Ok(Ok(_)) => outage.ended(),
                Ok(Err(e)) => {
                    m.lease_errors.inc();
                    outage.failed(&e.to_string(), period);
                }
                Err(e) => {
                    m.lease_errors.inc();
                    tracing::error!(error = %e, "leader lease tick panicked; retrying");
                }
            }
            // The term by the local clock (a failed tick past the deadline ends it).
            match lease.term() {
                Term::Leading { epoch } if served == Some(epoch) && self.leads_now() => {}
                Term::Leading { epoch } => {
                    // A new term (or one whose takeover has not finished): nothing votes
                    // until the tx managers are fresh.
                    self.close(&sides);
                    m.epoch.set(epoch);
                    if counted != Some(epoch) {
                        counted = Some(epoch);
                        m.takeovers.inc();
                        tracing::info!(epoch, holder = %lease.config().holder, "leading: took the leader lease; reconciling nonces before the first vote");
                    }
                    if self.take_over(&sides, &shutdown).await {
                        served = Some(epoch);
                        self.open.store(true, Ordering::Release);
                        m.leading.set(1);
                        metrics.set_role(Role::Leading { epoch });
                        tracing::info!(epoch, "leading: voting");
                    }
                }
                Term::Following { leader, epoch } => {
                    if self.close(&sides) {
                        tracing::warn!(
                            epoch,
                            leader = leader.as_deref().unwrap_or("unknown"),
                            "stepped down: another replica holds the leader lease or this term ran out; signing and sending nothing"
                        );
                    }
                    served = None;
                    m.leading.set(0);
                    m.epoch.set(epoch);
                    metrics.set_role(Role::Following { leader, epoch });
                }
            }
        }
        if self.close(&sides) || lease.holds_now() {
            let l = Arc::clone(&lease);
            match tokio::task::spawn_blocking(move || l.release()).await {
                Ok(Ok(())) => tracing::info!("leader lease released"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot release the leader lease; it expires by itself")
                }
                Err(e) => tracing::warn!(error = %e, "leader lease release panicked"),
            }
        }
        m.leading.set(0);
    }

    /// Shuts the gate and holds every chain's sends; true when it was open.
    fn close(&self, sides: &[SwitchSide]) -> bool {
        let was = self.open.swap(false, Ordering::AcqRel);
        for s in sides {
            s.client.hold_sends();
        }
        was
    }

    /// A fresh tx manager per chain, exactly as a key switch starts one; false (retried at the
    /// next tick) when a chain did not answer.
    async fn take_over(&self, sides: &[SwitchSide], shutdown: &CancellationToken) -> bool {
        for s in sides {
            let guard = Arc::clone(s.key.current().guard());
            if let Err(e) = start_key(s, guard, shutdown).await {
                tracing::warn!(chain = %s.side, error = %e, "takeover: cannot read the account's nonce yet; retrying at the next lease tick");
                return false;
            }
        }
        true
    }
}

/// This process among the replicas: host, process id and start time (a restarted process on
/// the same host and pid is another holder, so it never inherits a term).
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}:{}:{nanos}", std::process::id())
}

/// Failed lease ticks in a row: said once when they start, again every [`OUTAGE_REMINDER`]
/// while they go on, and once when a tick works again (not every third of a TTL).
#[derive(Default)]
struct Outage {
    since: Option<std::time::Instant>,
    failures: u64,
    reminded: Option<std::time::Instant>,
}

/// How often a lease outage that goes on is said again.
const OUTAGE_REMINDER: std::time::Duration = std::time::Duration::from_secs(60);

impl Outage {
    fn failed(&mut self, error: &str, period: std::time::Duration) {
        let now = std::time::Instant::now();
        self.failures += 1;
        let since = *self.since.get_or_insert(now);
        let due = self
            .reminded
            .is_none_or(|at| now.duration_since(at) >= OUTAGE_REMINDER);
        if due {
            self.reminded = Some(now);
            tracing::warn!(
                error,
                failures = self.failures,
                for_secs = now.duration_since(since).as_secs(),
                "leader lease tick failed; retrying every {period:?} (a leader steps down once its term runs out; \
                 said again each minute while it lasts)"
            );
        } else {
            tracing::debug!(
                error,
                failures = self.failures,
                "leader lease tick failed; retrying"
            );
        }
    }

    fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                failures = self.failures,
                for_secs = since.elapsed().as_secs(),
                "leader lease reachable again"
            );
        }
        *self = Self::default();
    }
}
