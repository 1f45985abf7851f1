//! A flag the auditor and the planner share: whether the store already holds every own vote
//! mined before this run (the auditor reads the blocks the agent missed; the planner holds back
//! re-votes until then).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the auditor has read every destination block up to where this run started, so the
/// store holds every own vote mined before (see `planner::Planned::NotYet`). True when no auditor
/// reports to it.
#[derive(Debug, Clone)]
pub struct OwnVotesSynced(Arc<AtomicBool>);

impl Default for OwnVotesSynced {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl OwnVotesSynced {
    pub fn set(&self, synced: bool) {
        self.0.store(synced, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
