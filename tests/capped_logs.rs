//! The log range reader behind providers that cap `eth_getLogs` (tests/support/capped.rs in
//! front of anvil): each provider style's block-range and result-count refusals, suggested
//! ranges, re-growing the window, a block too large to read, slow answers, and that a cap is
//! never scored as an endpoint fault.

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, Log};
use bridge_agent::chain::{ChainAccessConfig, ChainClient, ChainError, SensitiveUrl};
use bridge_devkit::devnet::{Anvil, AnvilOptions, locate_anvil};
use std::time::Duration;

#[path = "support/capped.rs"]
mod capped;
use capped::{CappedProxy, Caps, Style};

const CHAIN_ID: u64 = 31_020;
/// A contract that emits three LOG0 per call.
const THREE_LOGS: &str = "0x60006000a060006000a060006000a000";
const LOGGER: Address = Address::repeat_byte(0x77);

struct Chain {
    _dir: tempfile::TempDir,
    anvil: Anvil,
}

impl Chain {
    async fn start() -> Chain {
        let dir = tempfile::Builder::new()
            .prefix("bridge-capped-logs-")
            .tempdir()
            .expect("temp dir");
        let bin = locate_anvil().expect("anvil installed (./scripts/setup)");
        let anvil = Anvil::spawn(
            &bin,
            dir.path(),
            &AnvilOptions {
                name: "capped".into(),
                chain_id: CHAIN_ID,
                port: 0,
                block_time: None,
                accounts: 1,
            },
        )
        .expect("anvil starts");
        let chain = Chain { _dir: dir, anvil };
        chain
            .rpc("anvil_setCode", serde_json::json!([LOGGER, THREE_LOGS]))
            .await;
        chain
    }

    fn url(&self) -> String {
        self.anvil.rpc_url()
    }

