//! Reorgs of the parent chain with 3 confirmations configured. Within the depth, an orphaned
//! request is never voted: everything executed on the child was requested in a block that is
//! still canonical. Deeper than the depth, every agent halts parent → child with a message an
//! operator can act on, nothing requested afterwards executes that way, and child → parent goes
//! on.

use crate::support::cluster::{Cluster, ClusterOptions, lower_handle_nonce};
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::Filter;
use alloy::rpc::types::anvil::ReorgOptions;
use alloy::sol_types::{SolCall, SolEvent};
use bridge_agent::contracts::Bridge;
use bridge_devkit::demo::traffic::send;
use bridge_devkit::devnet::{Devnet, Side};
use std::time::{Duration, Instant};

const CONFIRMATIONS: u64 = 3;

async fn native(d: &Devnet, side: &Side, to: Address, value: u64) {
    let p = side.provider_with(d.users()[0].clone());
    let call = Bridge::requestKLAYTransferCall {
        to,
        value: U256::from(value),
        extraData: Bytes::new(),
    };
    send(&p, side.bridge, call.abi_encode().into(), U256::from(value))
        .await
        .unwrap();
}

async fn reorg(side: &Side, depth: u64) {
    side.reader()
        .anvil_reorg(ReorgOptions {
            depth,
            tx_block_pairs: vec![],
        })
        .await
        .unwrap();
}

async fn mine(side: &Side, blocks: u64) {
    side.reader().anvil_mine(Some(blocks), None).await.unwrap();
}

/// Every handle executed on the child names a request transaction that is mined in the
/// parent's canonical chain, with the value it asked for.
async fn nothing_orphaned_executed(d: &Devnet) {
    let filter = Filter::new()
        .address(d.child.bridge)
        .from_block(0)
        .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH);
    let parent = d.parent.reader();
    for log in d.child.reader().get_logs(&filter).await.unwrap() {
        let h = log.log_decode::<Bridge::HandleValueTransfer>().unwrap();
        let tx = h.inner.data.requestTxHash;
        let receipt = parent
            .get_transaction_receipt(tx)
            .await
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "handle of nonce {} names an orphaned request {tx}",
                    h.inner.data.handleNonce
                )
            });
        let block = parent
            .get_block_by_number(receipt.block_number.unwrap().into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            Some(block.header.hash),
            receipt.block_hash,
            "request {tx} not canonical"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reorgs_within_the_depth_are_harmless_and_deeper_ones_halt_the_direction() {
    let cluster = Cluster::start(ClusterOptions {
        parent_confirmations: CONFIRMATIONS,
        ..ClusterOptions::default()
    })
    .await;
    let d = cluster.devnet.clone();
    let to = |s: &str| Address::from_word(keccak256(s));

    // Within the depth: the request's block is replaced before it is confirmed.
    native(&d, &d.parent, to("orphan"), 111).await;
    reorg(&d.parent, 1).await;
    native(&d, &d.parent, to("kept"), 222).await;
    mine(&d.parent, CONFIRMATIONS + 1).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lower_handle_nonce(&d.child).await < 1 {
        assert!(Instant::now() < deadline, "{}", cluster.log_tails());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    nothing_orphaned_executed(&d).await;
    let child = d.child.reader();
    assert_eq!(
        child.get_balance(to("kept")).await.unwrap(),
        U256::from(222)
    );

    // Deeper than the depth: a confirmed (and executed) request's block is replaced.
    native(&d, &d.parent, to("deep"), 333).await;
    mine(&d.parent, CONFIRMATIONS).await;
    let executed = lower_handle_nonce(&d.child).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lower_handle_nonce(&d.child).await == executed {
        assert!(Instant::now() < deadline, "{}", cluster.log_tails());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reorg(&d.parent, CONFIRMATIONS + 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &cluster.nodes {
        while !node
            .log_text()
            .contains("reorganised deeper than the configured depth")
        {
            assert!(
                Instant::now() < deadline,
                "op{} did not halt:\n{}",
                node.index + 1,
                node.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Halted: a new parent → child request is not carried; child → parent still is.
    let handled = lower_handle_nonce(&d.child).await;
    native(&d, &d.parent, to("after halt"), 444).await;
    mine(&d.parent, CONFIRMATIONS + 1).await;
    native(&d, &d.child, to("other way"), 555).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lower_handle_nonce(&d.parent).await < 1 {
        assert!(Instant::now() < deadline, "{}", cluster.log_tails());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        lower_handle_nonce(&d.child).await,
        handled,
        "halted direction voted"
    );
    assert_eq!(
        child.get_balance(to("after halt")).await.unwrap(),
        U256::ZERO
    );
    // /readyz says why.
    let port = cluster.nodes[0].metrics_port;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert!(!ready.status().is_success());
    let body = ready.text().await.unwrap();
    assert!(body.contains("halted"), "{body}");
}
