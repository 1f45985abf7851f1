//! The `aws-kms` config section. It names the key and where KMS is; credentials never appear in
//! it (they come from the standard AWS chain: env, profile, SSO, web identity, ECS/IMDS).

use std::fmt;

use serde::Deserialize;

use crate::RetryPolicy;

/// Settings of the AWS KMS backend (`backend = "aws-kms"`).
///
/// ```toml
/// [signer]
/// backend = "aws-kms"
/// key_id = "alias/bridge-operator-1" # key id, key ARN, alias name or alias ARN
/// region = "ap-northeast-2"          # optional: else AWS_REGION / the profile's region
/// # endpoint = "http://127.0.0.1:4599" # optional: a KMS-protocol server (hsm-sim, moto)
/// # call_timeout_ms = 10000          # optional: upper bound of one KMS call
/// # retry = { max_attempts = 5, initial_backoff_ms = 50, max_backoff_ms = 2000 }
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsKmsConfig {
    /// The key: key id, key ARN, `alias/NAME` or alias ARN. At start the signer pins the key
    /// the alias points to, so retargeting the alias later does not change the signing key.
    pub key_id: String,
    /// AWS region; when absent, the standard chain (`AWS_REGION`, profile) decides.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override (`http://127.0.0.1:PORT` for hsm-sim or moto in tests). Must not
    /// carry credentials.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Upper bound of one KMS call (one attempt), in milliseconds.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Retry of transient failures (throttling, KMS internal errors, timeouts). The SDK's own
    /// retry is switched off, so this is the one bounded budget.
    #[serde(default)]
    pub retry: RetryPolicy,
}

pub(crate) fn default_call_timeout_ms() -> u64 {
    10_000
}

impl AwsKmsConfig {
    /// A config for `key_id` with defaults for everything optional.
    pub fn new(key_id: impl Into<String>) -> Self {
        Self {
            key_id: key_id.into(),
            region: None,
            endpoint: None,
            call_timeout_ms: default_call_timeout_ms(),
            retry: RetryPolicy::default(),
        }
    }

    /// Every problem in this section, as `(path, message)`.
    pub fn problems(&self, path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.key_id.trim().is_empty() {
            out.push((
                format!("{path}.key_id"),
                "must name the KMS key (key id, key ARN, alias/NAME or alias ARN)".into(),
            ));
        } else if self.key_id.chars().any(char::is_whitespace) {
            out.push((
                format!("{path}.key_id"),
                "must not contain whitespace".into(),
            ));
        }
        out.extend(location_problems(
            path,
            self.region.as_deref(),
            self.endpoint.as_deref(),
        ));
        if self.call_timeout_ms == 0 {
            out.push((format!("{path}.call_timeout_ms"), "must be positive".into()));
        }
        out.extend(self.retry.problems(&format!("{path}.retry")));
        out
    }
}

/// Problems with a region and endpoint override, shared with the key-management client.
pub(crate) fn location_problems(
    path: &str,
    region: Option<&str>,
    endpoint: Option<&str>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(region) = region
        && (region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        out.push((
            format!("{path}.region"),
            format!("{region:?} is not an AWS region name (e.g. \"ap-northeast-2\")"),
        ));
    }
    if let Some(endpoint) = endpoint {
        let rest = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"));
        match rest {
            // Not echoed: without a scheme it cannot be parsed, so nothing can be redacted.
            None => out.push((
                format!("{path}.endpoint"),
                "must start with http:// or https:// (e.g. \"https://kms.ap-northeast-2.amazonaws.com\")"
                    .into(),
            )),
            Some(rest) => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if authority.contains('@') {
                    out.push((
                        format!("{path}.endpoint"),
                        "must not carry credentials (user:password@); credentials come from \
                         the AWS chain only"
                            .into(),
                    ));
                } else if authority.is_empty() {
                    out.push((format!("{path}.endpoint"), "has no host".into()));
                } else if rest.contains('?') {
                    // The SDK ignores it (and logs it, warning): a query could only leak.
                    out.push((
                        format!("{path}.endpoint"),
                        "must not carry a query string (the AWS SDK ignores it)".into(),
                    ));
                }
            }
        }
    }
    out
}

/// An endpoint URL fit for logs: user info and query string replaced by `REDACTED`.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("REDACTED@{host}"),
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?REDACTED"),
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

impl fmt::Debug for AwsKmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsConfig")
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("call_timeout_ms", &self.call_timeout_ms)
            .field("retry", &self.retry)
            .field("credentials", &"<AWS default chain>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem_reported() {
        let c: AwsKmsConfig = from_json(r#"{"key_id": "alias/op"}"#);
        assert_eq!(c, AwsKmsConfig::new("alias/op"));
        assert!(c.problems("signer").is_empty());

        let mut bad = AwsKmsConfig::new(" ");
        bad.region = Some("eu west".into());
        bad.endpoint = Some("https://AKID:secret@kms.local/".into());
        bad.call_timeout_ms = 0;
        bad.retry.max_attempts = 0;
        let paths: Vec<String> = bad.problems("signer").into_iter().map(|p| p.0).collect();
        assert_eq!(
            paths,
            [
                "signer.key_id",
                "signer.region",
                "signer.endpoint",
                "signer.call_timeout_ms",
                "signer.retry.max_attempts"
            ]
        );
        let mut bad = AwsKmsConfig::new("k");
        bad.endpoint = Some("127.0.0.1:4599".into());
        assert_eq!(bad.problems("s")[0].0, "s.endpoint");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<AwsKmsConfig>(r#"{"key_id": "k", "secret_access_key": "x"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pw@kms.example:443/p?X-Amz-Signature=abc"),
            "https://REDACTED@kms.example:443/p?REDACTED"
        );
        assert_eq!(redact_url("http://127.0.0.1:4599"), "http://127.0.0.1:4599");
        let mut c = AwsKmsConfig::new("k");
        c.endpoint = Some("https://user:pw@kms.example/".into());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw"), "{dbg}");
    }

    fn from_json(json: &str) -> AwsKmsConfig {
        serde_json::from_str(json).unwrap()
    }
}
