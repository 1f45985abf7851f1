//! `bridge-agent run`: wires config, chains, store, signers, tx managers, watchers, planners
//! and recovery into one process, and stops it cleanly.
//!
//! ```text
//!            ┌ parent ChainClient ┐                 ┌ child ChainClient ┐
//!  P→C:  heads ─> Watcher ─> Planner(dest child) ─> TxManager(child) ─> Guard ─> Signer
//!  C→P:  heads ─> Watcher ─> Planner(dest parent) ─> TxManager(parent) ─> Guard ─> Signer
//!        every interval and at start: Recovery(direction) ─> Planner
//! ```
//!
//! A direction whose watcher meets a reorg below its confirmation depth halts alone, with the
//! watcher's message; the other direction goes on. SIGINT/SIGTERM cancel every task: nothing new
//! is started, votes in flight finish or are dropped, and what was recorded stays in the store
//! and the journals for the next start.
//!
//! With the PostgreSQL store the process is one replica of its operator (`replica.rs`): it
//! starts everything above, warm, and votes only while it holds the leader lease.

mod key_switch;
mod replica;

use crate::auditor::{Auditor, AuditorConfig};
use crate::bridge_check::watch::{BridgeWatch, Gate};
use crate::chain::{ChainClient, ChainError, access_config};
use crate::config::{AgentConfig, Side};
use crate::dialect::Dialect;
use crate::direction::Direction;
use crate::http::{HttpError, HttpServer};
use crate::metrics::{AgentMetrics, GuardStats};
use crate::planner::{Planner, PlannerConfig, Standby};
use crate::recovery::{Recovery, RecoveryConfig};
use crate::rotation::RotationStore;
use crate::store::{Store, StoreError};
use crate::txmgr::{ActiveKey, TxError, TxManager, TxManagerConfig};
use crate::votes::Request;
use crate::watcher::{WatchError, Watcher, WatcherConfig};
use bridge_signer::{Guard, Signer, SignerError};
use key_switch::SwitchSide;
use replica::Replica;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Votes planned at once per direction.
const PLANS_IN_FLIGHT: usize = 64;
/// Signer connection attempts at start (transient failures only), 250 ms apart, doubling.
const SIGNER_CONNECT_ATTEMPTS: u32 = 5;
/// How long start-up keeps retrying a chain that is unreachable or rate-limited (wrong chain id:
/// no retry), 1 s apart doubling to 30 s. Longer outages are for the supervisor to see.
const CHAIN_START_PATIENCE: Duration = Duration::from_secs(600);
/// How often each direction's auditor reads the destination's new votes.
const AUDIT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{side} chain: {source}")]
    Chain { side: Side, source: ChainError },
    #[error("{side} signer: {source}")]
    Signer { side: Side, source: SignerError },
    #[error("{side} vote journal: {source}")]
    Journal {
        side: Side,
        source: bridge_signer::guard::JournalError,
    },
    #[error("{side} tx manager: {source}")]
    Tx { side: Side, source: TxError },
    #[error(transparent)]
    Rotation(#[from] crate::rotation::RotationError),
    #[error("{what}: {source}")]
    Db {
        what: &'static str,
        source: bridge_db::DbError,
    },
}

/// The source and destination of a direction.
pub fn sides(direction: Direction) -> (Side, Side) {
    match direction {
        Direction::ParentToChild => (Side::Parent, Side::Child),
        Direction::ChildToParent => (Side::Child, Side::Parent),
    }
}

/// Everything per chain the directions share.
struct ChainParts {
    client: ChainClient,
    /// The tx manager of the key holding the seat; a rotation switches it (agent/key_switch.rs).
    key: ActiveKey,
    guard: Arc<Guard<Arc<dyn Signer>>>,
    operator: alloy::primitives::Address,
    /// The chain's bridge dialect (see [`Dialect`]).
    dialect: Dialect,
}

/// The tx manager settings of `side` (shared with the key switch of `rotation`).
/// `metrics`: the side's handles, shared by every tx manager of the side (a key switch keeps
/// the counts).
pub(crate) fn txm_config(cfg: &AgentConfig, side: Side, metrics: &AgentMetrics) -> TxManagerConfig {
    let chain = cfg.chain(side);
    TxManagerConfig {
        chain: side.as_str().into(),
        bridge: chain.bridge,
        fees: chain.fees,
        min_balance: chain.min_balance,
        receipt_poll: chain.poll_interval.min(Duration::from_millis(500)),
        max_in_flight: PLANS_IN_FLIGHT,
        wedged_after: chain.wedged_after,
        metrics: metrics.chain_handle(side),
    }
}

