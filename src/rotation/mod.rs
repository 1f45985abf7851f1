//! Operator key rotation with no downtime: `bridge-agent keys rotate`, and the records the
//! running agent's key switch (`agent/key_switch.rs`) follows.
//!
//! ```text
//!  keys rotate (run.rs)                       store.sqlite (store.rs)     running agent (agent/key_switch.rs)
//!  1 key      create/find the new key ──────> key: new address
//!  2 fund     old ─gas─> new, each chain ───> fund:<side>
//!  3 propose  old: proposeOperatorKey(new) ─> propose:<side>
//!  4 accept   new: acceptOperatorKey(old) ──> accept:<side> ───────────> sees the seat moved:
//!                                                                      new key + guard (same
//!                                                                      journal) + tx manager
//!  5 switch   wait for the agent <─────────── switch:<side> <──────────── ActiveKey::switch
//!  6 sweep    old ─leftover gas─> new ──────> sweep:<side>
//!  7 retire   old key retired ──────────────> retire   (8 destroy, only with --destroy-old)
//! ```
//!
//! Every step first reads the chain (balance, `pendingOperatorKey`, `operators`) and skips what
//! is already done, then acts, then records; an interrupted run (even `kill -9`) resumes with the
//! same command. The seat itself moves in one transaction (`acceptOperatorKey`), so at every
//! moment the old or the new address holds it on each chain: the operator never loses it.
//!
//! The guard signs these calls only with a [`bridge_signer::guard::RotationPermit`] naming
//! exactly this old and new address; the agent's own guards have none.
//!
//! Crash test: [`Ui::took_effect`] is called right after each step took effect and before it is
//! recorded, the worst moment for a crash. The operator's `bridge-agent` does nothing there;
//! `bridge-dev rotate-crash --after <step>` (hidden, for tests) aborts there.

pub mod keys;
pub mod run;
pub mod store;

pub use run::{RotateOptions, Ui, rotate};
pub use store::{NewKey, Rotation, RotationStore, RotationStoreError, Step};

/// Why a rotation stopped. Re-running the same command resumes it.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The command cannot work as written; nothing was done.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] RotationStoreError),
    #[error("{side} chain: {source}")]
    Chain {
        side: crate::config::Side,
        source: crate::chain::ChainError,
    },
    /// Creating, finding, connecting or destroying a key failed.
    #[error("key: {0}")]
    Key(String),
    /// A transaction failed (the message names the custom error of a revert).
    #[error("{side} chain: {source}")]
    Tx {
        side: crate::config::Side,
        source: Box<crate::admin_tx::AdminTxError>,
    },
    /// The running agent did not switch in time.
    #[error(
        "the agent at {listen} did not switch {side} to the new key within {secs} s; check its log \
         (is it an older build without key switching? then restart it: it starts with the new key), \
         then re-run this command to finish"
    )]
    SwitchTimeout {
        listen: std::net::SocketAddr,
        side: crate::config::Side,
        secs: u64,
    },
    /// The vote journal could not be opened.
    #[error("vote journal: {0}")]
    Journal(#[from] bridge_signer::guard::JournalError),
}
