//! Errors of chain access, and how a provider error is classified: an endpoint fault (fail over)
//! or an answer (return it).

use alloy::primitives::Bytes;
use alloy::transports::RpcError;
use alloy::transports::TransportErrorKind;
use std::time::Duration;

/// What went wrong talking to a chain. Endpoints are always named by their redacted URL.
///
/// How to act on it:
/// - [`ChainError::Reverted`] and [`ChainError::Rpc`] are the node's *answer* (a revert, "nonce
///   too low", …): retrying elsewhere would give the same answer.
/// - [`ChainError::AllEndpointsFailed`] (its `errors` are [`ChainError::Timeout`] /
///   [`ChainError::Transport`] / [`ChainError::InvalidResponse`]) is transient: back off and retry.
/// - [`ChainError::ChainIdMismatch`], [`ChainError::NoEndpoints`], [`ChainError::InvalidUrl`] are
///   configuration errors: fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("{chain}: no RPC endpoint configured")]
    NoEndpoints { chain: String },

    #[error("{chain}: endpoint {endpoint}: {reason}")]
    InvalidUrl {
        chain: String,
        endpoint: String,
        reason: String,
    },

    #[error(
        "{chain}: endpoint {endpoint} serves chain id {got}, but chain id {expected} is configured; \
         fix the endpoint URL or the chain id in the config"
    )]
    ChainIdMismatch {
        chain: String,
        endpoint: String,
        expected: u64,
        got: u64,
    },

    #[error("{chain}: none of the {} endpoint(s) could be reached at start: {}", errors.len(), join(errors))]
    NoEndpointReachable {
        chain: String,
        errors: Vec<ChainError>,
    },

    #[error("{endpoint}: {method} timed out after {timeout:?}")]
    Timeout {
        endpoint: String,
        method: &'static str,
        timeout: Duration,
    },

    #[error("{endpoint}: {method}: {message}")]
    Transport {
        endpoint: String,
        method: &'static str,
        message: String,
    },

    /// The endpoint said "slow down" (HTTP 429, JSON-RPC -32005 "rate limit", …): it works,
    /// but is paused for `retry_after` (its `Retry-After`, or the agent's own backoff).
    #[error("{endpoint}: {method}: rate-limited{}: {message}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        endpoint: String,
        method: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },

    #[error("{endpoint}: {method}: invalid response: {message}")]
    InvalidResponse {
        endpoint: String,
        method: &'static str,
        message: String,
    },

    #[error("{chain}: {method} failed on every endpoint: {}", join(errors))]
    AllEndpointsFailed {
        chain: String,
        method: &'static str,
        errors: Vec<ChainError>,
    },

    /// The EVM reverted (`eth_call`, `eth_estimateGas`): `data` is the revert data (may be empty).
    #[error("{endpoint}: {method} reverted: {message} (data {data})")]
    Reverted {
        endpoint: String,
        method: &'static str,
        message: String,
        data: Bytes,
    },

    /// The endpoint refused an `eth_getLogs` as spanning too many blocks or matching too many
    /// logs (Infura's -32005 "query returned more than 10000 results", QuickNode's -32602
    /// "limited to a 100 range", Alchemy's "Log response size exceeded", geth's "block range is
    /// too wide", …). An answer about the request, not a fault of the endpoint: the range reader
    /// ([`crate::chain::LogRangeReader`]) asks again with a narrower window; nothing fails over.
    #[error("{endpoint}: {method}: log query capped by the provider (JSON-RPC {code}): {message}")]
    LogsCapped {
        endpoint: String,
        method: &'static str,
        code: i64,
        message: String,
        /// The raw `data` member, if any (Infura puts a suggested range there).
        data: Option<String>,
    },

    /// Even the logs of one block exceed what the provider returns in one answer: the block
    /// cannot be read through this endpoint. Nothing is skipped; the reader stops before it.
    #[error(
        "{chain}: the logs of block {block} alone exceed what the RPC provider returns in one \
         eth_getLogs answer ({message}); the range cannot be read past block {block} through it. \
         Add an endpoint without a result cap (or with a higher one) for this chain"
    )]
    LogsOverflow {
        chain: String,
        block: u64,
        message: String,
    },

    /// Any other JSON-RPC error answer (e.g. `nonce too low`, `already known`).
    #[error("{endpoint}: {method}: JSON-RPC error {code}: {message}")]
    Rpc {
        endpoint: String,
        method: &'static str,
        code: i64,
        message: String,
        /// The raw `data` member, if any.
        data: Option<String>,
    },

    /// The request could not be built, or an answer could not be decoded locally (ABI
    /// mismatch, unsupported feature): not the endpoint's fault.
    #[error("{method}: {message}")]
    Local {
        method: &'static str,
        message: String,
    },

    #[error("{chain}: stopped by shutdown")]
    Shutdown { chain: String },

    /// A broadcast held back: the client's sends are held (`ChainClient::hold_sends`) and no
    /// bridge check has passed since the last RPC failover (the endpoint now answering may
    /// serve another deployment). Nothing was sent after the failover; wait for
    /// `ChainClient::sends_opened` and send again.
    #[error("{chain}: {method} held: the bridge is not verified since the last RPC failover")]
    SendsHeld { chain: String, method: &'static str },
}

