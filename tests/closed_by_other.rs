//! A request whose nonce was closed by another request's handle can never execute (issue 12,
//! item 4: after a source reorg deeper than the confirmations the canonical request reuses a
//! nonce that executed for the orphaned one). Staged on our dialect with threshold 1: a seated
//! stand-in key executes nonce 0 with another request tx hash before the real request 0 exists;
//! the agent's vote for the real one is late, the bridge never handled its tx, so the agent
//! warns once with the runbook, counts it in `bridge_unexecutable_requests`, and votes nothing
//! for it over later recovery checks.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;

#[path = "one_agent/mod.rs"]
mod one_agent;
mod support;
use one_agent::{metric, plain, request_native, start, wait_ready};
use support::agent::provision_key;

#[tokio::test(flavor = "multi_thread")]
async fn a_nonce_closed_by_another_request_is_one_warning_and_no_votes() {
    let dir = tempfile::tempdir().unwrap();
    let operator = provision_key(&dir.path().join("hsm")).await;
    let stand_in = alloy::signers::local::PrivateKeySigner::random();
    let (d, agent, port) = start(
        dir.path(),
        Dialect::Ours,
        vec![operator, stand_in.address()],
        1,
    )
    .await;
    wait_ready(port, &agent).await;
    let c = &d.child;
    c.provider_with(d.owner())
        .send_transaction(
            TransactionRequest::default()
                .with_to(stand_in.address())
                .with_value(U256::from(10u128.pow(18))),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // Nonce 0 executed for a request the source no longer has.
    let orphaned = Bridge::handleKLAYTransferCall {
        requestTxHash: keccak256("the orphaned request's tx"),
        from: Address::repeat_byte(0xaa),
        to: Address::repeat_byte(0xbb),
        value: U256::from(1),
        requestedNonce: 0,
        requestedBlockNumber: 1,
        extraData: Bytes::new(),
    }
    .abi_encode();
    let r = c
        .provider_with(stand_in)
        .send_transaction(
            TransactionRequest::default()
                .with_to(c.bridge)
                .with_input(orphaned),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    let bridge = Bridge::new(c.bridge, c.reader());
    assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 1);

    // The canonical request 0, then request 1, which executes normally.
    let to = Address::from_word(keccak256("closed-by-other recipient"));
    request_native(&d, to, 5).await;
    request_native(&d, to, 6).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while bridge.lowerHandleNonce().call().await.unwrap() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "nonce 1 not executed:\n{}",
            agent.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The gauge is read from the store at each recovery check.
    let reason = "reason=\"closed_by_other_request\"";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while metric(port, "bridge_unexecutable_requests", reason).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not counted:\n{}",
            agent.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let log = plain(&agent.log());
    assert_eq!(
        log.matches("alarm=\"request_unexecutable\"").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("reason=\"closed_by_other_request\"")
            && log.contains("A request that can never execute"),
        "{log}"
    );
    // Only nonce 1's vote was sent (nonce 0's was refused by the estimate).
    assert_eq!(c.reader().get_transaction_count(operator).await.unwrap(), 1);
    assert!(agent.stop().success());
}
