//! What the guard lets through during a key rotation, and nothing wider.
//!
//! A guard holds a [`RotationPermit`] only when `bridge-agent keys rotate` built it; the
//! running agent's guards never do, so an agent host cannot move its own seat. With a permit
//! for `old → new`:
//!
//! ```text
//! signer == old:  proposeOperatorKey(new)                   to the bridge, value 0
//!                 plain coin transfer to `new`               gas funding and the final sweep
//! signer == new:  acceptOperatorKey(old)                    to the bridge, value 0
//! anything else (another argument, another recipient, calldata on a transfer)  ─> Refused
//! ```

use alloy_primitives::{Address, Bytes};
use alloy_sol_types::SolCall;

use super::Refused;
use super::calldata::{acceptOperatorKeyCall, proposeOperatorKeyCall};

/// The one seat move a rotation may sign for: from `old` to `new`, on this guard's bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPermit {
    /// The operator address that holds the seat now.
    pub old: Address,
    /// The address that takes it over.
    pub new: Address,
}

/// Checks a `proposeOperatorKey`/`acceptOperatorKey` call against the permit.
pub(super) fn check_call(
    permit: Option<&RotationPermit>,
    signer: Address,
    function: &'static str,
    input: &[u8],
) -> Result<(), Refused> {
    let Some(p) = permit else {
        return Err(Refused::RotationNotPermitted { function });
    };
    let outside = |detail: String| Refused::RotationOutsidePermit { function, detail };
    if let Ok(call) = proposeOperatorKeyCall::abi_decode_validate(input) {
        if signer != p.old {
            return Err(outside(format!(
                "signed by {signer}, only the current key {} may propose",
                p.old
            )));
        }
        if call.newOperator != p.new {
            return Err(outside(format!(
                "proposes {}, the permit names {}",
                call.newOperator, p.new
            )));
        }
        return Ok(());
    }
    if let Ok(call) = acceptOperatorKeyCall::abi_decode_validate(input) {
        if signer != p.new {
            return Err(outside(format!(
                "signed by {signer}, only the new key {} may accept",
                p.new
            )));
        }
        if call.oldOperator != p.old {
            return Err(outside(format!(
                "accepts the seat of {}, the permit names {}",
                call.oldOperator, p.old
            )));
        }
        return Ok(());
    }
    Err(outside("does not decode".into()))
}

/// Checks a transaction that does not go to the bridge: only a plain coin transfer from the
/// old key to the new one (gas funding, sweep), and only under a permit.
pub(super) fn check_transfer(
    permit: Option<&RotationPermit>,
    signer: Address,
    bridge: Address,
    to: Address,
    input: &Bytes,
) -> Result<(), Refused> {
    let wrong_to = Refused::WrongTo {
        expected: bridge,
        got: to,
    };
    let Some(p) = permit else {
        return Err(wrong_to);
    };
    if to != p.new || signer != p.old {
        return Err(wrong_to);
    }
    if !input.is_empty() {
        return Err(Refused::RotationOutsidePermit {
            function: "gas transfer",
            detail: "a gas transfer carries no calldata".into(),
        });
    }
    Ok(())
}
