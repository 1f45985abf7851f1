//! The running agent's side of a rotation: it switches each chain to the new key as soon as
//! that chain's seat has moved, without a restart.
//!
//! ```text
//! every SWITCH_POLL:  store: a rotation whose new key is known, not yet switched here?
//!                       └> chain: operators(new) on that side's bridge?   (one view call)
//!                            └> connect the new key ─> Guard (same journal) ─> TxManager
//!                               ─> ActiveKey::switch (planner's next vote uses it)
//!                               ─> store: switch:<side>
//! ```
//!
//! The old key's tx manager is dropped from the planner at once; votes it already had in
//! flight finish (they may revert with `NotOperator` if mined after the accept, and recovery or
//! the other operators cover them). The new key's guard shares the chain's vote journal, so it
//! re-sends exactly the votes the old key journalled and never a different one.

use crate::bridge_check::watch::Leads;
use crate::chain::ChainClient;
use crate::config::{AgentConfig, Side};
use crate::contracts::Bridge;
use crate::rotation::{NewKey, RotationStore, Step};
use crate::txmgr::{ActiveKey, GuardedSigner, TxError, TxManager, TxManagerConfig};
use alloy::primitives::Address;
use bridge_signer::Guard;
use bridge_signer::guard::Journal;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the agent looks for a rotation in its store.
pub const SWITCH_POLL: Duration = Duration::from_millis(500);

/// What the switch (and a replica's takeover, `replica.rs`) needs per chain.
#[derive(Clone)]
pub struct SwitchSide {
    pub side: Side,
    pub client: ChainClient,
    pub key: ActiveKey,
    pub journal: Arc<Journal>,
    pub txm_config: TxManagerConfig,
    /// Signer health and guard counters are re-registered for the new key.
    pub metrics: Arc<crate::metrics::AgentMetrics>,
}

/// Watches the store for rotations and switches each chain's key once its seat moved. Runs
/// until `shutdown`; a replica that does not lead (`leads`) switches and records nothing (the
/// leader does, and a takeover starts from the key in use then).
pub async fn watch(
    cfg: AgentConfig,
    sides: Vec<SwitchSide>,
    leads: Leads,
    shutdown: CancellationToken,
) {
    let opened = crate::store::Databases::open(&cfg)
        .and_then(|dbs| dbs.store())
        .map_err(|e| crate::rotation::RotationStoreError::Store(e.into()))
        .and_then(RotationStore::with_db);
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "key switch disabled: cannot open the rotation records");
            return;
        }
    };
    let mut tick = tokio::time::interval(SWITCH_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !leads() {
            continue;
        }
        let rotation = match store.latest() {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rotation records");
                continue;
            }
        };
        let Some(new) = rotation.new else { continue };
        for s in &sides {
            let current = s.key.address();
            if current == new || current != rotation.old {
                if current == new && !rotation.done(Step::Switch(s.side)) {
                    let _ = store.record(rotation.id, Step::Switch(s.side), &new.to_string());
                }
                continue;
            }
            let accepted = rotation.done(Step::Accept(s.side)) || {
                let (bridge, client) = (s.txm_config.bridge, s.client.clone());
                client
                    .run("Bridge.operators", move |p| async move {
                        Bridge::new(bridge, p).operators(new).call().await
                    })
                    .await
                    .unwrap_or(false)
            };
            if !accepted {
                continue;
            }
            match switch_side(&cfg, s, &rotation.new_key, new, &shutdown).await {
                Ok(()) => {
                    tracing::info!(chain = %s.side, old = %rotation.old, new = %new,
                        "key switched: votes on this chain are now signed by the new key");
                    if let Err(e) =
                        store.record(rotation.id, Step::Switch(s.side), &new.to_string())
                    {
                        tracing::warn!(error = %e, "cannot record the key switch");
                    }
                }
                Err(e) => tracing::warn!(chain = %s.side, error = %e,
                    "cannot switch to the new key yet; retrying"),
            }
        }
    }
}

async fn switch_side(
    cfg: &AgentConfig,
    s: &SwitchSide,
    key: &NewKey,
    new: Address,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let signer_cfg =
        crate::rotation::keys::rotated(cfg.signer_for(s.side), key).map_err(|e| e.to_string())?;
    let signer = signer_cfg.connect().await.map_err(|e| e.to_string())?;
    let address = signer.address();
    if address != new {
        return Err(format!(
            "the recorded new key signs as {address}, the rotation names {new}; not switching"
        ));
    }
    let chain = cfg.chain(s.side);
    // The old guard's counters go on (bridge_guard_*_total never drop at a switch).
    let counters = s.key.current().guard().shared_counters();
    let guard = Arc::new(
        Guard::with_journal(signer, chain.chain_id, chain.bridge, Arc::clone(&s.journal))
            .sharing_counters(counters),
    );
    let _old = start_key(s, guard, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Starts a tx manager for `guard` on `s`'s chain and puts it in use: as at start, it reads the
/// account's nonce from the chain and takes over what an earlier sender left in the node's pool
/// (`txmgr/leftovers.rs`). The one path of a key switch and of a replica's takeover (the earlier
/// sender is then the old leader). Returns the tx manager it replaced.
pub(super) async fn start_key(
    s: &SwitchSide,
    guard: Arc<GuardedSigner>,
    shutdown: &CancellationToken,
) -> Result<TxManager, TxError> {
    let txm = TxManager::start(
        s.txm_config.clone(),
        s.client.clone(),
        Arc::clone(&guard),
        shutdown.clone(),
    )
    .await?;
    let g = Arc::clone(&guard);
    s.metrics
        .register_signer(s.side, move || g.signer().health().map(|h| h.snapshot()));
    s.metrics.register_guard(s.side, move || {
        crate::metrics::GuardStats::from(guard.counters())
    });
    Ok(s.key.switch(txm))
}