fn join(errors: &[ChainError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("[{}]", parts.join("; "))
}

impl ChainError {
    /// The revert data of a reverted call or gas estimate.
    pub fn revert_data(&self) -> Option<&Bytes> {
        match self {
            ChainError::Reverted { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The JSON-RPC error code of an error answer.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            ChainError::Rpc { code, .. } | ChainError::LogsCapped { code, .. } => Some(*code),
            ChainError::Reverted { .. } => Some(3),
            _ => None,
        }
    }

    /// True for failures that may go away by retrying later (no endpoint answered).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ChainError::Timeout { .. }
                | ChainError::Transport { .. }
                | ChainError::RateLimited { .. }
                | ChainError::InvalidResponse { .. }
                | ChainError::AllEndpointsFailed { .. }
                | ChainError::NoEndpointReachable { .. }
        )
    }

    /// True if this is, or (for [`ChainError::AllEndpointsFailed`]) contains, a timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            ChainError::Timeout { .. } => true,
            ChainError::AllEndpointsFailed { errors, .. } => errors.iter().any(|e| e.is_timeout()),
            _ => false,
        }
    }

    /// True if this is, or (for [`ChainError::AllEndpointsFailed`] and
    /// [`ChainError::NoEndpointReachable`]) contains, a rate limit.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            ChainError::RateLimited { .. } => true,
            ChainError::AllEndpointsFailed { errors, .. }
            | ChainError::NoEndpointReachable { errors, .. } => {
                errors.iter().any(|e| e.is_rate_limited())
            }
            _ => false,
        }
    }

    /// The error messages that an endpoint or its answer carried, for matching on text.
    pub(crate) fn messages(&self) -> Vec<&str> {
        match self {
            ChainError::Transport { message, .. }
            | ChainError::RateLimited { message, .. }
            | ChainError::InvalidResponse { message, .. }
            | ChainError::Rpc { message, .. }
            | ChainError::LogsCapped { message, .. } => vec![message.as_str()],
            ChainError::AllEndpointsFailed { errors, .. } => {
                errors.iter().flat_map(|e| e.messages()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Whether a node's error text says a log query spans too many blocks or matches too many logs
/// (the texts of Infura, Alchemy, QuickNode, geth, Erigon and BSC-style nodes).
pub(crate) fn is_log_cap(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "query returned more than",
        "block range",
        "range too large",
        "range is too large",
        "range too wide",
        "range is too wide",
        "too many blocks",
        "too many results",
        "too many logs",
        "response size",
        "exceeds max results",
        "limited to a",
        "max range",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Whether a JSON-RPC error answer means "slow down" rather than an answer about the request.
///
/// Codes: 429 (as some providers put it in JSON-RPC), -32005 (Infura's "limit exceeded"; but
/// geth-style nodes use the same code for "query returned more than 10000 results", a log-range
/// cap the windowed log fetch handles by shrinking its window, so that text is excluded), and
/// the provider-specific -32016 / -32012 / -32007 when their text says so. Texts: "rate limit",
/// "too many requests", "… limit exceeded" (except gas), "exceeded … quota / rate / capacity".
/// A revert (code 3) is never a rate limit, whatever its reason string says.
pub fn is_rate_limit_answer(code: i64, message: &str) -> bool {
    if code == 3 || is_log_cap(message) {
        return false;
    }
    let m = message.to_ascii_lowercase();
    if m.contains("execution reverted") {
        return false;
    }
    let texts = [
        "rate limit",
        "ratelimit",
        "rate-limit",
        "too many requests",
        "request limit reached",
        "credits limited",
        "quota exceeded",
        "exceeded the quota",
        "exceeded quota",
        "capacity exceeded",
        "rate exceeded",
        "exceeded the rate",
    ];
    let limit_exceeded = m.contains("limit exceeded") && !m.contains("gas");
    match code {
        429 | -32005 => true,
        _ => limit_exceeded || texts.iter().any(|t| m.contains(t)),
    }
}

/// How one attempt on one endpoint ended, when it did not return a value.
#[derive(Debug)]
pub enum Failure {
    /// The endpoint is at fault (unreachable, HTTP error, temporarily unavailable): try the next.
    Endpoint(String),
    /// The endpoint asked to be called less often: pause it (for `retry_after` if it said),
    /// without counting it as broken.
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The endpoint answered something that is not a valid JSON-RPC answer: try the next.
    InvalidResponse(String),
    /// The endpoint answered, with an error: return it to the caller.
    Answer(Answer),
    /// The endpoint refused a log query as too wide or too large: the caller's problem (it
    /// narrows its window), not the endpoint's health.
    Capped {
        code: i64,
        message: String,
        data: Option<String>,
    },
}

/// An error answer of a healthy endpoint.
#[derive(Debug)]
pub enum Answer {
    Reverted {
        message: String,
        data: Bytes,
    },
    Rpc {
        code: i64,
        message: String,
        data: Option<String>,
    },
    Local(String),
}

/// Errors that [`crate::chain::ChainClient::run`] can classify. Implemented for alloy's transport
/// error and for `alloy::contract::Error` (so `sol!` contract calls can run with failover).
pub trait ClassifyError {
    fn classify(self) -> Failure;
}

impl ClassifyError for RpcError<TransportErrorKind> {
    fn classify(self) -> Failure {
        match self {
            RpcError::ErrorResp(payload) => {
                if is_rate_limit_answer(payload.code, &payload.message) {
                    return Failure::RateLimited {
                        message: format!("{} ({})", payload.message, payload.code),
                        retry_after: None,
                    };
                }
                // "Too many results / too wide a range" is an answer about the request (the
                // range reader shrinks its window), even when the code says "limit".
                if payload.code != 3 && is_log_cap(&payload.message) {
                    return Failure::Capped {
                        code: payload.code,
                        message: payload.message.to_string(),
                        data: payload.data.map(|d| d.get().to_owned()),
                    };
                }
                if payload.is_retry_err() {
                    return Failure::Endpoint(format!(
                        "rate-limited or temporarily unavailable: {} ({})",
                        payload.message, payload.code
                    ));
                }
                let message = payload.message.to_string();
                if let Some(data) = payload.as_revert_data() {
                    return Failure::Answer(Answer::Reverted { message, data });
                }
                if payload.code == 3 || message.contains("execution reverted") {
                    return Failure::Answer(Answer::Reverted {
                        message,
                        data: Bytes::new(),
                    });
                }
                Failure::Answer(Answer::Rpc {
                    code: payload.code,
                    message,
                    data: payload.data.map(|d| d.get().to_owned()),
                })
            }
            RpcError::Transport(kind) => {
                let http = kind.as_http_error().map(|h| h.status);
                let retry_after = kind.retry_after();
                let message = with_sources(&kind);
                if http == Some(429)
                    || (retry_after.is_some() && http.is_some_and(|s| s >= 400))
                    || message.contains("429 Too Many Requests")
                {
                    Failure::RateLimited {
                        message,
                        retry_after,
                    }
                } else {
                    Failure::Endpoint(message)
                }
            }
            RpcError::NullResp => Failure::InvalidResponse("null result".into()),
            RpcError::DeserError { err, text } => {
                let text: String = text.chars().take(200).collect();
                Failure::InvalidResponse(format!("undecodable ({err}): {text}"))
            }
            e @ (RpcError::SerError(_)
            | RpcError::LocalUsageError(_)
            | RpcError::UnsupportedFeature(_)) => Failure::Answer(Answer::Local(e.to_string())),
        }
    }
}

/// An error's text followed by its causes (`a: b: c`), each said once. reqwest's "error sending
/// request for url (…)" says nothing of why; its sources do ("connection refused").
pub(crate) fn with_sources(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    // Bounded: a cyclic or very deep chain would otherwise never end.
    for _ in 0..8 {
        let Some(e) = next else { break };
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

impl ClassifyError for alloy::contract::Error {
    fn classify(self) -> Failure {
        match self {
            alloy::contract::Error::TransportError(e) => e.classify(),
            other => Failure::Answer(Answer::Local(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::transports::TransportErrorKind;

    #[test]
    fn rate_limit_answers_table() {
        let cases: &[(i64, &str, bool)] = &[
            (-32005, "rate limit exceeded", true),
            (-32005, "limit exceeded", true),
            (429, "Too Many Requests", true),
            (-32000, "Too many requests, please slow down", true),
            (-32016, "over rate limit", true),
            (-32007, "100/second request limit reached", true),
            (-32000, "daily request quota exceeded", true),
            // A log-range cap shares the code but is an answer about the query.
            (-32005, "query returned more than 10000 results", false),
            (-32000, "exceeds block gas limit", false),
            (-32000, "gas limit exceeded", false),
            (3, "execution reverted: rate limit exceeded", false),
            (-32000, "execution reverted: too many requests", false),
            (-32000, "nonce too low", false),
            (-32601, "method not found", false),
        ];
        for &(code, message, want) in cases {
            assert_eq!(
                is_rate_limit_answer(code, message),
                want,
                "{code} {message}"
            );
        }
    }

    #[test]
    fn log_caps_are_answers_about_the_query_not_endpoint_faults() {
        let capped: &[(i64, &str)] = &[
            (-32005, "query returned more than 10000 results"),
            (
                -32602,
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K \
                 block range and no limit on the response size, or you can request any block \
                 range with a cap of 10K logs in the response",
            ),
            (-32602, "eth_getLogs is limited to a 10000 range"),
            (-32602, "eth_getLogs is limited to a 100 range"),
            (-32000, "query returned more than 10000 results"),
            (-32000, "block range is too wide"),
            (-32000, "exceed maximum block range: 5000"),
        ];
        // The payload type is alloy-json-rpc's, not re-exported: built from its JSON.
        let answer = |code: i64, message: &str| {
            RpcError::<TransportErrorKind>::ErrorResp(
                serde_json::from_value(serde_json::json!({ "code": code, "message": message }))
                    .unwrap(),
            )
        };
        for &(code, message) in capped {
            match answer(code, message).classify() {
                Failure::Capped { code: c, .. } => assert_eq!(c, code, "{message}"),
                other => panic!("{code} {message}: {other:?}"),
            }
        }
        // A revert whose reason happens to say "block range" is a revert.
        assert!(matches!(
            answer(3, "execution reverted: block range").classify(),
            Failure::Answer(Answer::Reverted { .. })
        ));
    }

    #[test]
    fn http_429_is_a_rate_limit_with_its_retry_after() {
        let e = TransportErrorKind::http_error_with_retry_after(
            429,
            "Too Many Requests".into(),
            Some(Duration::from_secs(2)),
        );
        match e.classify() {
            Failure::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
        let e = TransportErrorKind::http_error(429, String::new());
        assert!(matches!(
            e.classify(),
            Failure::RateLimited {
                retry_after: None,
                ..
            }
        ));
        // A plain server error is an endpoint fault, not a rate limit.
        let e = TransportErrorKind::http_error(500, "boom".into());
        assert!(matches!(e.classify(), Failure::Endpoint(_)));
    }

    #[test]
    fn causes_are_printed_once_each() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("Connection refused (os error 111)")]
        struct Inner;
        let e = TransportErrorKind::custom(Outer(Inner));
        match e.classify() {
            Failure::Endpoint(m) => assert_eq!(
                m,
                "error sending request: Connection refused (os error 111)"
            ),
            other => panic!("{other:?}"),
        }
    }
}
