//! Errors of the AWS KMS backend, sorted into what a caller can act on.
//!
//! ```text
//! SdkError ─┬─ TimeoutError, DispatchFailure (io / timeout) ─────────────► Timeout | Unreachable   (transient)
//!           ├─ ServiceError: ThrottlingException ─────────────────────────► Throttled               (transient)
//!           │                KMSInternalException, DependencyTimeout…,
//!           │                KeyUnavailableException, any other 5xx ─────► Unavailable             (transient)
//!           │                NotFoundException ───────────────────────────► KeyNotFound             (permanent)
//!           │                AccessDenied, UnrecognizedClient, bad SigV4 ─► AccessDenied            (permanent)
//!           │                DisabledException, KMSInvalidStateException ─► KeyDisabled             (permanent)
//!           │                InvalidKeyUsageException ────────────────────► WrongKeyUsage           (permanent)
//!           │                anything else (4xx) ──────────────────────────► Rejected                (permanent)
//!           └─ ConstructionFailure, unparseable 4xx response ─────────────► Rejected | BadResponse  (permanent)
//! ```
//!
//! `KMSInvalidStateException` is permanent here: for a signing key it means disabled, pending
//! deletion or pending import, all of which need an operator, not a retry.

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The key spec an Ethereum signing key must have.
pub const EXPECTED_KEY_SPEC: &str = "ECC_SECG_P256K1";
/// The key usage an Ethereum signing key must have.
pub const EXPECTED_KEY_USAGE: &str = "SIGN_VERIFY";

/// An AWS KMS failure. [`AwsKmsError::is_transient`] tells retryable ones apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsKmsError {
    /// `ThrottlingException`: the request rate is above the account's quota.
    #[error("KMS {operation} throttled (ThrottlingException): {message}")]
    Throttled {
        /// The KMS operation, e.g. `Sign`.
        operation: &'static str,
        /// KMS's message.
        message: String,
    },
    /// A server-side error that may go away (`KMSInternalException`,
    /// `DependencyTimeoutException`, `KeyUnavailableException`, any 5xx).
    #[error("KMS {operation} temporarily unavailable ({code}): {message}")]
    Unavailable {
        /// The KMS operation.
        operation: &'static str,
        /// The error code, or the HTTP status if there was none.
        code: String,
        /// KMS's message.
        message: String,
    },
    /// The call did not complete within `call_timeout_ms`.
    #[error("KMS {operation} timed out: {detail}")]
    Timeout {
        /// The KMS operation.
        operation: &'static str,
        /// What timed out.
        detail: String,
    },
    /// The endpoint could not be reached (connection refused or reset, DNS, TLS).
    #[error("KMS {operation}: cannot reach the endpoint: {detail}")]
    Unreachable {
        /// The KMS operation.
        operation: &'static str,
        /// The connector's error.
        detail: String,
    },
    /// No key (or alias) by this name in the region/account.
    #[error(
        "KMS key {key_id:?} not found ({operation}: {message}); check key_id, region and endpoint"
    )]
    KeyNotFound {
        /// The key id, ARN or alias asked for.
        key_id: String,
        /// The KMS operation.
        operation: &'static str,
        /// KMS's message.
        message: String,
    },
    /// The credentials from the AWS chain are missing, invalid or not allowed to use the key.
    #[error(
        "KMS refused {operation} on key {key_id:?} ({code}: {message}); check the credentials of \
         the AWS default chain and the key policy (kms:GetPublicKey, kms:Sign)"
    )]
    AccessDenied {
        /// The key id, ARN or alias.
        key_id: String,
        /// The KMS operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// KMS's message.
        message: String,
    },
    /// The key exists but cannot be used: disabled, pending deletion or pending import.
    #[error(
        "KMS key {key_id:?} cannot be used ({code}: {message}); enable it, cancel its deletion, \
         or configure another key"
    )]
    KeyDisabled {
        /// The key id, ARN or alias.
        key_id: String,
        /// `DisabledException` or `KMSInvalidStateException`.
        code: String,
        /// KMS's message.
        message: String,
    },
    /// The key is not a secp256k1 key, so it cannot make Ethereum signatures.
    #[error(
        "KMS key {key_id:?} has key spec {found}, but an Ethereum signer needs {EXPECTED_KEY_SPEC} \
         (secp256k1); create one with `bridge-agent keys generate --backend aws-kms`"
    )]
    WrongKeySpec {
        /// The key id, ARN or alias.
        key_id: String,
        /// The key spec KMS reported (`<none>` if it reported none).
        found: String,
    },
    /// The key is not a signing key.
    #[error("KMS key {key_id:?} has key usage {found}, but signing needs {EXPECTED_KEY_USAGE}")]
    WrongKeyUsage {
        /// The key id, ARN or alias.
        key_id: String,
        /// The key usage KMS reported, or the code of the error saying so.
        found: String,
    },
    /// Any other refusal (validation errors, unsupported operations, request construction).
    #[error("KMS rejected {operation} ({code}): {message}")]
    Rejected {
        /// The KMS operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// KMS answered, but the answer cannot be used (no public key, not SPKI, not DER).
    #[error("KMS {operation} returned an unusable answer: {reason}")]
    BadResponse {
        /// The KMS operation.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No region in the config or the AWS chain.
    #[error(
        "no AWS region: set `region` in the aws-kms config (or --region), or AWS_REGION in the \
         environment"
    )]
    NoRegion,
    /// The alias name is not one KMS accepts.
    #[error("invalid KMS alias {alias:?}: {reason}")]
    InvalidAlias {
        /// The alias as given.
        alias: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A key was created but its alias was not; the key exists and is usable by id.
    #[error("KMS key {key_id} was created, but alias {alias:?} was not: {reason}")]
    AliasNotCreated {
        /// The new key's id.
        key_id: String,
        /// The alias that failed.
        alias: String,
        /// Why `CreateAlias` failed.
        reason: String,
    },
    /// The config section is invalid (also reported by `SignerConfig::validate`).
    #[error("invalid aws-kms config: {0}")]
    Config(String),
}

