//! What `/readyz` checks. The agent is ready when every direction runs (none starting or
//! halted), both chains answered on their last attempt and are not degraded (most calls
//! rate-limited), no operator balance is low, no signer is unusable, no sender is wedged (its
//! lowest pending transaction unmined while the chain moves on), and the last bridge check found
//! each configured bridge to be the bridge with this operator's key seated (`bridge_check`).
//! [`AgentMetrics`] implements [`Readiness`] from the numbers it exports, so `/readyz` and
//! `bridge_ready` never disagree.

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
    /// The operator's lowest pending transaction is not mined while the chain moves on.
    SenderWedged {
        side: Side,
        nonce: u64,
        /// Unix seconds.
        since_unix: u64,
    },
    /// Most recent RPC attempts on the chain are rate-limited: calls wait, the agent lags.
    ChainDegraded(Side),
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (days to civil date: Howard Hinnant's algorithm).
fn utc(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
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
            NotReady::SenderWedged {
                side,
                nonce,
                since_unix,
            } => {
                let since = utc(*since_unix);
                write!(
                    f,
                    "chain {}: sender wedged: nonce {nonce} not mined since {since} while the chain moves on \
                     (check fees.max_fee_gwei against the base fee, and the node's pool)",
                    side.as_str()
                )
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
    /// A line saying what this process is among its operator's replicas, served after the
    /// verdict (a follower is ready, and says whom it follows); `None` without replicas.
    fn role(&self) -> Option<String> {
        None
    }
}

impl Readiness for AgentMetrics {
    fn not_ready(&self) -> Vec<NotReady> {
        AgentMetrics::not_ready(self)
    }

    fn role(&self) -> Option<String> {
        match AgentMetrics::role(self) {
            super::Role::Sole => None,
            role => Some(role.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wedged_sender_names_chain_nonce_and_since_when() {
        let r = NotReady::SenderWedged {
            side: Side::Child,
            nonce: 229,
            since_unix: 1_796_509_800,
        };
        let line = r.to_string();
        assert!(
            line.starts_with(
                "chain child: sender wedged: nonce 229 not mined since 2026-12-05T22:30:00Z"
            ),
            "{line}"
        );
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_wedged_sender_makes_the_agent_unready_until_cleared() {
        let m = AgentMetrics::new();
        for d in Direction::ALL {
            m.set_direction_running(d);
        }
        for side in Side::ALL {
            m.set_chain_reachable(side, true);
        }
        assert_eq!(m.not_ready(), vec![]);
        m.set_wedged(Side::Parent, Some((7, 1_796_509_800)));
        assert_eq!(
            m.not_ready(),
            vec![NotReady::SenderWedged {
                side: Side::Parent,
                nonce: 7,
                since_unix: 1_796_509_800
            }]
        );
        assert!(
            m.render()
                .contains("bridge_sender_wedged{chain=\"parent\"} 1")
        );
        assert!(
            m.render()
                .contains("bridge_sender_wedged_since_seconds{chain=\"parent\"} 1796509800")
        );
        m.set_wedged(Side::Parent, None);
        assert_eq!(m.not_ready(), vec![]);
        assert!(
            m.render()
                .contains("bridge_sender_wedged{chain=\"parent\"} 0")
        );
    }
}
