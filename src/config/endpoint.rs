//! RPC and WebSocket endpoint URLs. A node URL often carries an API key (in the path, the
//! query or as `user:password@`), so these never print in full: `Debug` and `Display` show
//! `scheme://host:port` and replace anything after it with `…` (Lighthouse's `SensitiveUrl`).

use std::fmt;

pub use alloy::transports::http::reqwest::Url;

/// A parsed endpoint URL whose printed forms are redacted. [`Endpoint::expose`] gives the full
/// URL to hand to a transport.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(Url);

impl Endpoint {
    /// Wraps a URL already checked by config validation.
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    /// The full URL, secrets included. Do not log it.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The URL's scheme (`http`, `https`, `ws`, `wss`).
    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }

    /// `scheme://host:port`, plus `/…` when the URL has more (path, query, credentials).
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// `scheme://host[:port]`, plus `/…` when the URL has anything else (which may be a secret).
pub(crate) fn redact(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    let more = (url.path() != "/" && !url.path().is_empty())
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    if more {
        out.push_str("/…");
    }
    out
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.redacted())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_forms_hide_paths_queries_and_credentials() {
        let e = |s: &str| Endpoint::new(Url::parse(s).unwrap());
        assert_eq!(
            e("http://127.0.0.1:8545").to_string(),
            "http://127.0.0.1:8545"
        );
        assert_eq!(
            e("http://127.0.0.1:8545/").to_string(),
            "http://127.0.0.1:8545"
        );
        let secret = e("https://u:pw@mainnet.example/v3/KEY123?token=T0K");
        assert_eq!(secret.to_string(), "https://mainnet.example/…");
        let dbg = format!("{secret:?}");
        for s in ["KEY123", "T0K", "pw"] {
            assert!(!dbg.contains(s), "{dbg}");
        }
        assert_eq!(secret.expose().path(), "/v3/KEY123");
    }
}
