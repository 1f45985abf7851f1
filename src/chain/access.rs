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
