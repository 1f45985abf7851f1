//! Whether this chain's transactions may be broadcast now. An RPC failover can land on an
//! endpoint of the same chain id that serves another deployment; what the tx manager sends
//! there (new votes, re-sends, gap fills, fee bumps) must wait until the bridge check has run
//! on it. So the agent holds a client's sends until its bridge check passes, every failover
//! closes the gate at once (in the very call that moved to another endpoint, before anything
//! else can be sent), and only a check that began after that failover opens it again.
//!
//! ```text
//!  hold_sends() ─> Closed                  (the agent, before its tx managers start)
//!  bridge check passed, begun at failover count n ─> open_sends(n) ─> VerifiedAt(n)
//!  open  ⇔  Ungated, or VerifiedAt(n) with the failover count still n
//!  eth_sendRawTransaction: checked before every attempt ─ closed ─> ChainError::SendsHeld
//! ```
//!
//! A client nobody holds (the CLI's, tests') is [`SendGate::Ungated`]: it sends freely.

/// The gate's state (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SendGate {
    #[default]
    Ungated,
    /// Held until a bridge check passes.
    Closed,
    /// A bridge check that began at this failover count passed.
    VerifiedAt(u64),
}

impl SendGate {
    /// Whether a broadcast may go out when the client's failover count is `failovers`.
    pub(crate) fn open(self, failovers: u64) -> bool {
        match self {
            SendGate::Ungated => true,
            SendGate::Closed => false,
            SendGate::VerifiedAt(n) => n == failovers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendGate::*;

    #[test]
    fn a_failover_after_the_check_closes_it() {
        // gate, failover count now, open?
        let cases = [
            (Ungated, 7, true),
            (Closed, 0, false),
            (VerifiedAt(3), 3, true),
            (VerifiedAt(3), 4, false),
            // A check that began before a failover does not vouch for the endpoint after it.
            (VerifiedAt(2), 3, false),
        ];
        for (gate, failovers, want) in cases {
            assert_eq!(gate.open(failovers), want, "{gate:?} at {failovers}");
        }
    }
}
