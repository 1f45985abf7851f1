//! The tx manager a planner, auditor and bridge watch submit through or read the address of:
//! the one of the key that holds the seat now. The agent's key switch (`agent/key_switch.rs`)
//! replaces it when a rotation moves the seat; everyone holding a clone sees the new one.

use super::TxManager;
use alloy::primitives::Address;
use std::sync::{Arc, RwLock};

/// The tx manager a planner submits through: the key that holds the seat. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ActiveKey {
    inner: Arc<RwLock<TxManager>>,
}

impl ActiveKey {
    pub fn new(txm: TxManager) -> Self {
        Self {
            inner: Arc::new(RwLock::new(txm)),
        }
    }

    /// The tx manager of the key in use now.
    pub fn current(&self) -> TxManager {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The address in use now.
    pub fn address(&self) -> Address {
        self.current().address()
    }

    /// Puts `txm` in use; returns the one it replaces.
    pub fn switch(&self, txm: TxManager) -> TxManager {
        std::mem::replace(
            &mut *self
                .inner
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            txm,
        )
    }
}

impl From<TxManager> for ActiveKey {
    fn from(txm: TxManager) -> Self {
        Self::new(txm)
    }
}
