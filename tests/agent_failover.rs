//! The real `bridge-agent run` binary with two RPC endpoints for the parent chain, the first
//! behind a proxy the test kills mid-run: the agent goes on through the second, in both
//! directions (reading requests from the parent, and sending its votes to it).

use alloy::primitives::{Address, Bytes, U256, keccak256};
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, Side};

mod support;
use support::agent::{Agent, Endpoints, enc, executed, one_operator_devnet, send, write_config};
use support::proxy::FaultProxy;

/// Sends a native transfer of `value` from `side`'s bridge; returns nothing, the caller knows
/// the nonce (each side's requests are numbered from 0).
async fn native(side: &Side, d: &Devnet, value: u64) {
    let to = Address::from_word(keccak256("failover recipient"));
    send(
        side,
        &d.users()[0],
        side.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(value),
            extraData: Bytes::new(),
        }),
        U256::from(value),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_rpc_endpoint_takes_over_when_the_first_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let d = one_operator_devnet(dir.path()).await;
    let first = FaultProxy::start(&d.parent.rpc_url()).await;
    // No WebSocket for the parent: heads are polled, so every parent read goes through the
    // failover client.
    let parent = Endpoints {
        rpc: vec![first.url("http"), d.parent.rpc_url()],
        ws: None,
    };
    let config = write_config(dir.path(), &d, parent, Endpoints::of(&d.child));
    let agent = Agent::start(&config, dir.path().join("agent.log"));

    native(&d.parent, &d, 11).await;
    executed(&d.child, 0, &agent).await;
    native(&d.child, &d, 12).await;
    executed(&d.parent, 0, &agent).await;

    // The first endpoint's node dies: connections are refused from now on.
    drop(first);
    native(&d.parent, &d, 13).await;
    executed(&d.child, 1, &agent).await;
    native(&d.child, &d, 14).await;
    executed(&d.parent, 1, &agent).await;

    let log = agent.log();
    assert!(
        log.contains("RPC endpoint failed; cooling down"),
        "the first endpoint's failure is logged:\n{log}"
    );
    assert!(agent.stop().success(), "clean exit");
}
