//! What `/readyz` checks. The agent is ready when every direction runs (none starting or
//! halted), both chains answered on their last attempt, no operator balance is low, no
//! signer is unusable, and the last bridge check found each configured bridge to be the bridge
//! with this operator's key seated (`bridge_check`). [`AgentMetrics`] implements [`Readiness`]
//! from the numbers it exports, so `/readyz` and `bridge_ready` never disagree.

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
    /// The configured address is not this chain's bridge of the pair (`bridge_check`).
    BridgeNotVerified {
        side: Side,
        reason: String,
    },
    /// This operator's key holds no seat on the chain's bridge.
    KeyNotSeated {
        side: Side,
        reason: String,
    },
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
            NotReady::BridgeNotVerified { side, reason } => {
                let reason = reason.replace(['\r', '\n'], " ");
                write!(f, "chain {}: bridge not verified: {reason}", side.as_str())
            }
            NotReady::KeyNotSeated { side, reason } => {
                let reason = reason.replace(['\r', '\n'], " ");
                write!(f, "chain {}: key not seated: {reason}", side.as_str())
            }
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
