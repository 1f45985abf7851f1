//! Which family of bridge contract a bridge address holds. The agent-facing ABI (request
//! events, `handle*Transfer`, nonce views) is the same; what differs is what the agent can read
//! and how the bridge answers (see `../shared/KAIA-FACTS.md` for Kaia's).
//!
//! Found from the bridge itself at start (`voteOf` answers only on ours); an operator may pin
//! it in the config. Everything that behaves differently asks the dialect, never the address.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// This project's `contracts/src/bridge/Bridge.sol`: `voteOf`, a `Voted` event per vote,
    /// one vote per operator and nonce, custom errors, `closedValueTransferVotes` kept forever,
    /// two-step key rotation.
    Ours,
    /// Kaia's deployed service-chain bridge: votes in private storage (no `voteOf`, no `Voted`),
    /// a repeated vote is mined and replaces the earlier one, `Error(string)` reverts,
    /// `closedValueTransferVotes` deleted once `lowerHandleNonce` passes, no key rotation.
    Kaia,
}

impl Dialect {
    pub const ALL: [Dialect; 2] = [Dialect::Ours, Dialect::Kaia];

    /// The name in logs, metrics labels, `status` and the config (`dialect = "…"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Ours => "ours",
            Dialect::Kaia => "kaia",
        }
    }

    /// Whether the bridge has `voteOf(voteType, nonce, operator)`.
    pub fn has_vote_view(self) -> bool {
        matches!(self, Dialect::Ours)
    }

    /// Whether the bridge emits a `Voted` event for every vote.
    pub fn emits_voted(self) -> bool {
        matches!(self, Dialect::Ours)
    }

    /// Whether `proposeOperatorKey` / `acceptOperatorKey` / `replaceOperator` exist.
    pub fn supports_key_rotation(self) -> bool {
        matches!(self, Dialect::Ours)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ours" => Ok(Dialect::Ours),
            "kaia" => Ok(Dialect::Kaia),
            other => Err(format!(
                "unknown bridge dialect {other:?}: expected \"ours\" or \"kaia\""
            )),
        }
    }
}
