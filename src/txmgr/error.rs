//! Why a submission did not produce an outcome.

use crate::chain::ChainError;
use bridge_signer::{GuardError, Refused};

/// A submission that ended without [`super::TxOutcome`]: nothing of it is pending any more
/// (its nonce, if it had one, was handed on to later transactions).
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The chain could not be read when it had to be (start, fee or gas estimate): no endpoint
    /// answered, or one answered with an error that is not a revert.
    #[error("{chain}: {what}: {source}")]
    Chain {
        chain: String,
        what: &'static str,
        #[source]
        source: ChainError,
    },
    /// The guard refused to sign (policy or a conflicting vote). Nothing was signed or sent.
    #[error("{chain}: {label}: the guard refused to sign: {source}")]
    Refused {
        chain: String,
        label: String,
        #[source]
        source: Refused,
    },
    /// The guard allowed the transaction but could not sign it (journal or signer failure).
    #[error("{chain}: {label}: signing failed: {source}")]
    Signing {
        chain: String,
        label: String,
        #[source]
        source: GuardError,
    },
    /// The node rejected the signed transaction for a reason that re-sending will not fix.
    #[error("{chain}: {label}: the node rejected the transaction: {source}")]
    Rejected {
        chain: String,
        label: String,
        #[source]
        source: ChainError,
    },
    /// The account nonce kept moving under this manager (another sender on the same key?).
    #[error(
        "{chain}: {label}: gave up after {attempts} nonce resynchronisations; is another \
         process sending from this operator's account?"
    )]
    NonceChurn {
        chain: String,
        label: String,
        attempts: u32,
    },
    /// The job's task panicked or was aborted.
    #[error("{chain}: {label}: submission task failed: {message}")]
    Task {
        chain: String,
        label: String,
        message: String,
    },
    /// The shutdown token fired before the transaction was mined.
    #[error("{chain}: stopped by shutdown")]
    Shutdown { chain: String },
}

impl TxError {
    pub(crate) fn from_guard(chain: &str, label: &str, e: GuardError) -> Self {
        match e {
            GuardError::Refused(source) => TxError::Refused {
                chain: chain.to_owned(),
                label: label.to_owned(),
                source,
            },
            other => TxError::Signing {
                chain: chain.to_owned(),
                label: label.to_owned(),
                source: other,
            },
        }
    }
}

/// What a node's answer to `eth_sendRawTransaction` means for the nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRejection {
    /// The node has this very transaction (e.g. a first attempt that timed out reached it).
    AlreadyKnown,
    /// The nonce is used already (by this tx on a re-send, or by another one).
    NonceTooLow,
    /// There is a gap below the nonce in the node's view.
    NonceTooHigh,
    /// Another transaction with this nonce is pending with fees this one does not beat.
    Underpriced,
    /// Anything else: not a nonce question.
    Other,
}

impl SendRejection {
    /// Classifies by the error text; nodes (geth, erigon, anvil, Kaia) agree on these words.
    pub fn of(e: &ChainError) -> Self {
        let messages: Vec<String> = e
            .messages()
            .iter()
            .map(|m| m.to_ascii_lowercase())
            .collect();
        let any = |needles: &[&str]| {
            messages
                .iter()
                .any(|m| needles.iter().any(|n| m.contains(n)))
        };
        if any(&[
            "already known",
            "known transaction",
            "already imported",
            "alreadyknown",
        ]) {
            SendRejection::AlreadyKnown
        } else if any(&[
            "nonce too low",
            "nonce is too low",
            "oldnonce",
            "nonce too small",
        ]) {
            SendRejection::NonceTooLow
        } else if any(&["nonce too high", "nonce is too high", "nonce gap"]) {
            SendRejection::NonceTooHigh
        } else if any(&["underpriced", "replacement", "fee too low"]) {
            SendRejection::Underpriced
        } else {
            SendRejection::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(message: &str) -> ChainError {
        ChainError::Rpc {
            endpoint: "rpc[0]".into(),
            method: "eth_sendRawTransaction",
            code: -32000,
            message: message.into(),
            data: None,
        }
    }

    #[test]
    fn send_rejections_are_classified() {
        for (message, want) in [
            ("already known", SendRejection::AlreadyKnown),
            ("known transaction: 0xabc", SendRejection::AlreadyKnown),
            (
                "nonce too low: next nonce 5, tx nonce 3",
                SendRejection::NonceTooLow,
            ),
            ("Nonce too high", SendRejection::NonceTooHigh),
            (
                "replacement transaction underpriced",
                SendRejection::Underpriced,
            ),
            ("transaction underpriced", SendRejection::Underpriced),
            (
                "insufficient funds for gas * price + value",
                SendRejection::Other,
            ),
        ] {
            assert_eq!(SendRejection::of(&rpc(message)), want, "{message}");
        }
        let all_failed = ChainError::AllEndpointsFailed {
            chain: "child".into(),
            method: "eth_sendRawTransaction",
            errors: vec![rpc("nonce too low")],
        };
        assert_eq!(SendRejection::of(&all_failed), SendRejection::NonceTooLow);
    }
}
