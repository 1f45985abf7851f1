//! The AWS KMS JSON wire protocol (`awsJson1_1`), the subset aws-sdk-kms uses for signing keys.
//!
//! A request is `POST /` with `X-Amz-Target: TrentService.<Operation>` and a JSON body;
//! blobs travel as base64 strings. An error is a JSON body `{"__type": "<Code>", "message": …}`
//! with the HTTP status AWS uses for that code; the SDK reads the code from `__type` and its
//! retry classifier decides from the code (throttling) or the status (5xx = transient).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The `X-Amz-Target` prefix of every KMS operation.
pub const TARGET_PREFIX: &str = "TrentService.";
/// Content type of KMS requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The KMS operations the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    CreateKey,
    GetPublicKey,
    Sign,
    DescribeKey,
    ListKeys,
    CreateAlias,
    ListAliases,
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Operation; 7] = [
        Operation::CreateKey,
        Operation::GetPublicKey,
        Operation::Sign,
        Operation::DescribeKey,
        Operation::ListKeys,
        Operation::CreateAlias,
        Operation::ListAliases,
    ];

    /// The operation's name as it appears after `TrentService.`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateKey => "CreateKey",
            Operation::GetPublicKey => "GetPublicKey",
            Operation::Sign => "Sign",
            Operation::DescribeKey => "DescribeKey",
            Operation::ListKeys => "ListKeys",
            Operation::CreateAlias => "CreateAlias",
            Operation::ListAliases => "ListAliases",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Operation::ALL.iter().map(|op| op.as_str()).collect();
                format!(
                    "unknown operation {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// KMS error codes the simulator answers with, genuinely or as injected faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// 400, and classified as throttling (retryable) by the SDK.
    ThrottlingException,
    /// 500: a transient server error.
    #[serde(rename = "KMSInternalException")]
    KmsInternalException,
    /// 503: a transient dependency timeout.
    DependencyTimeoutException,
    /// 400: the key or alias does not exist.
    NotFoundException,
    /// 400: a malformed parameter.
    ValidationException,
    /// 400: the alias exists already.
    AlreadyExistsException,
    /// 400: the key cannot do this (wrong algorithm or usage).
    InvalidKeyUsageException,
    /// 400: a key spec or usage the simulator does not implement.
    UnsupportedOperationException,
    /// 400: the body is not the JSON the operation expects.
    SerializationException,
    /// 400: the `X-Amz-Target` names no operation the simulator serves.
    UnknownOperationException,
    /// 400: the key is disabled or pending deletion (never arises here unless injected).
    #[serde(rename = "KMSInvalidStateException")]
    KmsInvalidStateException,
}

impl ErrorCode {
    /// Every code, in a fixed order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::ThrottlingException,
        ErrorCode::KmsInternalException,
        ErrorCode::DependencyTimeoutException,
        ErrorCode::NotFoundException,
        ErrorCode::ValidationException,
        ErrorCode::AlreadyExistsException,
        ErrorCode::InvalidKeyUsageException,
        ErrorCode::UnsupportedOperationException,
        ErrorCode::SerializationException,
        ErrorCode::UnknownOperationException,
        ErrorCode::KmsInvalidStateException,
    ];

    /// The code as KMS writes it in `__type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ThrottlingException => "ThrottlingException",
            ErrorCode::KmsInternalException => "KMSInternalException",
            ErrorCode::DependencyTimeoutException => "DependencyTimeoutException",
            ErrorCode::NotFoundException => "NotFoundException",
            ErrorCode::ValidationException => "ValidationException",
            ErrorCode::AlreadyExistsException => "AlreadyExistsException",
            ErrorCode::InvalidKeyUsageException => "InvalidKeyUsageException",
            ErrorCode::UnsupportedOperationException => "UnsupportedOperationException",
            ErrorCode::SerializationException => "SerializationException",
            ErrorCode::UnknownOperationException => "UnknownOperationException",
            ErrorCode::KmsInvalidStateException => "KMSInvalidStateException",
        }
    }

    /// The HTTP status AWS KMS answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::KmsInternalException => 500,
            ErrorCode::DependencyTimeoutException => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown KMS error code {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// An error answer: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsError {
    pub code: ErrorCode,
    pub message: String,
}

impl KmsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        KmsError {
            code,
            message: message.into(),
        }
    }

    /// The JSON body KMS sends for an error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.code.as_str(), "message": self.message })
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for KmsError {}

/// Parses a request body into the operation's input shape. Unknown members are ignored, as KMS
/// does (the SDK may send `Tags`, `GrantTokens`, `DryRun`, …).
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, KmsError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::ValidationException
        } else {
            ErrorCode::SerializationException
        };
        KmsError::new(code, format!("cannot read the request: {e}"))
    })
}

/// `CreateKey` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKeyRequest {
    pub key_spec: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub key_usage: Option<String>,
    pub description: Option<String>,
}

/// Input of the operations that name one key (`GetPublicKey`, `DescribeKey`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdRequest {
    pub key_id: String,
}

/// `Sign` input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignRequest {
    pub key_id: String,
    /// Base64 of the message or digest.
    pub message: String,
    #[serde(default)]
    pub message_type: Option<String>,
    pub signing_algorithm: String,
}

/// `ListKeys` and `ListAliases` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
    /// `ListAliases` only: the aliases of this key.
    pub key_id: Option<String>,
}

/// `CreateAlias` input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasRequest {
    pub alias_name: String,
    pub target_key_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_names_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert!("Throttling".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn statuses_are_the_ones_aws_uses() {
        assert_eq!(ErrorCode::ThrottlingException.http_status(), 400);
        assert_eq!(ErrorCode::KmsInternalException.http_status(), 500);
        assert_eq!(ErrorCode::DependencyTimeoutException.http_status(), 503);
        assert_eq!(ErrorCode::NotFoundException.http_status(), 400);
    }

    #[test]
    fn malformed_json_is_a_serialization_error_and_missing_member_a_validation_error() {
        let e = parse::<KeyIdRequest>(b"{not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::SerializationException);
        let e = parse::<KeyIdRequest>(b"{}").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
    }
}
