//! The watcher against a real anvil devnet: requests are recorded once with their cursor,
//! confirmations hold back what is not buried deep enough, a restart resumes from the cursor,
//! and a reorg below the confirmation depth halts the direction with a clear message.

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::anvil::ReorgOptions;
use bridge_agent::chain::{ChainAccessConfig, ChainClient};
use bridge_agent::contracts::Bridge;
use bridge_agent::direction::Direction;
use bridge_agent::store::{RequestState, Store};
use bridge_agent::watcher::{WatchError, Watcher, WatcherConfig};
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};
use std::sync::Arc;

const P2C: Direction = Direction::ParentToChild;

async fn devnet(dir: &tempfile::TempDir) -> Devnet {
    Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        ..DevnetOptions::default()
    })
    .await
    .expect("devnet")
}

async fn client(side: &Side) -> ChainClient {
    let cfg = ChainAccessConfig::new(
        "parent",
        side.chain_id,
        vec![side.rpc_url().parse().unwrap()],
    );
    ChainClient::connect(cfg).await.expect("chain client")
}

fn watcher(
    d: &Devnet,
    client: ChainClient,
    store: Arc<Store>,
    confirmations: u64,
    window: u64,
) -> Watcher {
    Watcher::new(
        WatcherConfig {
            direction: P2C,
            bridge: d.parent.bridge,
            start_block: d.parent.bridge_deploy_block,
            confirmations,
            window_blocks: window,
        },
        client,
        store,
    )
}

async fn request(d: &Devnet, i: u64) -> u64 {
    let user = d.users()[0].clone();
    let p = d.parent.provider_with(user);
    let to = Address::from_word(keccak256(i.to_be_bytes()));
    let receipt = Bridge::new(d.parent.bridge, &p)
        .requestKLAYTransfer(to, U256::from(1000 + i), Bytes::new())
        .value(U256::from(1000 + i))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    receipt.block_number.unwrap()
}

#[tokio::test]
async fn records_requests_once_and_resumes_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(&dir).await;
    let store = Arc::new(Store::open(dir.path().join("store.sqlite")).unwrap());
    let c = client(&d.parent).await;
    for i in 0..5 {
        request(&d, i).await;
    }
    let head = c.block_number().await.unwrap();
    // Small windows: the scan takes several steps and must still find everything once.
    let w = watcher(&d, c.clone(), Arc::clone(&store), 0, 3);
    let found = w.catch_up(head).await.unwrap();
    assert_eq!(
        found.iter().map(|r| r.nonce).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(found[2].value_or_id, U256::from(1002));
    let seen = store.requests_in(P2C, RequestState::Seen).unwrap();
    assert_eq!(seen.len(), 5);
    assert_eq!(w.cursor().unwrap().next_block, head + 1);

    // A new watcher on the same store (a restart) finds nothing old, then only the new one.
    let w2 = watcher(&d, c.clone(), Arc::clone(&store), 0, 3);
    assert!(w2.catch_up(head).await.unwrap().is_empty());
    request(&d, 5).await;
    let head = c.block_number().await.unwrap();
    let found = w2.catch_up(head).await.unwrap();
    assert_eq!(found.iter().map(|r| r.nonce).collect::<Vec<_>>(), vec![5]);
}

#[tokio::test]
async fn waits_for_confirmations() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(&dir).await;
    let store = Arc::new(Store::open(dir.path().join("store.sqlite")).unwrap());
    let c = client(&d.parent).await;
    let w = watcher(&d, c.clone(), Arc::clone(&store), 3, 100);
    let block = request(&d, 0).await;
    assert!(
        w.catch_up(block).await.unwrap().is_empty(),
        "0 confirmations so far"
    );
    d.parent.reader().anvil_mine(Some(2), None).await.unwrap();
    assert!(w.catch_up(block + 2).await.unwrap().is_empty(), "2 of 3");
    d.parent.reader().anvil_mine(Some(1), None).await.unwrap();
    let found = w.catch_up(block + 3).await.unwrap();
    assert_eq!(found.len(), 1, "buried under 3 blocks");
}

