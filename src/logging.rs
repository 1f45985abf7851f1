//! The log filter every command uses: the operator's directive (the config's `[log] level`, or
//! `RUST_LOG` when set), with third-party modules that print credentials capped.
//!
//! Found by `tests/secrets_redacted.rs` with `level = "trace"`:
//! - alloy's HTTP transport opens a span carrying the **full RPC URL** (API key included), and
//!   every event inside it (hyper's, reqwest's, alloy's) prints that span's fields;
//! - tungstenite prints the WebSocket handshake request line, query string included;
//! - at `debug`/`trace` the AWS SDK prints the resolved credentials' access key id, the request
//!   being signed and the endpoint it resolved.
//!
//! Nothing an operator needs is lost: the agent logs which endpoint (redacted) or which KMS call
//! failed, and why.

use tracing_subscriber::EnvFilter;

/// `(target, most verbose level allowed)`, whatever the directive says, so that
/// `level = "trace"` stays safe. A span is disabled with its target, so the URL-carrying
/// transport spans never reach the output, while those crates' warnings still do.
pub const CAPS: &[(&str, &str)] = &[
    ("alloy_transport_http", "warn"),
    ("alloy_transport_ws", "warn"),
    ("alloy_pubsub", "warn"),
    // The WebSocket handshake's request line, query (API key) included, at trace.
    ("tungstenite", "info"),
    ("tokio_tungstenite", "info"),
    ("aws_config", "info"),
    ("aws_credential_types", "info"),
    ("aws_runtime", "info"),
    ("aws_sigv4", "info"),
    ("aws_smithy_runtime", "info"),
    ("aws_smithy_runtime_api", "info"),
    ("aws_smithy_http_client", "info"),
    ("aws_sdk_kms", "info"),
    ("aws_sdk_sso", "info"),
    ("aws_sdk_ssooidc", "info"),
    ("aws_sdk_sts", "info"),
];

/// `directive` (an `EnvFilter` directive, e.g. `"info,bridge_agent=debug"`) plus the caps.
/// An unparsable directive falls back to `info` (config validation rejects those earlier).
pub fn env_filter(directive: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .parse(directive)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    for (target, level) in CAPS {
        filter = filter.add_directive(
            format!("{target}={level}")
                .parse()
                .expect("a target=level directive parses"),
        );
    }
    filter
}

/// Whether log lines on stderr get ANSI colours: only on a terminal, and not with `NO_COLOR`
/// set. Logs redirected to a file or a journal stay plain text (`grep` finds `WARN`, not
/// `\x1b[33m WARN`).
pub fn ansi_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The directive in force: `RUST_LOG` when set, else `configured`.
pub fn directive(configured: &str) -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| configured.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_even_when_the_directive_asks_for_more() {
        let f = env_filter("trace,aws_sigv4=trace").to_string();
        assert!(f.contains("alloy_transport_http=warn"), "{f}");
        assert!(f.contains("aws_sigv4=info"), "{f}");
        assert!(f.contains("aws_smithy_runtime=info"), "{f}");
        assert!(!f.contains("aws_sigv4=trace"), "{f}");
        assert!(f.contains("trace"), "{f}");
    }
}
