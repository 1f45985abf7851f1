//! Chain access against real anvil chains: failover, chain-id check, timeouts on a stalled
//! endpoint, head following over WebSocket and by polling, WebSocket reconnection, windowed logs,
//! URL redaction, and rate limits (HTTP 429 with `Retry-After`, JSON-RPC -32005) served by a
//! real HTTP proxy in front of anvil, and the per-endpoint request budget.
//!
//! Every server here listens on 127.0.0.1 only; every wait is bounded by a timeout.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use bridge_agent::chain::{
    Backoff, ChainAccessConfig, ChainClient, ChainError, HeadSource, HeadStream, SensitiveUrl,
};
use bridge_devkit::devnet::{Anvil, AnvilOptions, locate_anvil};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[path = "support/rate_limit.rs"]
mod rate_limit;
use rate_limit::RateLimitProxy;

const TIMEOUT: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(20);

// ---- helpers ------------------------------------------------------------------------------

fn anvil(dir: &tempfile::TempDir, name: &str, chain_id: u64) -> Anvil {
    let bin = locate_anvil().expect("anvil installed (./scripts/setup)");
    Anvil::spawn(
        &bin,
        dir.path(),
        &AnvilOptions {
            name: name.into(),
            chain_id,
            port: 0,
            block_time: None,
            accounts: 2,
        },
    )
    .expect("anvil starts")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bridge-chain-access-")
        .tempdir()
        .expect("temp dir")
}

/// A loopback URL where nothing listens.
async fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn url(s: &str) -> SensitiveUrl {
    s.parse().expect("valid url")
}

fn config(chain_id: u64, rpc: &[&str]) -> ChainAccessConfig {
    let mut c = ChainAccessConfig::new("test", chain_id, rpc.iter().map(|s| url(s)).collect());
    c.rpc_timeout = TIMEOUT;
    c.poll_interval = Duration::from_millis(150);
    c.endpoint_backoff = Backoff {
        initial: Duration::from_secs(5),
        max: Duration::from_secs(30),
    };
    c.ws_backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
    };
    c
}

/// A raw JSON-RPC call to anvil, outside the client under test.
async fn rpc(url: &str, method: &'static str, params: serde_json::Value) -> serde_json::Value {
    let p = ProviderBuilder::new().connect_http(url.parse().unwrap());
    p.raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

async fn mine(url: &str, blocks: u64) {
    rpc(
        url,
        "anvil_mine",
        serde_json::json!([format!("0x{blocks:x}")]),
    )
    .await;
}

/// Waits (bounded) for a head at or above `number`; returns the last head seen.
async fn head_at_least(heads: &mut HeadStream, number: u64) -> bridge_agent::chain::Head {
    tokio::time::timeout(WAIT, async {
        loop {
            let h = heads.next().await.expect("head stream running");
            if h.number >= number {
                return h;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no head >= {number} within {WAIT:?}"))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the test proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pass bytes both ways.
    Forward,
    /// Accept and read, never answer (existing connections stop answering too).
    Stall,
    /// Close every connection, and new ones at once.
    Refuse,
}

/// A TCP proxy on 127.0.0.1 in front of an upstream (or of nothing, for a pure stall). Dropping
/// it stops every task it started.
struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    conns: Arc<Mutex<CancellationToken>>,
    shutdown: CancellationToken,
}

impl Proxy {
    async fn start(upstream: Option<SocketAddr>, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(mode)),
            conns: Arc::new(Mutex::new(CancellationToken::new())),
            shutdown: CancellationToken::new(),
        };
        let (mode, conns, shutdown) = (
            proxy.mode.clone(),
            proxy.conns.clone(),
            proxy.shutdown.clone(),
        );
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let conn_cancel = conns.lock().unwrap().clone();
                let (mode, shutdown) = (mode.clone(), shutdown.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = conn_cancel.cancelled() => {}
                        _ = serve(stream, upstream, mode) => {}
                    }
                });
            }
        });
        proxy
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
        if m == Mode::Refuse {
            let mut conns = self.conns.lock().unwrap();
            conns.cancel();
            *conns = CancellationToken::new();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.conns.lock().unwrap().cancel();
    }
}