#[tokio::test]
async fn reorg_below_the_depth_halts_the_direction() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(&dir).await;
    let store = Arc::new(Store::open(dir.path().join("store.sqlite")).unwrap());
    let c = client(&d.parent).await;
    let w = watcher(&d, c.clone(), Arc::clone(&store), 0, 100);
    request(&d, 0).await;
    d.parent.reader().anvil_mine(Some(2), None).await.unwrap();
    let head = c.block_number().await.unwrap();
    assert_eq!(w.catch_up(head).await.unwrap().len(), 1);
    // Replace the last 3 blocks, which the watcher already scanned with 0 confirmations.
    d.parent
        .reader()
        .anvil_reorg(ReorgOptions {
            depth: 3,
            tx_block_pairs: vec![],
        })
        .await
        .unwrap();
    let head = c.block_number().await.unwrap();
    let err = w.catch_up(head).await.unwrap_err();
    assert!(matches!(err, WatchError::Reorg { .. }), "{err}");
    assert!(err.is_fatal());
    let msg = err.to_string();
    assert!(
        msg.contains("reorganised deeper than the configured depth") && msg.contains("stopped"),
        "{msg}"
    );
    // It stays halted: the stored hash is not canonical any more.
    assert!(matches!(
        w.catch_up(head).await,
        Err(WatchError::Reorg { .. })
    ));
}

#[tokio::test]
async fn reorg_within_the_depth_never_reports_the_orphaned_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(&dir).await;
    let store = Arc::new(Store::open(dir.path().join("store.sqlite")).unwrap());
    let c = client(&d.parent).await;
    let w = watcher(&d, c.clone(), Arc::clone(&store), 3, 100);
    let orphan_block = request(&d, 0).await;
    let orphan_hash = c.block_by_number(orphan_block).await.unwrap().unwrap().hash;
    // Not yet confirmed: nothing reported.
    assert!(w.catch_up(orphan_block).await.unwrap().is_empty());
    // The request's block is replaced (within the depth of 3), then a new request is made.
    d.parent
        .reader()
        .anvil_reorg(ReorgOptions {
            depth: 1,
            tx_block_pairs: vec![],
        })
        .await
        .unwrap();
    request(&d, 1).await;
    d.parent.reader().anvil_mine(Some(4), None).await.unwrap();
    let head = c.block_number().await.unwrap();
    let found = w.catch_up(head).await.unwrap();
    assert!(!found.is_empty(), "the replacement request is reported");
    for req in &found {
        let canonical = c
            .block_by_number(req.block_number)
            .await
            .unwrap()
            .unwrap()
            .hash;
        let stored = store.request(P2C, req.nonce).unwrap().unwrap();
        assert_eq!(
            stored.block_hash, canonical,
            "only canonical blocks are recorded"
        );
        assert_ne!(
            stored.block_hash, orphan_hash,
            "the orphaned block is never reported"
        );
    }
    let nonces: Vec<u64> = found.iter().map(|r| r.nonce).collect();
    let mut unique = nonces.clone();
    unique.dedup();
    assert_eq!(nonces, unique, "each nonce once");
}

#[tokio::test]
async fn a_chain_behind_the_cursor_is_waited_for_then_judged_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(&dir).await;
    let store = Arc::new(Store::open(dir.path().join("store.sqlite")).unwrap());
    let c = client(&d.parent).await;
    let w = watcher(&d, c.clone(), Arc::clone(&store), 0, 100);
    request(&d, 0).await;
    d.parent.reader().anvil_mine(Some(3), None).await.unwrap();
    let head = c.block_number().await.unwrap();
    assert_eq!(w.catch_up(head).await.unwrap().len(), 1);

    // The chain loses its last 2 blocks (a lagging endpoint looks the same): not an error,
    // not a reorg yet, just nothing to do.
    d.parent.reader().anvil_rollback(Some(2)).await.unwrap();
    let lower = c.block_number().await.unwrap();
    assert_eq!(lower, head - 2);
    assert!(w.step(lower).await.unwrap().is_none());
    assert_eq!(
        w.stats().behind.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Once the chain is back at the scanned height (through a block with a different
    // transaction), the block there has another hash.
    request(&d, 1).await;
    d.parent.reader().anvil_mine(Some(1), None).await.unwrap();
    let err = w.step(head).await.unwrap_err();
    assert!(matches!(err, WatchError::Reorg { .. }), "{err}");
}
