//! Run-time choice of backend: the `[signer]` section of the agent's config.
//!
//! ```toml
//! [signer]
//! backend = "pkcs11"
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token_label = "bridge-operator"
//! key_label = "operator-1"          # or key_id = "0a1b2c…" (hex)
//! pin = { env = "BRIDGE_PKCS11_PIN" } # or pin = { file = "/run/secrets/pkcs11-pin" }
//! sessions = 2                      # optional
//! ```
//!
//! ```toml
//! [signer]
//! backend = "aws-kms"
//! key_id = "alias/bridge-operator-1" # key id, key ARN, alias name or alias ARN
//! region = "ap-northeast-2"          # optional (else AWS_REGION / profile)
//! # endpoint = "http://127.0.0.1:4599" # optional endpoint override (hsm-sim, moto)
//! # credentials: the standard AWS chain only (env, profile, SSO, web identity, ECS/IMDS)
//! ```
//!
//! Each variant sits behind its backend's cargo feature, with its config struct in the
//! backend's module.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::{Signer, SignerError};

/// Which backend signs, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignerConfig {
    /// A PKCS#11 token (`backend = "pkcs11"`).
    #[cfg(feature = "pkcs11")]
    Pkcs11(crate::pkcs11::Pkcs11Config),
    /// A key in AWS KMS (`backend = "aws-kms"`).
    #[cfg(feature = "aws-kms")]
    AwsKms(crate::aws_kms::AwsKmsConfig),
}

impl SignerConfig {
    /// Every problem in this section, each with its path under `path` (e.g. `"signer"`).
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let problems = match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => c.problems(path),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => c.problems(path),
        };
        ConfigError::from_problems(problems)
    }

    /// Validates, reads the secrets, connects to the backend and returns it as the one
    /// run-time signer the agent uses.
    /// Where the section's PIN comes from, if its backend has one (aws-kms has no secret in
    /// its section: credentials come from the AWS chain).
    pub fn pin(&self) -> Option<&crate::PinSource> {
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => Some(&c.pin),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(_) => None,
        }
    }

    pub async fn connect(&self) -> Result<Arc<dyn Signer>, SignerError> {
        self.validate("signer")?;
        match self {
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(c) => Ok(Arc::new(crate::pkcs11::Pkcs11Signer::connect(c).await?)),
            #[cfg(feature = "aws-kms")]
            Self::AwsKms(c) => Ok(Arc::new(crate::aws_kms::AwsKmsSigner::connect(c).await?)),
        }
    }
}

/// One problem in a config section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted path, e.g. `signer.key_label`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// All problems found in a config section, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order found.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    pub(crate) fn from_problems(problems: Vec<(String, String)>) -> Result<(), Self> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(Self {
            problems: problems
                .into_iter()
                .map(|(path, message)| ConfigProblem { path, message })
                .collect(),
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in signer config:", self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.path, p.message)?;
        }
        Ok(())
    }
}