/// One proxied connection; ends when either side closes (the caller bounds it by cancellation).
async fn serve(mut client: TcpStream, upstream: Option<SocketAddr>, mode: Arc<Mutex<Mode>>) {
    let current = *mode.lock().unwrap();
    let upstream = match (current, upstream) {
        (Mode::Refuse, _) => return,
        (Mode::Forward, Some(addr)) => match TcpStream::connect(addr).await {
            Ok(s) => Some(s),
            Err(_) => return,
        },
        _ => None,
    };
    let Some(upstream) = upstream else {
        // Stall: swallow what comes, never answer, until the client or the test gives up.
        let mut buf = [0u8; 4096];
        while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let to_upstream = async {
        let mut buf = [0u8; 16384];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if *mode.lock().unwrap() != Mode::Forward {
                // Stalled from now on: read and drop until the connection ends.
                while matches!(cr.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            if uw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let to_client = async {
        let _ = tokio::io::copy(&mut ur, &mut cw).await;
    };
    tokio::select! {
        _ = to_upstream => {}
        _ = to_client => {}
    }
}

// ---- tests --------------------------------------------------------------------------------

#[tokio::test]
async fn urls_are_redacted_in_config_and_errors() {
    let secret = url("https://alice:hunter22@rpc.example.com:8545/v3/APIKEY123?token=QQQ999");
    let shown = [format!("{secret}"), format!("{secret:?}")];
    let mut cfg = config(1, &[]);
    cfg.rpc = vec![secret.clone()];
    cfg.ws = Some(url("wss://bob:pw12345@ws.example.com/ws/APIKEY123"));
    let debug = format!("{cfg:?}");
    for text in shown.iter().chain([&debug]) {
        for s in ["alice", "hunter22", "APIKEY123", "QQQ999", "bob", "pw12345"] {
            assert!(!text.contains(s), "{s} leaked in {text}");
        }
        assert!(text.contains("example.com"), "{text}");
    }
    assert_eq!(
        secret.to_string(),
        "https://rpc.example.com:8545/[redacted]"
    );
    assert_eq!(
        secret.expose().as_str(),
        "https://alice:hunter22@rpc.example.com:8545/v3/APIKEY123?token=QQQ999"
    );

    // An error from a real connection attempt (reqwest quotes the URL) is scrubbed too.
    let dead = dead_url()
        .await
        .replace("http://", "http://carol:s3cret99@")
        + "/key/K3Y777?x=Y888";
    let err = ChainClient::connect(config(1, &[&dead]))
        .await
        .expect_err("nothing listens");
    let text = err.to_string();
    assert!(
        matches!(err, ChainError::NoEndpointReachable { ref errors, .. } if errors.len() == 1),
        "{err:?}"
    );
    for s in ["carol", "s3cret99", "K3Y777", "Y888"] {
        assert!(!text.contains(s), "{s} leaked in {text}");
        assert!(!format!("{err:?}").contains(s), "{s} leaked in {err:?}");
    }
    assert!(text.contains("rpc[0] http://127.0.0.1:"), "{text}");
}

#[tokio::test]
async fn config_errors_are_reported() {
    assert!(matches!(
        ChainClient::connect(config(1, &[])).await,
        Err(ChainError::NoEndpoints { .. })
    ));
    let err = ChainClient::connect(config(1, &["ws://127.0.0.1:1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::InvalidUrl { .. }), "{err}");

    let (a, b) = (dead_url().await, dead_url().await);
    let err = ChainClient::connect(config(1, &[&a, &b]))
        .await
        .unwrap_err();
    match &err {
        ChainError::NoEndpointReachable { errors, .. } => {
            assert_eq!(errors.len(), 2);
            assert!(errors.iter().all(|e| e.is_transient()));
        }
        other => panic!("expected NoEndpointReachable, got {other:?}"),
    }
    assert!(
        err.to_string().contains("none of the 2 endpoint(s)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_id_mismatch_is_fatal_and_names_the_endpoint() {
    let dir = tempdir();
    let good = anvil(&dir, "good", 31_001);
    let wrong = anvil(&dir, "wrong", 31_002);
    let err = ChainClient::connect(config(31_001, &[&good.rpc_url(), &wrong.rpc_url()]))
        .await
        .expect_err("mismatch is fatal");
    assert_eq!(
        err,
        ChainError::ChainIdMismatch {
            chain: "test".into(),
            endpoint: format!("rpc[1] {}/", wrong.rpc_url()),
            expected: 31_001,
            got: 31_002,
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("serves chain id 31002, but chain id 31001 is configured"),
        "{text}"
    );

    // The same check on the WebSocket endpoint.
    let cfg = config(31_001, &[&good.rpc_url()]).with_ws(Some(url(&wrong.ws_url())));
    let err = ChainClient::connect(cfg)
        .await
        .expect_err("ws mismatch is fatal");
    assert!(
        matches!(err, ChainError::ChainIdMismatch { got: 31_002, ref endpoint, .. } if endpoint.starts_with("ws ws://127.0.0.1:")),
        "{err:?}"
    );

    // And a correct config connects.
    let client = ChainClient::connect(config(31_001, &[&good.rpc_url()]))
        .await
        .unwrap();
    assert_eq!(client.chain_id(), 31_001);
    assert_eq!(client.fetch_chain_id().await.unwrap(), 31_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_at_start_is_skipped_and_not_hammered() {
    let dir = tempdir();
    let live = anvil(&dir, "live", 31_003);
    let dead = dead_url().await;
    let client = ChainClient::connect(config(31_003, &[&dead, &live.rpc_url()]))
        .await
        .expect("one endpoint is enough");
    for _ in 0..5 {
        assert_eq!(client.block_number().await.unwrap(), 0);
    }
    let s = client.endpoint_stats();
    assert_eq!(
        (s[0].requests, s[0].errors),
        (1, 1),
        "dead one tried once: {s:?}"
    );
    assert!(s[0].cooling_down && s[0].score < s[1].score, "{s:?}");
    assert_eq!(s[1].requests, 6, "{s:?}");
    assert_eq!(s[1].score, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_endpoint_takes_over_when_the_first_anvil_is_killed() {
    let dir = tempdir();
    let first = anvil(&dir, "first", 31_004);
    let second = anvil(&dir, "second", 31_004);
    // Tell the two apart by height.
    mine(&second.rpc_url(), 7).await;
    let client = ChainClient::connect(config(31_004, &[&first.rpc_url(), &second.rpc_url()]))
        .await
        .unwrap();
    assert_eq!(
        client.block_number().await.unwrap(),
        0,
        "first endpoint preferred"
    );

    drop(first); // kills the process
    let started = Instant::now();
    assert_eq!(
        client.block_number().await.unwrap(),
        7,
        "answered by the second"
    );
    assert!(
        started.elapsed() < TIMEOUT,
        "refused connection fails over at once"
    );
    let s = client.stats();
    assert_eq!(s.failovers, 1, "{s:?}");
    assert_eq!(s.endpoints[0].failovers, 1);
    assert_eq!(s.endpoints[0].errors, 1);
    assert!(
        s.endpoints[0].score < 100 && s.endpoints[0].cooling_down,
        "{s:?}"
    );

    // While it cools down, calls go straight to the second.
    let addr = second.dev_accounts()[0].address();
    assert!(client.balance(addr).await.unwrap() > U256::ZERO);
    assert_eq!(client.block_by_number(7).await.unwrap().unwrap().number, 7);
    assert_eq!(
        client
            .transaction_count(addr, bridge_agent::chain::BlockTag::Pending)
            .await
            .unwrap(),
        0
    );
    let s = client.endpoint_stats();
    assert_eq!(s[0].requests, 3, "{s:?}"); // chain-id check, first call, the failed one
    assert_eq!(s[1].successes, 1 + 4, "{s:?}"); // chain-id check + 4 calls
}

/// `bridge_chain_reachable` and `/readyz` follow the chain: unknown before the first call, 1
/// while an endpoint answers, 0 once a call failed on every endpoint, 1 again when it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_reachable_goes_to_zero_when_cut_and_back_to_one() {
    use bridge_agent::config::Side;
    use bridge_agent::metrics::{AgentMetrics, NotReady};
    let dir = tempdir();
    let chain = anvil(&dir, "reach", 31_015);
    let upstream: SocketAddr = format!("127.0.0.1:{}", chain.port()).parse().unwrap();
    let proxy = Proxy::start(Some(upstream), Mode::Forward).await;
    let client = ChainClient::connect(config(31_015, &[&proxy.url("http")]))
        .await
        .unwrap();
    let metrics = AgentMetrics::new();
    client.report_reach_to(metrics.chain(Side::Parent).reachability());
    let sample = |m: &AgentMetrics| {
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix("bridge_chain_reachable{chain=\"parent\"} "))
            .map(str::to_owned)
    };
    let parent_reasons = |m: &AgentMetrics| -> Vec<NotReady> {
        m.not_ready()
            .into_iter()
            .filter(|r| {
                matches!(
                    r,
                    NotReady::ChainUnreachable(Side::Parent)
                        | NotReady::ChainNotYetReached(Side::Parent)
                )
            })
            .collect()
    };
    assert_eq!(sample(&metrics).as_deref(), Some("0"));
    assert_eq!(
        parent_reasons(&metrics),
        vec![NotReady::ChainNotYetReached(Side::Parent)]
    );

    client.block_number().await.unwrap();
    assert_eq!(sample(&metrics).as_deref(), Some("1"));
    assert_eq!(parent_reasons(&metrics), vec![]);

    proxy.set_mode(Mode::Refuse);
    assert!(client.block_number().await.is_err());
    assert_eq!(sample(&metrics).as_deref(), Some("0"));
    assert_eq!(
        parent_reasons(&metrics),
        vec![NotReady::ChainUnreachable(Side::Parent)]
    );

    // Its only endpoint still cools down, but is tried: the chain is reachable again.
    proxy.set_mode(Mode::Forward);
    client.block_number().await.unwrap();
    assert_eq!(sample(&metrics).as_deref(), Some("1"));
    assert_eq!(parent_reasons(&metrics), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_endpoint_times_out_and_fails_over() {
    let dir = tempdir();
    let chain = anvil(&dir, "stall", 31_005);
    let upstream: SocketAddr = format!("127.0.0.1:{}", chain.port()).parse().unwrap();

    // A listener that accepts and never answers, from the start: connect still succeeds.
    let mute = Proxy::start(None, Mode::Stall).await;
    let started = Instant::now();
    let client = ChainClient::connect(config(31_005, &[&mute.url("http"), &chain.rpc_url()]))
        .await
        .expect("the second endpoint answers");
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(900),
        "{took:?}"
    );
    assert_eq!(client.endpoint_stats()[0].timeouts, 1);

    // An endpoint that works, then stalls mid-life (keep-alive connection included).
    let proxy = Proxy::start(Some(upstream), Mode::Forward).await;
    let client = ChainClient::connect(config(31_005, &[&proxy.url("http"), &chain.rpc_url()]))
        .await
        .unwrap();
    mine(&chain.rpc_url(), 2).await;
    assert_eq!(client.block_number().await.unwrap(), 2);
    assert_eq!(client.endpoint_stats()[0].successes, 2, "proxy preferred");

    proxy.set_mode(Mode::Stall);
    let started = Instant::now();
    assert_eq!(
        client.block_number().await.unwrap(),
        2,
        "answered after failover"
    );
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(900),
        "{took:?}"
    );
    let s = client.endpoint_stats();
    assert_eq!((s[0].timeouts, s[0].failovers), (1, 1), "{s:?}");
    assert!(s[0].score < s[1].score, "{s:?}");

    // The stalled endpoint cools down: the next call does not wait for it.
    let started = Instant::now();
    assert_eq!(client.block_number().await.unwrap(), 2);
    assert!(started.elapsed() < TIMEOUT / 2);
    assert_eq!(client.endpoint_stats()[0].requests, s[0].requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverts_and_rpc_errors_are_answers_not_failovers() {
    let dir = tempdir();
    let chain = anvil(&dir, "answers", 31_006);
    let client = ChainClient::connect(config(31_006, &[&chain.rpc_url(), &chain.rpc_url()]))
        .await
        .unwrap();

    // A contract that reverts with one 32-byte word of data.
    let word = B256::repeat_byte(0xab);
    let mut code = vec![0x7f];
    code.extend_from_slice(word.as_slice());
    code.extend_from_slice(&[0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xfd]);
    let reverter = Address::repeat_byte(0x42);
    rpc(
        &chain.rpc_url(),
        "anvil_setCode",
        serde_json::json!([reverter, Bytes::from(code)]),
    )
    .await;
    let tx = TransactionRequest::default().to(reverter);

    let err = client.call(tx.clone()).await.expect_err("reverts");
    assert_eq!(
        err.revert_data(),
        Some(&Bytes::copy_from_slice(word.as_slice())),
        "{err:?}"
    );
    let err = client.estimate_gas(tx).await.expect_err("reverts");
    assert!(matches!(err, ChainError::Reverted { .. }), "{err:?}");
    let err = client
        .send_raw_transaction(&[0xde, 0xad])
        .await
        .expect_err("garbage tx");
    assert!(matches!(err, ChainError::Rpc { .. }), "{err:?}");
    assert!(!err.is_transient());

    // A call that succeeds returns the contract's output.
    let ok = client
        .call(TransactionRequest::default().to(Address::repeat_byte(0x43)))
        .await
        .unwrap();
    assert!(ok.is_empty());

    let s = client.stats();
    assert_eq!(s.failovers, 0, "{s:?}");
    assert_eq!(s.endpoints[0].rpc_errors, 3, "{s:?}");
    assert_eq!((s.endpoints[0].errors, s.endpoints[0].score), (0, 100));
    assert_eq!(s.endpoints[1].requests, 1, "only the chain-id check: {s:?}");

    // The fee calls work on anvil.
    assert!(client.gas_price().await.unwrap() > 0);
    let _tip = client.max_priority_fee().await.unwrap();
    assert!(client.base_fee().await.unwrap().is_some());
    let history = client.fee_history(1, &[50.0]).await.unwrap();
    assert!(!history.base_fee_per_gas.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_stream_follows_websocket_subscription() {
    let dir = tempdir();
    let chain = anvil(&dir, "ws", 31_007);
    let cfg = config(31_007, &[&chain.rpc_url()]).with_ws(Some(url(&chain.ws_url())));
    // Polling far slower than the test, so heads can only come from the subscription.
    let cfg = ChainAccessConfig {
        poll_interval: Duration::from_secs(60),
        ..cfg
    };
    let client = ChainClient::connect(cfg).await.unwrap();
    let shutdown = CancellationToken::new();
    let mut heads = client.new_heads(&shutdown);
    let first = head_at_least(&mut heads, 0).await;
    assert_eq!(first.number, 0);
    wait_for("ws subscription", || {
        heads.source() == HeadSource::WebSocket
    })
    .await;

    mine(&chain.rpc_url(), 3).await;
    let h = head_at_least(&mut heads, 3).await;
    assert_eq!((h.number, h.source), (3, HeadSource::WebSocket));
    let block = client.block_by_number(3).await.unwrap().unwrap();
    assert_eq!(h.hash, block.hash);
    assert_eq!(heads.stats().ws_connects, 1);

    shutdown.cancel();
    let end = tokio::time::timeout(WAIT, heads.next()).await.unwrap();
    assert_eq!(end, None, "shutdown ends the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_stream_polls_without_websocket_or_when_it_is_down() {
    let dir = tempdir();
    let chain = anvil(&dir, "poll", 31_008);
    let dead_ws = dead_url().await.replace("http://", "ws://");
    for ws in [None, Some(url(&dead_ws))] {
        let configured = ws.is_some();
        let client = ChainClient::connect(config(31_008, &[&chain.rpc_url()]).with_ws(ws))
            .await
            .expect("an unreachable ws is only a warning");
        let shutdown = CancellationToken::new();
        let mut heads = client.new_heads(&shutdown);
        let start = head_at_least(&mut heads, 0).await.number;
        mine(&chain.rpc_url(), 2).await;
        let h = head_at_least(&mut heads, start + 2).await;
        assert_eq!((h.number, h.source), (start + 2, HeadSource::Polling));
        let stats = heads.stats();
        assert_eq!(stats.ws_connects, 0);
        assert!(stats.polls >= 2);
        if configured {
            assert!(stats.ws_failures >= 1, "{stats:?}");
        }
        heads.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_reconnects_after_the_endpoint_comes_back() {
    let dir = tempdir();
    let chain = anvil(&dir, "reconnect", 31_009);
    let upstream: SocketAddr = format!("127.0.0.1:{}", chain.port()).parse().unwrap();
    let proxy = Proxy::start(Some(upstream), Mode::Forward).await;
    let cfg = config(31_009, &[&chain.rpc_url()]).with_ws(Some(url(&proxy.url("ws"))));
    let client = ChainClient::connect(cfg).await.unwrap();
    let shutdown = CancellationToken::new();
    let mut heads = client.new_heads(&shutdown);
    wait_for("ws subscription", || {
        heads.source() == HeadSource::WebSocket
    })
    .await;

    // The WebSocket goes away: heads keep coming by polling.
    proxy.set_mode(Mode::Refuse);
    wait_for("ws loss noticed", || heads.source() == HeadSource::Polling).await;
    mine(&chain.rpc_url(), 1).await;
    let h = head_at_least(&mut heads, 1).await;
    assert_eq!(h.source, HeadSource::Polling);
    // Refused reconnections back off (100 ms doubling to 800 ms) rather than spin.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failures = heads.stats().ws_failures;
    assert!(
        (2..=8).contains(&failures),
        "{failures} reconnect failures in 1.5 s"
    );

    // It comes back: the subscription is re-established and delivers again.
    proxy.set_mode(Mode::Forward);
    wait_for("ws reconnect", || heads.stats().ws_connects == 2).await;
    mine(&chain.rpc_url(), 1).await;
    let h = head_at_least(&mut heads, 2).await;
    assert_eq!((h.number, h.source), (2, HeadSource::WebSocket));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_fetched_in_windows_and_streamed() {
    let dir = tempdir();
    let chain = anvil(&dir, "logs", 31_010);
    // A contract that emits one LOG0 per call.
    let logger = Address::repeat_byte(0x77);
    rpc(
        &chain.rpc_url(),
        "anvil_setCode",
        serde_json::json!([logger, "0x60006000a000"]),
    )
    .await;
    let from = chain.dev_accounts()[0].address();
    let rpc_url = chain.rpc_url();
    let emit = || {
        let rpc_url = rpc_url.clone();
        async move {
            rpc(
                &rpc_url,
                "eth_sendTransaction",
                serde_json::json!([{ "from": from, "to": logger, "gas": "0x20000" }]),
            )
            .await;
        }
    };
    for _ in 0..5 {
        emit().await; // automine: one block, one log each
    }
    let mut cfg = config(31_010, &[&chain.rpc_url()]);
    cfg.log_window = 2;
    let client = ChainClient::connect(cfg).await.unwrap();
    let head = client.block_number().await.unwrap();
    assert_eq!(head, 5);
    let filter = Filter::new().address(logger);
    let logs = client.get_logs_range(&filter, 0, head).await.unwrap();
    let blocks: Vec<u64> = logs.iter().map(|l| l.block_number.unwrap()).collect();
    assert_eq!(blocks, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        client.endpoint_stats()[0].requests,
        1 + 1 + 3,
        "3 windows of <= 2 blocks"
    );

    // The stream: contiguous windows up to the head, then new logs as they come.
    let shutdown = CancellationToken::new();
    let mut stream = client.log_stream(filter, 0, &shutdown);
    let mut seen = Vec::new();
    let mut next_from = 0;
    let collect = async {
        while seen.len() < 6 {
            let batch = stream.next().await.expect("running").expect("no rpc error");
            assert_eq!(batch.from, next_from);
            assert!(
                batch.to >= batch.from && batch.to - batch.from < 2,
                "{batch:?}"
            );
            next_from = batch.to + 1;
            seen.extend(batch.logs.iter().map(|l| l.block_number.unwrap()));
            if seen.len() == 5 && next_from == 6 {
                emit().await;
            }
        }
    };
    tokio::time::timeout(WAIT, collect)
        .await
        .expect("logs streamed in time");
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(stream.next_block(), 7);
    shutdown.cancel();
    assert!(
        tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .is_none()
    );
}

// ---- rate limits and pacing -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_calls_wait_and_succeed_without_scoring_the_endpoint_dead() {
    let dir = tempdir();
    let chain = anvil(&dir, "limited", 31_010);
    // One request in two refused: 429 with Retry-After: 1, then -32005, alternately.
    let proxy = RateLimitProxy::start(&chain.rpc_url(), 2, 1).await;
    let mut cfg = config(31_010, &[&proxy.url()]);
    // Without Retry-After (-32005) the pause is the backoff's: keep it short here.
    cfg.rate_limit_backoff = Backoff {
        initial: Duration::from_millis(300),
        max: Duration::from_secs(2),
    };
    let client = ChainClient::connect(cfg)
        .await
        .expect("connects despite limits");
    let started = Instant::now();
    for _ in 0..6 {
        client.block_number().await.expect("answered after waiting");
    }
    let elapsed = started.elapsed();
    let served = proxy.stats();
    assert!(
        served.http_429 >= 1 && served.rpc_32005 >= 1,
        "both kinds of limit served: {served:?}"
    );
    // At least one 429 asked for a 1 s pause, and the client honoured it.
    assert!(
        elapsed >= Duration::from_millis(900),
        "{elapsed:?} {served:?}"
    );
    let s = client.stats();
    let ep = &s.endpoints[0];
    assert_eq!(ep.rate_limited, served.http_429 + served.rpc_32005, "{s:?}");
    assert_eq!(s.rate_limited, ep.rate_limited);
    // Slowed, not dead: full score, no failure counted.
    assert_eq!(
        (ep.score, ep.errors, ep.consecutive_failures),
        (100, 0, 0),
        "{s:?}"
    );
    // Half the attempts limited is not "most".
    assert!(!s.degraded, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_endpoint_yields_to_the_next_and_keeps_its_score() {
    let dir = tempdir();
    let chain = anvil(&dir, "limited-two", 31_011);
    let proxy = RateLimitProxy::start(&chain.rpc_url(), 0, 30).await;
    let client = ChainClient::connect(config(31_011, &[&proxy.url(), &chain.rpc_url()]))
        .await
        .unwrap();
    proxy.refuse_next(1);
    let started = Instant::now();
    client.block_number().await.unwrap();
    client.block_number().await.unwrap();
    // The 30 s Retry-After is not waited for: the second endpoint answers.
    assert!(started.elapsed() < Duration::from_secs(5));
    let s = client.stats();
    let (limited, direct) = (&s.endpoints[0], &s.endpoints[1]);
    assert_eq!(proxy.stats().http_429, 1);
    assert_eq!((limited.rate_limited, limited.score), (1, 100), "{s:?}");
    assert!(limited.rate_limit_paused && !limited.cooling_down, "{s:?}");
    // The paused endpoint is not asked again while paused.
    assert_eq!(
        proxy.stats().requests,
        2,
        "chain-id check + the limited call"
    );
    assert_eq!(direct.successes, 3, "chain-id check + both calls: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_out_rate_limits_on_the_chain_id_check() {
    let dir = tempdir();
    let chain = anvil(&dir, "limited-start", 31_012);
    let proxy = RateLimitProxy::start(&chain.rpc_url(), 0, 1).await;
    proxy.refuse_next(2);
    let mut cfg = config(31_012, &[&proxy.url()]);
    cfg.rate_limit_backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
    };
    let client = ChainClient::connect(cfg)
        .await
        .expect("a rate-limited eth_chainId is waited out, not fatal");
    assert_eq!(proxy.stats().http_429 + proxy.stats().rpc_32005, 2);
    assert_eq!(client.stats().endpoints[0].score, 100);

    // A wrong chain id stays fatal, limits or not.
    proxy.refuse_next(1);
    let err = ChainClient::connect(config(1, &[&proxy.url()]))
        .await
        .expect_err("wrong chain id");
    assert!(matches!(err, ChainError::ChainIdMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_calls_are_mostly_limited_is_degraded_until_they_pass_again() {
    let dir = tempdir();
    let chain = anvil(&dir, "degraded", 31_013);
    let proxy = RateLimitProxy::start(&chain.rpc_url(), 0, 0).await;
    let mut cfg = config(31_013, &[&proxy.url()]);
    // Give up at once instead of waiting for the pause: the caller sees the limit. Short
    // pauses (Retry-After: 0, else 50 ms) so that every call reaches the proxy.
    cfg.rate_limit_wait = Duration::ZERO;
    cfg.rate_limit_backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
    };
    let client = ChainClient::connect(cfg).await.unwrap();
    proxy.set_every(1);
    let mut refused = 0;
    let deadline = Instant::now() + WAIT;
    while refused < 6 {
        assert!(Instant::now() < deadline, "no limit seen");
        match client.block_number().await {
            Err(e) => {
                assert!(e.is_rate_limited() && e.is_transient(), "{e}");
                refused += 1;
            }
            Ok(_) => panic!("every request is refused"),
        }
        // Wait out the pause so the next call reaches the proxy again.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let served = proxy.stats();
    assert_eq!(served.http_429 + served.rpc_32005, 6, "{served:?}");
    assert!(client.is_degraded(), "{:?}", client.stats());
    assert!(client.stats().degraded);
    let text = client.block_number().await.unwrap_err().to_string();
    assert!(text.contains("rate-limited"), "{text}");

    // The provider lets calls through again: once most recent calls pass, not degraded.
    proxy.set_every(0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    for _ in 0..10 {
        client.block_number().await.unwrap();
    }
    assert!(!client.is_degraded(), "{:?}", client.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_holds_the_request_budget() {
    let dir = tempdir();
    let chain = anvil(&dir, "paced", 31_014);
    let proxy = RateLimitProxy::start(&chain.rpc_url(), 0, 1).await;
    let mut cfg = config(31_014, &[&proxy.url()]);
    cfg.requests_per_second = 10;
    let client = ChainClient::connect(cfg).await.unwrap();
    // The chain-id check took one token; let the bucket refill.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proxy.stats().requests;
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let c = client.clone();
        calls.spawn(async move { c.block_number().await });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(proxy.stats().requests - before, 30);
    // 10 at once (a full bucket), then the other 20 at 10 a second: about 2 s, not less.
    assert!(elapsed >= Duration::from_millis(1850), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// A client whose sends are held (the agent's, until its bridge check passes): a send that
/// fails over goes nowhere after the failover, and waits for the gate to open again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_holds_sends_until_the_bridge_is_verified_again() {
    use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy::eips::eip2718::Encodable2718;
    use alloy::primitives::TxKind;
    use alloy::signers::SignerSync;
    use bridge_agent::chain::BlockTag;
    let dir = tempdir();
    let first = anvil(&dir, "first", 31_011);
    let second = anvil(&dir, "second", 31_011);
    let client = ChainClient::connect(config(31_011, &[&first.rpc_url(), &second.rpc_url()]))
        .await
        .unwrap();
    assert!(client.sends_open(), "a client nobody holds sends freely");
    client.hold_sends();
    assert!(!client.sends_open(), "held until a check passes");
    client.open_sends(client.stats().failovers);
    assert!(client.sends_open());

    let key = second.dev_accounts()[0].clone();
    let from = key.address();
    let tx = TxEip1559 {
        chain_id: 31_011,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::repeat_byte(0x22)),
        value: U256::from(1),
        input: Bytes::new(),
        access_list: Default::default(),
    };
    let sig = key.sign_hash_sync(&tx.signature_hash()).unwrap();
    let raw: Bytes = TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into();
    let on_second = || client.transaction_count(from, BlockTag::Pending);

    drop(first); // the send's first attempt fails; its failover must not reach the second
    let held = client.send_raw_transaction(&raw).await;
    assert!(
        matches!(held, Err(ChainError::SendsHeld { .. })),
        "{held:?}"
    );
    assert_eq!(client.stats().failovers, 1);
    assert_eq!(on_second().await.unwrap(), 0, "nothing reached the second");
    assert!(!client.sends_open(), "still held after the failover");
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.sends_opened().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "opened without a check");
    // A check that began before the failover does not vouch for the second.
    client.open_sends(0);
    assert!(!client.sends_open());
    client.open_sends(client.stats().failovers);
    tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    client.send_raw_transaction(&raw).await.unwrap();
    assert_eq!(on_second().await.unwrap(), 1, "sent once the check passed");
}
