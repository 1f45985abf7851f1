//! What `/readyz` checks. The agent is ready when every direction runs (none starting or
//! halted), both chains answered on their last attempt and are not degraded (most calls
//! rate-limited), no operator balance is low, and no signer is unusable. [`AgentMetrics`] implements [`Readiness`] from the numbers it exports,
//! so `/readyz` and `bridge_ready` never disagree.

use std::fmt;

use super::AgentMetrics;
use crate::config::Side;
use crate::direction::Direction;

/// One reason the agent is not ready. `Display` is the line `/readyz` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    DirectionStarting(Direction),
    DirectionHalted {
        direction: Direction,
        reason: String,
    },
    ChainNotYetReached(Side),
    ChainUnreachable(Side),
    LowBalance(Side),
    SignerUnusable(Side),
    /// Most recent RPC attempts on the chain are rate-limited: calls wait, the agent lags.
    ChainDegraded(Side),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::DirectionStarting(d) => write!(f, "direction {d}: starting"),
            NotReady::DirectionHalted { direction, reason } => {
                // One line per reason: a multi-line reason is folded.
                let reason = reason.replace(['\r', '\n'], " ");
                write!(f, "direction {direction}: halted: {reason}")
            }
            NotReady::ChainNotYetReached(s) => write!(f, "chain {}: not reached yet", s.as_str()),
            NotReady::ChainUnreachable(s) => write!(f, "chain {}: unreachable", s.as_str()),
            NotReady::LowBalance(s) => write!(f, "chain {}: operator balance low", s.as_str()),
            NotReady::SignerUnusable(s) => {
                write!(f, "chain {}: signer unusable", s.as_str())
            }
            NotReady::ChainDegraded(s) => write!(
                f,
                "chain {}: degraded: most RPC calls are rate-limited by the provider \
                 (bridge_rpc_rate_limited_total); lower {}.rpc_requests_per_second or add an endpoint",
                s.as_str(),
                s.as_str()
            ),
        }
    }
}

/// What `/readyz` asks: every reason not to be ready, empty when ready.
pub trait Readiness: Send + Sync {
    fn not_ready(&self) -> Vec<NotReady>;
}

impl Readiness for AgentMetrics {
    fn not_ready(&self) -> Vec<NotReady> {
        AgentMetrics::not_ready(self)
    }
}
