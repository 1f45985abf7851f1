//! Errors a caller of [`crate::Signer`] can act on.
//!
//! Each backend has its own enum (e.g. `pkcs11::Pkcs11Error`, `aws_kms::AwsKmsError`);
//! [`SignerError`] wraps them and answers the one question the agent asks: is it worth trying
//! again ([`SignerError::is_transient`])?

/// Why a raw backend signature was not turned into an Ethereum signature. The signature is
/// never returned in any of these cases (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The backend returned something that is not 64 bytes of r‖s.
    #[error("backend returned {0} signature bytes, expected 64 (r||s)")]
    BadLength(usize),
    /// r or s is zero or not below the curve order.
    #[error("backend returned a malformed ECDSA signature (r or s out of range)")]
    Malformed,
    /// Neither recovery id recovers the signer's public key: the signature is over another
    /// digest or by another key.
    #[error("signature does not recover to the signer's key {expected}: wrong key or wrong digest")]
    WrongKey {
        /// The address the signature should have recovered to.
        expected: alloy_primitives::Address,
    },
    /// Recovery matched but verification against the public key failed.
    #[error("signature failed verification against the signer's public key")]
    VerifyFailed,
    /// The public key bytes read from the backend are not a secp256k1 point.
    #[error("public key is not an uncompressed secp256k1 point: {0}")]
    BadPublicKey(String),
}

/// An error from any signing backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The PKCS#11 backend failed.
    #[cfg(feature = "pkcs11")]
    #[error("pkcs11 signer: {0}")]
    Pkcs11(#[from] crate::pkcs11::Pkcs11Error),
    /// The AWS KMS backend failed.
    #[cfg(feature = "aws-kms")]
    #[error("aws-kms signer: {0}")]
    AwsKms(#[from] crate::aws_kms::AwsKmsError),
    /// The backend answered, but its signature did not check out; nothing was returned.
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    /// A PIN could not be read.
    #[error(transparent)]
    Pin(#[from] crate::PinError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
}

impl SignerError {
    /// True for failures that may go away on their own (busy, throttled, session lost,
    /// timeout); false for those that need an operator (wrong PIN, key not found, wrong key
    /// type, missing module, bad signature).
    pub fn is_transient(&self) -> bool {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(e) => e.is_transient(),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(e) => e.is_transient(),
            Self::Signature(_) | Self::Pin(_) | Self::Config(_) => false,
        }
    }
}

impl crate::retry::Transient for SignerError {
    fn is_transient(&self) -> bool {
        SignerError::is_transient(self)
    }
}