async fn chain_parts(
    cfg: &AgentConfig,
    side: Side,
    rotations: &RotationStore,
    metrics: &AgentMetrics,
    (databases, replica): (&crate::store::Databases, &Replica),
    shutdown: &CancellationToken,
) -> Result<ChainParts, AgentError> {
    let client = retry_at_start(
        side,
        "connecting",
        shutdown,
        ChainError::is_transient,
        || ChainClient::connect(access_config(cfg, side)),
    )
    .await
    .map_err(|source| AgentError::Chain { side, source })?;
    client.report_reach_to(metrics.chain(side).reachability());
    // Nothing is broadcast on this chain before its bridge check passes, nor after an RPC
    // failover until it passes again (bridge_check/watch.rs opens the gate).
    client.hold_sends();
    // The key holding the seat: the config's, or the one a rotation moved the seat to.
    let seated = crate::rotation::keys::seated(cfg, side, rotations)?;
    let signer: Arc<dyn Signer> = connect_signer(&seated, side).await?;
    let operator = signer.address();
    // The vote journal: in PostgreSQL (shared by the replicas, fenced by the lease), or the
    // SQLite file beside the store.
    let journal = databases
        .open_journal(side, replica.fence())
        .map_err(|source| AgentError::Journal { side, source })?;
    let chain = cfg.chain(side);
    let guard = Arc::new(Guard::new(signer, chain.chain_id, chain.bridge, journal));
    let txm = retry_at_start(
        side,
        "reading the operator's nonce",
        shutdown,
        |e: &TxError| matches!(e, TxError::Chain { source, .. } if source.is_transient()),
        || {
            TxManager::start(
                txm_config(cfg, side, metrics),
                client.clone(),
                Arc::clone(&guard),
                shutdown.clone(),
            )
        },
    )
    .await
    .map_err(|source| AgentError::Tx { side, source })?;
    tracing::info!(chain = %side, chain_id = chain.chain_id, operator = %operator, "chain ready");
    Ok(ChainParts {
        client,
        key: ActiveKey::new(txm),
        guard,
        operator,
        // Set from the bridge itself by the start-up bridge check, in `run`.
        dialect: Dialect::Ours,
    })
}

