//! A vote mined after another operator's vote executed the transfer reverts with
//! `AlreadyExecuted`; that is normal operation, so it counts
//! `bridge_txs_reverted_total{reason="already_executed"}` and never `reason="unexpected"` (the
//! series `BridgeTxsRevertedUnexpectedly` alerts on). Staged with threshold 1 on our dialect: the
//! child chain stops mining, the agent's vote waits in the pool, a seated stand-in sends the same
//! calldata with a higher tip, and one block mines both, the stand-in's first. Then a vote of
//! its own executes the next nonce and `bridge_upper_handle_nonce` follows the bridge.

use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::TransactionRequest;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;

#[path = "one_agent/mod.rs"]
mod one_agent;
mod support;
use one_agent::{metric, plain, request_native, start, wait_ready};
use support::agent::provision_key;

/// The pending transaction of `from` in the node's pool: (input, max priority fee per gas).
async fn pooled_vote(rpc_url: &str, from: Address) -> Option<(Bytes, u128)> {
    let body =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "txpool_content", "params": []});
    let v: serde_json::Value = reqwest::Client::new()
        .post(rpc_url)
        .json(&body)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let pending = v["result"]["pending"].as_object()?;
    let (_, txs) = pending
        .iter()
        .find(|(addr, _)| addr.eq_ignore_ascii_case(&from.to_string()))?;
    let tx = txs.as_object()?.values().next()?;
    let input: Bytes = tx["input"].as_str()?.parse().ok()?;
    let tip = tx["maxPriorityFeePerGas"]
        .as_str()
        .or(tx["gasPrice"].as_str())?;
    let tip = u128::from_str_radix(tip.trim_start_matches("0x"), 16).ok()?;
    Some((input, tip))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_vote_counts_already_executed_not_unexpected() {
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

    // The child stops mining; the agent's vote for request 0 waits in its pool.
    c.reader().anvil_set_auto_mine(false).await.unwrap();
    request_native(&d, Address::from_word(keccak256("late-vote recipient")), 7).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (input, tip) = loop {
        if let Some(found) = pooled_vote(&c.rpc_url(), operator).await {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the agent's vote never reached the pool:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The stand-in's identical vote outbids it, so the block executes the transfer first.
    let stand_in_tip = tip * 4 + 1_000_000_000;
    let pending = c
        .provider_with(stand_in)
        .send_transaction(
            TransactionRequest::default()
                .with_to(c.bridge)
                .with_input(input)
                .with_gas_limit(2_000_000)
                .with_max_priority_fee_per_gas(stand_in_tip)
                .with_max_fee_per_gas(stand_in_tip + 100_000_000_000),
        )
        .await
        .unwrap();
    c.reader().anvil_mine(Some(1), None).await.unwrap();
    c.reader().anvil_set_auto_mine(true).await.unwrap();
    let r = pending.get_receipt().await.unwrap();
    assert!(r.status(), "the stand-in's vote executes");
    let bridge = Bridge::new(c.bridge, c.reader());
    assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 1);

    let late = "chain=\"child\",reason=\"already_executed\"";
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(port, "bridge_txs_reverted_total", late).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the late vote was not counted already_executed:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The agent's vote was mined in the same block and reverted.
    let block = c
        .reader()
        .get_block_by_number(r.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block.transactions.len(), 2, "both votes in one block");
    let unexpected = "chain=\"child\",reason=\"unexpected\"";
    assert_eq!(
        metric(port, "bridge_txs_reverted_total", unexpected).await,
        0.0
    );
    assert_eq!(
        metric(port, "bridge_votes_skipped_total", "reason=\"late\"").await,
        1.0
    );
    assert!(
        !plain(&agent.log()).contains("alarm=\"vote_reverted\""),
        "{}",
        agent.log()
    );

    // The next request executes by the agent's own vote: the nonce gauges follow the bridge,
    // upperHandleNonce (the highest executed) included.
    request_native(&d, Address::from_word(keccak256("late-vote recipient")), 8).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(port, "bridge_upper_handle_nonce", "parent_to_child").await < 1.0
        || metric(port, "bridge_lower_handle_nonce", "parent_to_child").await < 2.0
    {
        assert!(
            Instant::now() < deadline,
            "nonce gauges did not reach lower 2 / upper 1:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(bridge.upperHandleNonce().call().await.unwrap(), 1);
    assert!(agent.stop().success());
}
