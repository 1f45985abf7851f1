//! [`SensitiveUrl`]: an endpoint URL that never shows its secrets.
//!
//! RPC providers put API keys in the path (`/v3/<key>`), in the query (`?apikey=…`) or in the
//! userinfo (`https://user:pass@host`). Everything the agent prints about an endpoint goes
//! through [`SensitiveUrl`]'s `Display`/`Debug`, which keep only scheme, host and port, and
//! through [`SensitiveUrl::scrub`] for error texts from the HTTP stack (reqwest puts the full URL
//! in its messages).

use std::fmt;
use std::str::FromStr;
use url::Url;

/// Marker printed where parts of a URL were removed.
const REDACTED: &str = "[redacted]";

/// A URL whose `Display` and `Debug` print only `scheme://host:port/`, plus a `[redacted]`
/// marker when userinfo, path or query were dropped. [`SensitiveUrl::expose`] gives the full URL
/// to the code that connects.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SensitiveUrl {
    full: Url,
    redacted: String,
}

impl SensitiveUrl {
    pub fn new(full: Url) -> Self {
        let redacted = redact(&full);
        SensitiveUrl { full, redacted }
    }

    /// The full URL, secrets included: for connecting, never for printing.
    pub fn expose(&self) -> &Url {
        &self.full
    }

    /// The printable form (same as `Display`).
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn scheme(&self) -> &str {
        self.full.scheme()
    }

    /// Removes this URL's secrets from `text` (an error message that may quote the URL).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let full = self.full.as_str();
        // Longest first, so the whole URL is replaced before its parts are. Both spellings (with
        // and without the trailing slash) go through a marker first: replacing the short one
        // after the long one would match inside the replacement (`http://h:1//`).
        const MARK: &str = "\u{1}URL\u{1}";
        out = out.replace(full, MARK);
        out = out.replace(full.trim_end_matches('/'), MARK);
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.full.password() {
            parts.push(p.to_owned());
        }
        if !self.full.username().is_empty() {
            parts.push(self.full.username().to_owned());
        }
        if let Some(q) = self.full.query() {
            parts.push(q.to_owned());
            // A value may be quoted alone (decoded or not).
            for (_, v) in self.full.query_pairs() {
                parts.push(v.into_owned());
            }
            parts.extend(
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(_, v)| v.to_owned()),
            );
        }
        let path = self.full.path();
        if path.len() > 1 {
            parts.push(path.to_owned());
            parts.extend(path.split('/').map(str::to_owned));
        }
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for part in parts {
            // Very short parts (a one-letter user name) would mangle unrelated text.
            if part.len() >= 3 {
                out = out.replace(&part, REDACTED);
            }
        }
        out.replace(MARK, &self.redacted)
    }
}

fn redact(url: &Url) -> String {
    let mut s = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        s.push_str(host);
    }
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push('/');
    let hidden = !url.username().is_empty()
        || url.password().is_some()
        || url.path().len() > 1
        || url.query().is_some()
        || url.fragment().is_some();
    if hidden {
        s.push_str(REDACTED);
    }
    s
}

impl From<Url> for SensitiveUrl {
    fn from(url: Url) -> Self {
        SensitiveUrl::new(url)
    }
}

impl FromStr for SensitiveUrl {
    type Err = url::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s).map(SensitiveUrl::new)
    }
}

impl fmt::Display for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SensitiveUrl({})", self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_table() {
        let cases = [
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545/"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
            (
                "https://user:pw@rpc.example.com/v3/KEY?apikey=K2",
                "https://rpc.example.com/[redacted]",
            ),
            (
                "wss://node.example.org:8546/ws",
                "wss://node.example.org:8546/[redacted]",
            ),
            (
                "https://rpc.example.com?key=abc",
                "https://rpc.example.com/[redacted]",
            ),
        ];
        for (input, want) in cases {
            let u: SensitiveUrl = input.parse().unwrap();
            assert_eq!(u.to_string(), want, "{input}");
            assert_eq!(format!("{u:?}"), format!("SensitiveUrl({want})"));
        }
    }

    #[test]
    fn scrub_removes_every_secret_part() {
        let u: SensitiveUrl = "https://alice:hunter22@rpc.example.com/v3/KEYKEY?apikey=QQQ"
            .parse()
            .unwrap();
        let msg = format!(
            "error sending request for url ({}): connection refused; key QQQ, pw hunter22",
            u.expose()
        );
        let clean = u.scrub(&msg);
        for secret in ["alice", "hunter22", "KEYKEY", "QQQ"] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        assert!(clean.contains("rpc.example.com"));
        assert!(clean.contains("connection refused"));
    }

    #[test]
    fn scrub_prints_a_plain_url_once_without_a_doubled_slash() {
        for input in ["http://127.0.0.1:19261", "http://127.0.0.1:19261/"] {
            let u: SensitiveUrl = input.parse().unwrap();
            let msg = format!("error sending request for url ({})", u.expose());
            assert_eq!(
                u.scrub(&msg),
                "error sending request for url (http://127.0.0.1:19261/)"
            );
            assert_eq!(
                u.scrub("to http://127.0.0.1:19261 and back"),
                "to http://127.0.0.1:19261/ and back"
            );
        }
    }
}