/// Runs a start-up step on `side`'s chain until it succeeds, retrying transient failures (no
/// endpoint reachable, every one rate-limited) with backoff for up to [`CHAIN_START_PATIENCE`]:
/// agents started together behind one rate-limited provider, or during a node restart, come
/// up instead of exiting. Configuration errors (wrong chain id, bad URL) fail at once.
async fn retry_at_start<T, E, Fut>(
    side: Side,
    what: &'static str,
    shutdown: &CancellationToken,
    transient: impl Fn(&E) -> bool,
    step: impl Fn() -> Fut,
) -> Result<T, E>
where
    E: std::fmt::Display,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let backoff = crate::chain::Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    let give_up = tokio::time::Instant::now() + CHAIN_START_PATIENCE;
    for attempt in 1u32.. {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && tokio::time::Instant::now() < give_up => {
                let delay = backoff.delay(attempt);
                tracing::warn!(chain = %side, attempt, retry_in = ?delay, error = %e, "{what}: chain not answering at start; retrying");
                tokio::select! {
                    // Stopping: the last failure says why start-up did not finish.
                    _ = shutdown.cancelled() => return Err(e),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// Connects the signer, retrying a transient failure (a token busy with another process's
/// login, a KMS throttling) a few times before giving up: agents on one host often start
/// together.
async fn connect_signer(
    config: &bridge_signer::SignerConfig,
    side: Side,
) -> Result<Arc<dyn Signer>, AgentError> {
    let mut delay = Duration::from_millis(250);
    for attempt in 1.. {
        match config.connect().await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_transient() && attempt < SIGNER_CONNECT_ATTEMPTS => {
                tracing::warn!(chain = %side, attempt, error = %e, "signer not ready; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(source) => return Err(AgentError::Signer { side, source }),
        }
    }
    unreachable!("the loop returns by its last attempt")
}

/// What this process is among its operator's replicas: one of them, ticking the leader lease
/// on its own connection (a tick never waits behind store work), with the PostgreSQL store;
/// the only one (always leading) with SQLite.
async fn replica_of(
    cfg: &AgentConfig,
    databases: &crate::store::Databases,
) -> Result<Replica, AgentError> {
    let Some(db) = databases.lease().map_err(StoreError::from)? else {
        return Ok(Replica::sole());
    };
    let (name, ttl) = (cfg.store.lease_name.clone(), cfg.store.lease_ttl);
    tokio::task::spawn_blocking(move || Replica::with_lease(db, name, ttl))
        .await
        .map_err(|e| AgentError::Db {
            what: "replicas' leader lease",
            source: bridge_db::DbError::Unavailable {
                at: "lease".into(),
                reason: e.to_string(),
            },
        })?
        .map_err(|source| AgentError::Db {
            what: "replicas' leader lease",
            source,
        })
}

/// Writes `addr` to `path` whole (a temp file renamed over it), so a reader never sees a
/// partial line.
fn publish_address(path: &std::path::Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let tmp = path.with_extension("addr.tmp");
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Runs the agent until `shutdown` is cancelled. Returns early only on a start-up failure.
pub async fn run(cfg: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    std::fs::create_dir_all(cfg.data_dir()).map_err(|source| AgentError::DataDir {
        path: cfg.data_dir().to_owned(),
        source,
    })?;
    let databases = crate::store::Databases::open(&cfg).map_err(StoreError::from)?;
    let store = Arc::new(Store::with_db(
        databases.store().map_err(StoreError::from)?,
    )?);
    let metrics = Arc::new(AgentMetrics::new());
    let replica = replica_of(&cfg, &databases).await?;
    replica.announce(&metrics);
    let http = HttpServer::bind(&cfg.http.listen, Arc::clone(&metrics), shutdown.clone()).await?;
    tracing::info!(listen = %http.local_addr(), "serving /metrics, /healthz, /readyz");
    let published = cfg.http_address_path();
    publish_address(&published, http.local_addr()).map_err(|source| AgentError::DataDir {
        path: published,
        source,
    })?;
    let rotations = databases
        .store()
        .map_err(StoreError::from)
        .map_err(crate::rotation::RotationStoreError::from)
        .and_then(RotationStore::with_db)
        .map_err(crate::rotation::RotationError::from)?;
    let mut parent = chain_parts(
        &cfg,
        Side::Parent,
        &rotations,
        &metrics,
        (&databases, &replica),
        &shutdown,
    )
    .await?;
    let mut child = chain_parts(
        &cfg,
        Side::Child,
        &rotations,
        &metrics,
        (&databases, &replica),
        &shutdown,
    )
    .await?;
    drop(rotations);
    // Nothing is built to vote before both bridges answered as bridges (their dialects set the
    // directions' rules); a key without a seat keeps its chain's gate shut until it has one.
    let mut gate = crate::bridge_check::watch::spawn(
        [(Side::Parent, &parent), (Side::Child, &child)]
            .map(|(side, p)| bridge_watch(&cfg, side, p, &metrics)),
        replica.leads(),
        &shutdown,
    );
    let Some([parent_dialect, child_dialect]) = gate.dialects(&shutdown).await else {
        http.stopped().await;
        tracing::info!("agent stopped before its bridges were verified");
        return Ok(());
    };
    parent.dialect = parent_dialect;
    child.dialect = child_dialect;
    let mut switch_sides = Vec::new();
    let part = |side: Side| match side {
        Side::Parent => &parent,
        Side::Child => &child,
    };
    // Tasks that end on `shutdown`; all are awaited before the agent returns, so none is in
    // the middle of a database call when the runtime shuts down (a PostgreSQL call waits with
    // `block_in_place`: a task still in one then would touch a stopped timer driver and abort).
    let mut background = Vec::new();
    for side in Side::ALL {
        let p = part(side);
        metrics.register_chain_client(side, p.client.clone());
        let g = Arc::clone(&p.guard);
        metrics.register_signer(side, move || g.signer().health().map(|h| h.snapshot()));
        let g = Arc::clone(&p.guard);
        metrics.register_guard(side, move || GuardStats::from(g.counters()));
        background.push(tokio::spawn(balance_loop(
            side,
            p.key.clone(),
            Arc::clone(&metrics),
            shutdown.clone(),
        )));
    }
    let mut tasks = JoinSet::new();
    for direction in Direction::ALL {
        let (src, dst) = sides(direction);
        let (source, dest) = (part(src), part(dst));
        let (src_cfg, dst_cfg) = (cfg.chain(src), cfg.chain(dst));
        let watcher = Watcher::new(
            WatcherConfig {
                direction,
                bridge: src_cfg.bridge,
                start_block: src_cfg.deploy_block,
                confirmations: src_cfg.confirmations,
                window_blocks: cfg.recovery.window_blocks,
            },
            source.client.clone(),
            Arc::clone(&store),
        )
        .count_into(metrics.direction(direction));
        let planner = Planner::new(
            PlannerConfig {
                direction,
                source_bridge: src_cfg.bridge,
                dest_bridge: dst_cfg.bridge,
                dialect: dest.dialect,
                operator: dest.operator,
                standby_delay: dst_cfg.standby_delay,
            },
            source.client.clone(),
            dest.client.clone(),
            Arc::clone(&store),
            dest.key.clone(),
        );
        let recovery = Recovery::new(
            RecoveryConfig {
                direction,
                source_bridge: src_cfg.bridge,
                dest_bridge: dst_cfg.bridge,
                dialect: dest.dialect,
                confirmations: src_cfg.confirmations,
            },
            source.client.clone(),
            dest.client.clone(),
            Arc::clone(&store),
            planner.seats(),
        );
        switch_sides.push(SwitchSide {
            side: dst,
            client: dest.client.clone(),
            key: planner.active_key(),
            journal: dest.guard.shared_journal(),
            txm_config: txm_config(&cfg, dst, &metrics),
            metrics: Arc::clone(&metrics),
        });
        let auditor = Auditor::new(
            AuditorConfig {
                direction,
                source_bridge: src_cfg.bridge,
                dest_bridge: dst_cfg.bridge,
                dialect: dest.dialect,
                window_blocks: cfg.recovery.window_blocks,
            },
            source.client.clone(),
            dest.client.clone(),
            Arc::clone(&store),
            planner.active_key(),
        )
        .report_silent_to(planner.silent_seats())
        .sync_own_votes_to(planner.own_votes_synced())
        .count_into(metrics.direction(direction));
        tasks.spawn(audit_loop(
            direction,
            auditor,
            gate.clone(),
            shutdown.clone(),
        ));
        metrics.set_direction_running(direction);
        let heads = source.client.new_heads(&shutdown);
        tasks.spawn(direction_loop(
            direction,
            Parts {
                watcher,
                planner,
                recovery,
                standby: Standby::new(dst_cfg.standby_delay),
                metrics: Arc::clone(&metrics),
                gate: gate.clone(),
            },
            heads,
            cfg.recovery.interval,
            shutdown.clone(),
        ));
    }
    // Key rotation: switch a chain to the new key once its seat moved (agent/key_switch.rs).
    background.push(tokio::spawn(key_switch::watch(
        cfg.clone(),
        switch_sides.clone(),
        replica.leads(),
        shutdown.clone(),
    )));
    // Replicas: vote only while holding the leader lease (replica.rs); released at the end.
    let lease_loop = tokio::spawn(replica.clone().run(
        switch_sides,
        Arc::clone(&metrics),
        shutdown.clone(),
    ));
    tracing::info!("agent running");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "a direction task panicked; stopping the agent");
            shutdown.cancel();
        }
    }
    shutdown.cancel();
    if let Err(e) = lease_loop.await {
        tracing::error!(error = %e, "the leader lease loop panicked");
    }
    for task in background {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a background task panicked");
        }
    }
    http.stopped().await;
    tracing::info!("agent stopped");
    Ok(())
}

/// The start-up and re-check of `side`'s bridge (bridge_check/watch.rs).
fn bridge_watch(
    cfg: &AgentConfig,
    side: Side,
    p: &ChainParts,
    metrics: &Arc<AgentMetrics>,
) -> BridgeWatch {
    let chain = cfg.chain(side);
    BridgeWatch {
        side,
        client: p.client.clone(),
        target: crate::bridge_check::Target {
            chain: side.as_str().into(),
            bridge: chain.bridge,
            counterpart: cfg.chain(side.other()).bridge,
            operator: Some(p.operator),
            configured: chain.dialect,
        },
        key: p.key.clone(),
        metrics: Arc::clone(metrics),
    }
}

/// Publishes the operator's balance, the low-balance flag and the wedged state of the key in use
/// (after a key switch, the new account's). The tx counters need no copy: every tx manager of
/// the side counts into the side's handles (`txm_config`).
async fn balance_loop(
    side: Side,
    key: ActiveKey,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = key.current().stats();
                metrics.set_wedged(
                    side,
                    now.wedged.map(|w| (w.nonce, w.since_unix())),
                );
                if let Some(balance) = now.last_balance {
                    metrics.set_balance(side, balance, now.low_balance);
                }
            }
        }
    }
}