impl AwsKmsError {
    /// True for throttling, server-side transient errors, timeouts and unreachable endpoints:
    /// the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Unreachable { .. }
        )
    }

    /// True for `ThrottlingException`.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled { .. })
    }

    /// Sorts an SDK error from `operation` on `key_id`.
    pub(crate) fn from_sdk<E>(operation: &'static str, key_id: &str, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match &err {
            SdkError::TimeoutError(_) => Self::Timeout {
                operation,
                detail: DisplayErrorContext(&err).to_string(),
            },
            SdkError::DispatchFailure(d) if d.is_timeout() => Self::Timeout {
                operation,
                detail: DisplayErrorContext(&err).to_string(),
            },
            SdkError::DispatchFailure(d) if d.is_user() => Self::Rejected {
                operation,
                code: "DispatchFailure".into(),
                message: DisplayErrorContext(&err).to_string(),
            },
            SdkError::DispatchFailure(_) => Self::Unreachable {
                operation,
                detail: DisplayErrorContext(&err).to_string(),
            },
            SdkError::ResponseError(_) if status.is_none_or(|s| s >= 500 || s == 429) => {
                Self::Unavailable {
                    operation,
                    code: status.map_or_else(|| "no status".into(), |s| format!("HTTP {s}")),
                    message: DisplayErrorContext(&err).to_string(),
                }
            }
            SdkError::ResponseError(_) => Self::BadResponse {
                operation,
                reason: DisplayErrorContext(&err).to_string(),
            },
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("<no code>").to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                Self::from_code(operation, key_id, code, message, status)
            }
            // ConstructionFailure (e.g. no credentials in the chain) and future variants.
            _ => Self::Rejected {
                operation,
                code: "request not sent".into(),
                message: DisplayErrorContext(&err).to_string(),
            },
        }
    }

    fn from_code(
        operation: &'static str,
        key_id: &str,
        code: String,
        message: String,
        status: Option<u16>,
    ) -> Self {
        let key_id = key_id.to_owned();
        match code.as_str() {
            "ThrottlingException" => Self::Throttled { operation, message },
            "KMSInternalException"
            | "DependencyTimeoutException"
            | "KeyUnavailableException"
            | "ServiceUnavailableException"
            | "InternalFailure" => Self::Unavailable {
                operation,
                code,
                message,
            },
            "NotFoundException" => Self::KeyNotFound {
                key_id,
                operation,
                message,
            },
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken" => Self::AccessDenied {
                key_id,
                operation,
                code,
                message,
            },
            "DisabledException" | "KMSInvalidStateException" => Self::KeyDisabled {
                key_id,
                code,
                message,
            },
            "InvalidKeyUsageException" => Self::WrongKeyUsage {
                key_id,
                found: format!("unusable for {operation} ({code}: {message})"),
            },
            _ if status.is_some_and(|s| s >= 500) => Self::Unavailable {
                operation,
                code,
                message,
            },
            _ => Self::Rejected {
                operation,
                code,
                message,
            },
        }
    }

    /// Sorts an error of `alloy-signer-aws`.
    pub(crate) fn from_alloy(key_id: &str, err: alloy_signer_aws::AwsSignerError) -> Self {
        use alloy_signer_aws::AwsSignerError as A;
        match err {
            A::Sign(e) => Self::from_sdk("Sign", key_id, e),
            A::GetPublicKey(e) => Self::from_sdk("GetPublicKey", key_id, e),
            A::K256(e) => Self::BadResponse {
                operation: "Sign",
                reason: format!("not a DER ECDSA signature: {e}"),
            },
            A::Spki(e) => Self::BadResponse {
                operation: "GetPublicKey",
                reason: format!("public key is not a secp256k1 SubjectPublicKeyInfo: {e}"),
            },
            A::Hex(e) => Self::BadResponse {
                operation: "Sign",
                reason: e.to_string(),
            },
            A::SignatureNotFound => Self::BadResponse {
                operation: "Sign",
                reason: "no Signature in the answer".into(),
            },
            A::PublicKeyNotFound => Self::BadResponse {
                operation: "GetPublicKey",
                reason: "no PublicKey in the answer".into(),
            },
            A::SignatureRecoveryFailed => Self::BadResponse {
                operation: "Sign",
                reason: "signature does not recover to the key".into(),
            },
        }
    }
}

