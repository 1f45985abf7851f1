//! The one mapping from the operator's `[parent]` / `[child]` section to [`ChainAccessConfig`]:
//! every command that talks to a chain (run, status, config check, keys rotate, admin) connects
//! with the same endpoints, WebSocket, timeouts, pacing and log window.

use super::{ChainAccessConfig, SensitiveUrl};
use crate::config::{AgentConfig, Endpoint, Side};

/// How to reach `side`'s chain as configured in `cfg`.
pub fn access_config(cfg: &AgentConfig, side: Side) -> ChainAccessConfig {
    let chain = cfg.chain(side);
    let url = |e: &Endpoint| SensitiveUrl::new(e.expose().clone());
    let mut access = ChainAccessConfig::new(
        side.as_str(),
        chain.chain_id,
        chain.rpc.iter().map(url).collect(),
    )
    .with_ws(chain.ws.as_ref().map(url));
    access.rpc_timeout = chain.rpc_timeout;
    access.poll_interval = chain.poll_interval;
    access.requests_per_second = chain.rpc_requests_per_second;
    access.log_window = cfg.recovery.window_blocks;
    access
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_command_gets_the_whole_section() {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("pin");
        std::fs::write(&pin, "1234\n").unwrap();
        let text = format!(
            r#"
[agent]
data_dir = "{data}"
name = "op"

[signer]
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "bridge"
key_label = "op"
pin = {{ file = "{pin}" }}

[parent]
chain_id = 31001
rpc = ["http://127.0.0.1:8545", "http://127.0.0.1:8547"]
ws = "ws://127.0.0.1:8545"
bridge = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
rpc_timeout_ms = 1500
rpc_requests_per_second = 20

[child]
chain_id = 31002
rpc = ["http://127.0.0.1:8546"]
bridge = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

[recovery]
window_blocks = 250
"#,
            data = dir.path().join("data").display(),
            pin = pin.display(),
        );
        let cfg = crate::config::load_str(&text, std::path::Path::new("agent.toml")).unwrap();
        let parent = access_config(&cfg, Side::Parent);
        assert_eq!((parent.name.as_str(), parent.chain_id), ("parent", 31001));
        assert_eq!(parent.rpc.len(), 2);
        // status and config check once dropped the WebSocket and the pacing.
        assert!(parent.ws.is_some());
        assert_eq!(parent.rpc_timeout, Duration::from_millis(1500));
        assert_eq!(parent.requests_per_second, 20);
        assert_eq!(parent.log_window, 250);
        let child = access_config(&cfg, Side::Child);
        assert!(child.ws.is_none());
        assert_eq!(child.requests_per_second, 0);
    }
}