/// Audits other operators' votes on the destination every [`AUDIT_EVERY`], until shutdown
/// (the auditor counts into the direction's handles itself). A replica that does not lead
/// audits nothing: the audit writes the store (its cursor, this operator's own votes).
async fn audit_loop(
    direction: Direction,
    mut auditor: Auditor,
    gate: Gate,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(AUDIT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick(), if gate.leads() => if let Err(e) = auditor.check().await {
                tracing::debug!(direction = %direction, error = %e, "vote audit failed; retrying");
            },
        }
    }
}

/// What one direction's loop drives.
struct Parts {
    watcher: Watcher,
    planner: Planner,
    recovery: Recovery,
    /// Requests that are other seats' turn.
    standby: Standby,
    metrics: Arc<AgentMetrics>,
    /// Shut while either bridge of the direction is unverified, the key holds no seat on the
    /// destination, or this replica does not lead: no watcher step, recovery or standby vote
    /// then. When it opens again an overdue recovery tick fires at once (a takeover starts
    /// with a recovery check).
    gate: Gate,
}

/// One direction: watch, plan, recover, until shutdown or a fatal watcher error.
async fn direction_loop(
    direction: Direction,
    parts: Parts,
    mut heads: crate::chain::HeadStream,
    recovery_interval: Duration,
    shutdown: CancellationToken,
) {
    let Parts {
        watcher,
        planner,
        recovery,
        mut standby,
        metrics,
        gate,
    } = parts;
    let (src, dst) = sides(direction);
    // The newest head seen while the gate was shut: stepped to as soon as it opens.
    let mut held: Option<crate::chain::Head> = None;
    let m = metrics.direction(direction);
    let plans = Arc::new(Semaphore::new(PLANS_IN_FLIGHT));
    let mut inflight = JoinSet::new();
    let mut recovery_tick = tokio::time::interval(recovery_interval);
    recovery_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Zero delay: nothing is ever held, so the tick never runs (the period only must be > 0).
    let mut standby_tick = tokio::time::interval(standby.delay().max(Duration::from_millis(1)));
    standby_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            head = next_head(&mut heads, &mut held, &gate, (src, dst)) => {
                let Some(head) = head else { break };
                // One window at a time, each planned before the next is read: a backlog is
                // never held in memory whole, and votes start with the first window.
                let halted = loop {
                    match watcher.step(head.number).await {
                        Ok(Some(found)) => {
                            for req in found {
                                if planner.stands_by(req.nonce).await {
                                    if let Err(e) = planner.record_key(&req).await {
                                        tracing::warn!(direction = %direction, nonce = req.nonce, error = %e, "cannot build the vote key of a request held for another seat");
                                    }
                                    standby.hold(req);
                                } else {
                                    spawn_plan(&mut inflight, &plans, &planner, &metrics, direction, req).await;
                                }
                            }
                        }
                        Ok(None) => break false,
                        Err(e) if e.is_fatal() => {
                            tracing::error!(direction = %direction, error = %e, "direction halted");
                            if matches!(e, WatchError::Reorg { .. }) {
                                m.reorg_halts.inc();
                            }
                            metrics.halt_direction(direction, e.to_string());
                            break true;
                        }
                        Err(e) => {
                            tracing::warn!(direction = %direction, error = %e, "watcher step failed; retrying on the next head");
                            break false;
                        }
                    }
                };
                if halted {
                    break;
                }
            }
            _ = recovery_tick.tick(), if gate.allows(src, dst) => {
                m.recoveries.inc();
                match recovery.check().await {
                    Ok((report, refeed)) => {
                        for req in refeed {
                            spawn_plan(&mut inflight, &plans, &planner, &metrics, direction, req).await;
                        }
                        publish_unexecutable(&planner, &metrics, direction);
                        m.request_nonce.set(report.request_nonce);
                        m.lower_handle_nonce.set(report.lower_handle_nonce);
                        m.upper_handle_nonce.set(report.upper_handle_nonce);
                        m.pending_requests.set(report.request_nonce.saturating_sub(report.lower_handle_nonce));
                        m.malformed_logs.add(report.malformed);
                        if report.rescanned {
                            m.recovery_rescans.inc();
                            tracing::info!(direction = %direction, ?report, "recovery check rescanned");
                        }
                    }
                    Err(e) => tracing::warn!(direction = %direction, error = %e, "recovery check failed"),
                }
            }
            _ = standby_tick.tick(), if !standby.is_empty() && gate.allows(src, dst) => {
                match planner.lower_handle_nonce().await {
                    Ok(lower) => {
                        let due = standby.tick(lower);
                        if !due.is_empty() {
                            tracing::info!(direction = %direction, lower_handle_nonce = lower, requests = due.len(),
                                "handle progress is stuck on another seat's turn; voting on the requests held for it");
                        }
                        for req in due {
                            spawn_plan(&mut inflight, &plans, &planner, &metrics, direction, req).await;
                        }
                    }
                    Err(e) => tracing::warn!(direction = %direction, error = %e, "cannot read lowerHandleNonce for the standby check; next tick retries"),
                }
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Let the votes already handed to the tx manager finish (they are journalled either way).
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while inflight.join_next().await.is_some() {}
    })
    .await;
}

