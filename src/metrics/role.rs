//! What this process is among its operator's replicas, as `/readyz` and `status` show it. Set by
//! `agent/replica.rs` on every term change; `Sole` (the SQLite store: one process, no lease)
//! until told otherwise.

use std::fmt;

/// This process's role (the `/readyz` body's role line, `status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Role {
    /// No replicas: the only process of its operator, always leading.
    #[default]
    Sole,
    /// Holds the leader lease for `epoch`: signs and sends.
    Leading { epoch: u64 },
    /// Another replica (`leader`, when the database said) holds it: warm, signs nothing.
    Following { leader: Option<String>, epoch: u64 },
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Sole => write!(f, "leading (no replicas)"),
            Role::Leading { epoch } => write!(f, "leading, epoch {epoch}"),
            Role::Following { leader, epoch } => write!(
                f,
                "following, leader {}, epoch {epoch}",
                leader.as_deref().unwrap_or("unknown")
            ),
        }
    }
}
