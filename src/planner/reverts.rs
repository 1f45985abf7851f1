//! What a reverted vote means, on either dialect.
//!
//! ```text
//! revert data ─> our custom errors (Bridge::BridgeErrors)
//!             └> Error(string) (selector 0x08c379a0, Kaia's bridge) ─> the reason text
//!   late vote       AlreadyExecuted │ "removed vote", "closed vote"        ─> fine, quiet
//!   seat moved      NotOperator     │ "msg.sender is not an operator"      ─> key switch / not seated
//!   unexecutable                    │ "handleKLAYTransfer: transfer failed" ─> one alarm, recorded,
//!                                   │ "mint failed"                          no more votes
//!   anything else                                                         ─> alarm, reason as text
//! ```
//!
//! Our contract has no permanent per-request failure: a refused native payout is deferred
//! (`NativePayoutDeferred`, claimable later) and missing liquidity may still arrive, so those
//! stay "anything else" and the vote is retried by recovery.

use crate::contracts::Bridge;
use crate::store::UnexecutableReason;
use alloy::sol_types::{Panic, Revert, SolError, SolInterface};

/// What one revert says about the request and this operator's vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertKind {
    /// The request executed before this vote arrived.
    Late,
    /// The sender holds no seat (any more).
    NotOperator,
    /// The request can never execute; no vote will change that.
    Unexecutable {
        reason: UnexecutableReason,
        text: String,
    },
    /// Anything else, described as text for the operator.
    Other(String),
}

/// Classifies revert data (`None`: the node gave none).
pub fn classify(data: Option<&[u8]>) -> RevertKind {
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return RevertKind::Other("reverted without revert data".into());
    };
    if let Ok(e) = Bridge::BridgeErrors::abi_decode(data) {
        return match e {
            Bridge::BridgeErrors::AlreadyExecuted(_) => RevertKind::Late,
            Bridge::BridgeErrors::NotOperator(_) => RevertKind::NotOperator,
            other => RevertKind::Other(format!("{other:?}")),
        };
    }
    if let Ok(r) = Revert::abi_decode(data) {
        return classify_reason(r.reason);
    }
    if let Ok(p) = Panic::abi_decode(data) {
        return RevertKind::Other(format!("panic: {p}"));
    }
    let selector = data.get(..4).map_or_else(
        || format!("{} bytes, too short for an error selector", data.len()),
        |s| {
            format!(
                "unknown error selector 0x{} with {} bytes of arguments",
                hex(s),
                data.len() - 4
            )
        },
    );
    RevertKind::Other(selector)
}

/// Kaia's bridge reverts with these strings (see KAIA-FACTS.md); a mint failure may carry the
/// handle's name in front (`"handleERC20Transfer: mint failed"`). An ERC-20 "transfer failed"
/// (the bridge lacks the tokens) is not taken as permanent: liquidity may still arrive, and a
/// vote that would revert costs only an estimate.
fn classify_reason(reason: String) -> RevertKind {
    match reason.as_str() {
        "removed vote" | "closed vote" => RevertKind::Late,
        "msg.sender is not an operator" => RevertKind::NotOperator,
        "handleKLAYTransfer: transfer failed" => RevertKind::Unexecutable {
            reason: UnexecutableReason::PayoutRefused,
            text: reason,
        },
        r if r == "mint failed" || r.ends_with(": mint failed") => RevertKind::Unexecutable {
            reason: UnexecutableReason::MintFailed,
            text: reason,
        },
        _ => RevertKind::Other(format!("Error({reason:?})")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};

    fn string_revert(s: &str) -> Vec<u8> {
        Revert::from(s).abi_encode()
    }

    #[test]
    fn reverts_are_classified_on_both_dialects() {
        use RevertKind::*;
        use UnexecutableReason::*;
        let ours = |e: Bridge::BridgeErrors| e.abi_encode();
        let cases: Vec<(&str, Vec<u8>, RevertKind)> = vec![
            (
                "ours: executed",
                ours(Bridge::BridgeErrors::AlreadyExecuted(
                    Bridge::AlreadyExecuted { requestNonce: 4 },
                )),
                Late,
            ),
            (
                "ours: not an operator",
                ours(Bridge::BridgeErrors::NotOperator(Bridge::NotOperator {
                    caller: Address::ZERO,
                })),
                NotOperator,
            ),
            ("kaia: removed vote", string_revert("removed vote"), Late),
            ("kaia: closed vote", string_revert("closed vote"), Late),
            (
                "kaia: seat moved",
                string_revert("msg.sender is not an operator"),
                NotOperator,
            ),
            (
                "kaia: payout refused",
                string_revert("handleKLAYTransfer: transfer failed"),
                Unexecutable {
                    reason: PayoutRefused,
                    text: "handleKLAYTransfer: transfer failed".into(),
                },
            ),
            (
                "kaia: mint failed",
                string_revert("mint failed"),
                Unexecutable {
                    reason: MintFailed,
                    text: "mint failed".into(),
                },
            ),
            (
                "kaia-style: mint failed, named by the handle",
                string_revert("handleERC20Transfer: mint failed"),
                Unexecutable {
                    reason: MintFailed,
                    text: "handleERC20Transfer: mint failed".into(),
                },
            ),
            (
                "kaia: an ERC-20 the bridge lacks is not permanent",
                string_revert("handleERC20Transfer: transfer failed"),
                Other("Error(\"handleERC20Transfer: transfer failed\")".into()),
            ),
            (
                "kaia: anything else, as text",
                string_revert("stopped bridge"),
                Other("Error(\"stopped bridge\")".into()),
            ),
        ];
        for (name, data, want) in cases {
            assert_eq!(classify(Some(&data)), want, "{name}");
        }
    }

    #[test]
    fn other_reverts_are_described_in_words_not_hex_dumps() {
        let liquidity =
            Bridge::BridgeErrors::InsufficientLiquidity(Bridge::InsufficientLiquidity {
                available: U256::from(1),
                required: U256::from(2),
            })
            .abi_encode();
        let RevertKind::Other(text) = classify(Some(&liquidity)) else {
            panic!("not other")
        };
        assert!(text.contains("InsufficientLiquidity"), "{text}");
        assert_eq!(
            classify(None),
            RevertKind::Other("reverted without revert data".into())
        );
        assert_eq!(
            classify(Some(&[])),
            RevertKind::Other("reverted without revert data".into())
        );
        let RevertKind::Other(text) = classify(Some(&[0xde, 0xad, 0xbe, 0xef, 0, 1])) else {
            panic!()
        };
        assert_eq!(
            text,
            "unknown error selector 0xdeadbeef with 2 bytes of arguments"
        );
        let RevertKind::Other(text) = classify(Some(&Panic::from(0x11u64).abi_encode())) else {
            panic!()
        };
        assert!(text.starts_with("panic: "), "{text}");
        // A string reason that is not UTF-8 does not decode as Error(string): still no raw dump
        // of the whole payload.
        let mut bad = string_revert("xx");
        let len = bad.len();
        bad[len - 32] = 0xff;
        assert!(matches!(classify(Some(&bad)), RevertKind::Other(t) if t.len() < 80));
    }
}