/// The next head to step to: a new one while the gate is open; while it is shut, heads are
/// held (the newest kept) and the newest is handed over once it opens, so a direction catches
/// up at once when its bridge check passes even if no new block comes. Cancel-safe.
async fn next_head(
    heads: &mut crate::chain::HeadStream,
    held: &mut Option<crate::chain::Head>,
    gate: &Gate,
    (src, dst): (Side, Side),
) -> Option<crate::chain::Head> {
    loop {
        if gate.allows(src, dst)
            && let Some(head) = held.take()
        {
            return Some(head);
        }
        tokio::select! {
            head = heads.next() => {
                let head = head?;
                if gate.allows(src, dst) {
                    return Some(head);
                }
                *held = Some(head);
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Plans `req` in a task, waiting for one of the `plans` slots (which holds the caller back
/// while all are taken).
async fn spawn_plan(
    inflight: &mut JoinSet<()>,
    plans: &Arc<Semaphore>,
    planner: &Planner,
    metrics: &Arc<AgentMetrics>,
    direction: Direction,
    req: Request,
) {
    let Ok(permit) = Arc::clone(plans).acquire_owned().await else {
        return;
    };
    // A finished task keeps its memory until joined, and the loop that joins them is busy
    // while a backlog is fed through here: reap them now (10,000 unjoined plans held ~60 MiB).
    while inflight.try_join_next().is_some() {}
    let (planner, metrics) = (planner.clone(), Arc::clone(metrics));
    inflight.spawn(async move {
        let _permit = permit;
        plan_one(&planner, &metrics, direction, req).await;
    });
}

async fn plan_one(planner: &Planner, metrics: &AgentMetrics, direction: Direction, req: Request) {
    use crate::metrics::SkipReason;
    use crate::planner::{PlanError, Planned};
    let result = planner.plan(&req).await;
    let m = metrics.direction(direction);
    match &result {
        Ok(Planned::Voted { .. }) => m.votes_mined.inc(),
        Ok(Planned::Executed) => m.skipped(SkipReason::Executed).inc(),
        Ok(Planned::AlreadyVoted) => m.skipped(SkipReason::AlreadyVoted).inc(),
        Ok(Planned::Late) => m.skipped(SkipReason::Late).inc(),
        Ok(Planned::Unexecutable { .. }) => m.skipped(SkipReason::Unexecutable).inc(),
        Ok(Planned::InFlight | Planned::NotYet) => {}
        Err(_) => m.votes_failed.inc(),
    }
    match result {
        Ok(outcome) => {
            tracing::debug!(direction = %direction, nonce = req.nonce, ?outcome, "planned")
        }
        // Already said once, as an error, where it was found (the planner's own log line).
        Err(e @ PlanError::NotSeated { .. }) => {
            tracing::error!(direction = %direction, nonce = req.nonce, error = %e, "vote refused: not seated")
        }
        Err(e) => {
            tracing::warn!(direction = %direction, nonce = req.nonce, error = %e, "vote failed; recovery will retry")
        }
    }
}

/// Sets the direction's unexecutable-request gauges from the store (which outlives restarts).
fn publish_unexecutable(planner: &Planner, metrics: &AgentMetrics, direction: Direction) {
    match planner.unexecutable_counts() {
        Ok(counts) => {
            for (reason, n) in counts {
                metrics.direction(direction).unexecutable(reason).set(n);
            }
        }
        Err(e) => {
            tracing::warn!(direction = %direction, error = %e, "cannot count unexecutable requests in the store")
        }
    }
}