    async fn rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        let p = ProviderBuilder::new().connect_http(self.url().parse().unwrap());
        p.raw_request(method.into(), params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// `calls` blocks of three logs each.
    async fn emit(&self, calls: u64) {
        let from = self.anvil.dev_accounts()[0].address();
        for _ in 0..calls {
            let hash = self
                .rpc(
                    "eth_sendTransaction",
                    serde_json::json!([{ "from": from, "to": LOGGER, "gas": "0x20000" }]),
                )
                .await;
            // Automine answers before the block exists: wait for it (bounded), so the next
            // block mined is the next one and the test reads what it wrote.
            let mut mined = false;
            for _ in 0..200 {
                let receipt = self
                    .rpc("eth_getTransactionReceipt", serde_json::json!([hash]))
                    .await;
                if !receipt.is_null() {
                    mined = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(mined, "transaction {hash} mined within 2 s");
        }
    }

    async fn mine(&self, blocks: u64) {
        self.rpc("anvil_mine", serde_json::json!([format!("0x{blocks:x}")]))
            .await;
    }

    async fn head(&self) -> u64 {
        let head = self.rpc("eth_blockNumber", serde_json::json!([])).await;
        u64::from_str_radix(head.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// Every log of the logger, read from anvil directly (no cap).
    async fn all_logs(&self) -> Vec<(u64, u64)> {
        let p = ProviderBuilder::new().connect_http(self.url().parse().unwrap());
        let logs = p
            .get_logs(&Filter::new().address(LOGGER).from_block(0))
            .await
            .unwrap();
        positions(&logs)
    }
}

fn positions(logs: &[Log]) -> Vec<(u64, u64)> {
    logs.iter()
        .map(|l| (l.block_number.unwrap(), l.log_index.unwrap()))
        .collect()
}

async fn client(urls: &[String], window: u64) -> ChainClient {
    let rpc: Vec<SensitiveUrl> = urls.iter().map(|u| u.parse().unwrap()).collect();
    let mut cfg = ChainAccessConfig::new("capped-test", CHAIN_ID, rpc);
    cfg.rpc_timeout = Duration::from_secs(2);
    cfg.log_window = window;
    ChainClient::connect(cfg).await.expect("connects")
}

fn caps(style: Style) -> Caps {
    Caps {
        style,
        max_span: 0,
        max_results: 0,
        suggest: false,
        delay: Duration::ZERO,
    }
}

/// Logs spread over ~450 blocks: 30 blocks of 3 logs, each after a gap of 14 empty blocks.
async fn spread(chain: &Chain) {
    for _ in 0..30 {
        chain.mine(14).await;
        chain.emit(1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_style_of_block_range_cap_is_read_whole_and_in_order() {
    let chain = Chain::start().await;
    spread(&chain).await;
    let want = chain.all_logs().await;
    assert_eq!(want.len(), 90);
    let head = chain.head().await;
    for (style, suggest) in [
        (Style::Infura, false),
        (Style::Infura, true),
        (Style::Alchemy, true),
        (Style::QuickNode, false),
        (Style::Node, false),
    ] {
        let proxy = CappedProxy::start(
            &chain.url(),
            Caps {
                max_span: 40,
                suggest,
                ..caps(style)
            },
        )
        .await;
        let client = client(&[proxy.url()], 1000).await;
        let logs = client
            .get_logs_range(&Filter::new().address(LOGGER), 0, head)
            .await
            .unwrap_or_else(|e| panic!("{style:?}: {e}"));
        assert_eq!(positions(&logs), want, "{style:?} suggest={suggest}");
        let s = proxy.stats();
        let logs_stats = client.stats().logs;
        assert!(s.refused_span >= 1, "{style:?}: the cap was served");
        assert_eq!(logs_stats.caps, s.refused_span, "{style:?}");
        // A provider that states its block-range cap (QuickNode's and a node's "… 40 range",
        // Alchemy's "up to a 40 block range") costs one refusal, then never again. Infura's
        // suggested range is only a range (its cap counts results): the window re-grows past it.
        if matches!(style, Style::QuickNode | Style::Node | Style::Alchemy) {
            assert_eq!(s.refused_span, 1, "{style:?}: {s:?}");
            assert_eq!(logs_stats.window, 40, "{style:?}");
        }
        let ep = &client.endpoint_stats()[0];
        assert_eq!(
            (ep.errors, ep.timeouts, ep.consecutive_failures),
            (0, 0, 0),
            "{style:?}: a cap is not an endpoint fault"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_count_cap_follows_suggested_ranges_and_the_window_grows_back() {
    let chain = Chain::start().await;
    // Dense first (blocks 1..=40, 3 logs each), then 800 empty blocks, then a few logs.
    chain.emit(40).await;
    chain.mine(800).await;
    chain.emit(2).await;
    let want = chain.all_logs().await;
    let head = chain.head().await;
    assert_eq!(want.len() as u64, 3 * 42, "head {head}");
    for style in [Style::Infura, Style::Alchemy, Style::QuickNode] {
        let proxy = CappedProxy::start(
            &chain.url(),
            Caps {
                max_results: 10,
                suggest: true,
                ..caps(style)
            },
        )
        .await;
        let client = client(&[proxy.url()], 64).await;
        let mut reader = client.log_range(&Filter::new().address(LOGGER), 0, head);
        let mut got = Vec::new();
        let mut next = 0;
        let mut narrowest = u64::MAX;
        while let Some(batch) = reader.next_batch().await {
            let batch = batch.unwrap_or_else(|e| panic!("{style:?}: {e}"));
            assert_eq!(batch.from, next, "{style:?}: batches are contiguous");
            assert!(batch.logs.len() <= 10);
            narrowest = narrowest.min(client.stats().logs.window);
            next = batch.to + 1;
            got.extend(positions(&batch.logs));
        }
        assert_eq!(next, head + 1);
        assert_eq!(got, want, "{style:?}");
        let s = proxy.stats();
        assert!(s.refused_results >= 1, "{style:?}: {s:?}");
        assert!(narrowest <= 3, "{style:?}: narrowed to {narrowest}");
        if style != Style::QuickNode {
            // Infura and Alchemy suggest [from, from + 2] (9 logs): one refusal, then the
            // suggestion holds while the dense blocks last.
            assert_eq!(narrowest, 3, "{style:?}: the suggested range was used");
        }
        // 800 empty blocks later the window is back at its configured max.
        assert_eq!(client.stats().logs.window, 64, "{style:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_over_the_result_cap_stops_the_reader_there_with_a_clear_error() {
    let chain = Chain::start().await;
    chain.mine(20).await;
    chain.emit(1).await; // block 21: three logs
    let proxy = CappedProxy::start(
        &chain.url(),
        Caps {
            max_results: 2,
            ..caps(Style::Infura)
        },
    )
    .await;
    let client = client(&[proxy.url()], 100).await;
    let mut reader = client.log_range(&Filter::new().address(LOGGER), 0, 30);
    let mut covered = Vec::new();
    let err = loop {
        match reader.next_batch().await.expect("not past the block") {
            Ok(b) => {
                assert!(b.logs.is_empty(), "no other logs");
                covered.push((b.from, b.to));
            }
            Err(e) => break e,
        }
    };
    match &err {
        ChainError::LogsOverflow {
            chain,
            block,
            message,
        } => {
            assert_eq!((chain.as_str(), *block), ("capped-test", 21));
            assert_eq!(message, "query returned more than 10000 results");
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("capped-test") && text.contains("block 21"),
        "{text}"
    );
    // Everything before the block was read, nothing at or past it.
    assert_eq!(covered.last().map(|c| c.1), Some(20), "{covered:?}");
    // Asking again asks the same block again: nothing is skipped.
    let again = reader.next_batch().await.expect("still there");
    assert!(
        matches!(again, Err(ChainError::LogsOverflow { block: 21, .. })),
        "{again:?}"
    );
    assert_eq!(client.stats().logs.overflows, 2);
    assert!(
        client
            .get_logs_range(&Filter::new().address(LOGGER), 0, 30)
            .await
            .is_err(),
        "a range holding the block is never returned as complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_capped_endpoint_is_neither_failed_over_nor_cooled_down() {
    let chain = Chain::start().await;
    spread(&chain).await;
    let want = chain.all_logs().await;
    let proxy = CappedProxy::start(
        &chain.url(),
        Caps {
            max_span: 100,
            delay: Duration::from_millis(150),
            ..caps(Style::QuickNode)
        },
    )
    .await;
    // The capped endpoint first, an uncapped one behind it: a cap must not move calls over.
    let client = client(&[proxy.url(), chain.url()], 1000).await;
    let logs = client
        .get_logs_range(&Filter::new().address(LOGGER), 0, 450)
        .await
        .unwrap();
    assert_eq!(positions(&logs), want);
    let stats = client.stats();
    assert_eq!(stats.failovers, 0);
    assert_eq!(proxy.stats().refused_span, 1);
    let eps = client.endpoint_stats();
    assert_eq!(eps[0].consecutive_failures, 0);
    assert_eq!(eps[0].timeouts, 0);
    assert_eq!(
        eps[1].requests, 1,
        "the second endpoint only saw the chain-id check"
    );
    assert!(
        proxy.stats().get_logs >= 6,
        "451 blocks in windows of 100: {:?}",
        proxy.stats()
    );
}