impl crate::retry::Transient for AwsKmsError {
    fn is_transient(&self) -> bool {
        AwsKmsError::is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str, status: u16) -> AwsKmsError {
        AwsKmsError::from_code("Sign", "alias/k", c.into(), "m".into(), Some(status))
    }

    #[test]
    fn codes_are_sorted_transient_or_permanent() {
        let table = [
            ("ThrottlingException", 400, true),
            ("KMSInternalException", 500, true),
            ("DependencyTimeoutException", 503, true),
            ("KeyUnavailableException", 500, true),
            ("SomethingNew", 502, true),
            ("NotFoundException", 400, false),
            ("AccessDeniedException", 400, false),
            ("UnrecognizedClientException", 400, false),
            ("DisabledException", 400, false),
            ("KMSInvalidStateException", 400, false),
            ("InvalidKeyUsageException", 400, false),
            ("ValidationException", 400, false),
        ];
        for (c, status, transient) in table {
            assert_eq!(code(c, status).is_transient(), transient, "{c}");
        }
        assert!(code("ThrottlingException", 400).is_throttling());
        assert!(matches!(
            code("NotFoundException", 400),
            AwsKmsError::KeyNotFound { ref key_id, .. } if key_id == "alias/k"
        ));
    }

    #[test]
    fn wrong_spec_message_names_key_and_spec() {
        let e = AwsKmsError::WrongKeySpec {
            key_id: "alias/p256".into(),
            found: "ECC_NIST_P256".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("alias/p256") && msg.contains("ECC_NIST_P256"));
        assert!(msg.contains("ECC_SECG_P256K1"));
        assert!(!e.is_transient());
    }
}
