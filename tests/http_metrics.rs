//! The operator HTTP endpoint over real sockets: `/metrics` content and format, `/readyz`
//! transitions, `/healthz`, 404/405, bounded shutdown, and no endpoint secret in a scrape.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use bridge_agent::chain::{ChainStats, EndpointStats, LogWindowStats, SensitiveUrl};
use bridge_agent::config::Side;
use bridge_agent::direction::Direction;
use bridge_agent::http::{HttpError, HttpServer};
use bridge_agent::metrics::exposition::{Encoder, Kind, Value};
use bridge_agent::metrics::{AgentMetrics, GuardStats, NotReady, Role};
use bridge_signer::health::Health;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

struct Running {
    metrics: Arc<AgentMetrics>,
    server: HttpServer,
    shutdown: CancellationToken,
    client: reqwest::Client,
    base: String,
}

impl Running {
    async fn start() -> Self {
        let metrics = Arc::new(AgentMetrics::new());
        let shutdown = CancellationToken::new();
        let server = HttpServer::bind("127.0.0.1:0", metrics.clone(), shutdown.clone())
            .await
            .expect("bind");
        let base = format!("http://{}", server.local_addr());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Running {
            metrics,
            server,
            shutdown,
            client,
            base,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn scrape(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = r.text().await.unwrap();
        validate_exposition(&text);
        text
    }

    /// Everything healthy: both directions running, both chains reached.
    fn make_ready(&self) {
        for d in Direction::ALL {
            self.metrics.set_direction_running(d);
        }
        for s in Side::ALL {
            self.metrics.set_chain_reachable(s, true);
        }
    }
}

fn has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line {line:?} in:\n{text}"
    );
}

fn endpoint(index: usize, url: &str, requests: u64, score: u32) -> EndpointStats {
    EndpointStats {
        index,
        url: url.to_owned(),
        requests,
        successes: requests,
        rpc_errors: 1,
        errors: 2,
        timeouts: 3,
        failovers: 0,
        rate_limited: 5,
        rate_limit_paused: false,
        score,
        consecutive_failures: 0,
        cooling_down: false,
        last_latency: Duration::from_millis(4),
    }
}

#[tokio::test]
async fn metrics_serves_exact_values() {
    let r = Running::start().await;
    let m = &r.metrics;
    let p2c = m.direction(Direction::ParentToChild);
    p2c.request_nonce.set(42);
    p2c.lower_handle_nonce.set(40);
    p2c.pending_requests.set(2);
    p2c.votes_mined.add(3);
    p2c.votes_failed.inc();
    p2c.requests_seen.add(5);
    p2c.recoveries.add(7);
    p2c.recovery_rescans.inc();
    m.direction(Direction::ChildToParent).reorg_halts.inc();
    m.direction(Direction::ChildToParent)
        .forged_votes_seen
        .add(2);
    m.halt_direction(Direction::ChildToParent, "reorg deeper than 12 blocks");

    // The watcher and recovery rescans count into the same handles.
    p2c.requests_seen.add(10);
    p2c.malformed_logs.inc();

    m.set_balance(
        Side::Parent,
        U256::from(1_500_000_000_000_000_000u128),
        false,
    );
    m.set_balance(Side::Child, U256::from(1000u64), true);
    let child = m.chain(Side::Child);
    child.txs_sent.add(4);
    child.txs_mined.add(3);
    child.txs_replaced.inc();
    child.txs_reverted.inc();
    child.txs_reverted_already_executed.add(2);

    let health = Arc::new(Health::default());
    health.record_success(Duration::from_millis(3));
    health.record_success(Duration::from_millis(300));
    health.record_transient();
    let h = health.clone();
    m.register_signer(Side::Child, move || Some(h.snapshot()));
    m.register_guard(Side::Child, || GuardStats {
        signed: 9,
        same_vote: 1,
        refused: 2,
        conflicting: 1,
    });
    m.register_chain(Side::Parent, || ChainStats {
        chain: "parent".into(),
        chain_id: 1,
        failovers: 6,
        rate_limited: 7,
        degraded: false,
        logs: LogWindowStats {
            window: 250,
            caps: 3,
            overflows: 1,
        },
        endpoints: vec![
            endpoint(0, "http://127.0.0.1:8545/", 11, 100),
            endpoint(1, "http://127.0.0.1:8546/", 12, 40),
        ],
    });

    let text = r.scrape().await;
    for line in [
        "bridge_agent_info{version=\"0.1.0\"} 1",
        "bridge_ready 0",
        "bridge_request_nonce{direction=\"parent_to_child\"} 42",
        "bridge_request_nonce{direction=\"child_to_parent\"} 0",
        "bridge_lower_handle_nonce{direction=\"parent_to_child\"} 40",
        "bridge_pending_requests{direction=\"parent_to_child\"} 2",
        "bridge_votes_mined_total{direction=\"parent_to_child\"} 3",
        "bridge_votes_failed_total{direction=\"parent_to_child\"} 1",
        "bridge_requests_seen_total{direction=\"parent_to_child\"} 15",
        "bridge_malformed_logs_total{direction=\"parent_to_child\"} 1",
        "bridge_reorg_halts_total{direction=\"child_to_parent\"} 1",
        "bridge_recoveries_total{direction=\"parent_to_child\"} 7",
        "bridge_recovery_rescans_total{direction=\"parent_to_child\"} 1",
        "bridge_forged_votes_seen_total{direction=\"child_to_parent\"} 2",
        "bridge_direction_halted{direction=\"parent_to_child\"} 0",
        "bridge_direction_halted{direction=\"child_to_parent\"} 1",
        "bridge_operator_balance_wei{chain=\"parent\"} 1500000000000000000.0",
        "bridge_operator_balance_wei{chain=\"child\"} 1000.0",
        "bridge_operator_balance_low{chain=\"parent\"} 0",
        "bridge_operator_balance_low{chain=\"child\"} 1",
        "bridge_chain_reachable{chain=\"parent\"} 0",
        "bridge_txs_sent_total{chain=\"child\"} 4",
        "bridge_txs_mined_total{chain=\"child\"} 3",
        "bridge_txs_replaced_total{chain=\"child\"} 1",
        "bridge_txs_reverted_total{chain=\"child\",reason=\"unexpected\"} 1",
        "bridge_txs_reverted_total{chain=\"child\",reason=\"already_executed\"} 2",
        "bridge_rpc_failovers_total{chain=\"parent\"} 6",
        "bridge_rpc_rate_limited_total{chain=\"parent\"} 7",
        "bridge_rpc_log_window_blocks{chain=\"parent\"} 250",
        "bridge_rpc_log_caps_total{chain=\"parent\"} 3",
        "bridge_rpc_log_overflows_total{chain=\"parent\"} 1",
        "bridge_rpc_degraded{chain=\"parent\"} 0",
        "bridge_rpc_requests_total{chain=\"parent\",index=\"0\",endpoint=\"http://127.0.0.1:8545/\"} 11",
        "bridge_rpc_requests_total{chain=\"parent\",index=\"1\",endpoint=\"http://127.0.0.1:8546/\"} 12",
        "bridge_rpc_errors_total{chain=\"parent\",index=\"0\",endpoint=\"http://127.0.0.1:8545/\"} 2",
        "bridge_rpc_timeouts_total{chain=\"parent\",index=\"0\",endpoint=\"http://127.0.0.1:8545/\"} 3",
        "bridge_rpc_json_errors_total{chain=\"parent\",index=\"0\",endpoint=\"http://127.0.0.1:8545/\"} 1",
        "bridge_rpc_endpoint_score{chain=\"parent\",index=\"1\",endpoint=\"http://127.0.0.1:8546/\"} 40",
        "bridge_signer_state{chain=\"child\"} 1",
        "bridge_signer_signatures_total{chain=\"child\"} 2",
        "bridge_signer_errors_total{chain=\"child\",kind=\"transient\"} 1",
        "bridge_signer_errors_total{chain=\"child\",kind=\"permanent\"} 0",
        "bridge_signer_latency_seconds_bucket{chain=\"child\",le=\"0.001\"} 0",
        "bridge_signer_latency_seconds_bucket{chain=\"child\",le=\"0.005\"} 1",
        "bridge_signer_latency_seconds_bucket{chain=\"child\",le=\"0.5\"} 2",
        "bridge_signer_latency_seconds_bucket{chain=\"child\",le=\"+Inf\"} 2",
        "bridge_signer_latency_seconds_sum{chain=\"child\"} 0.303",
        "bridge_signer_latency_seconds_count{chain=\"child\"} 2",
        "bridge_guard_signed_total{chain=\"child\"} 9",
        "bridge_guard_same_vote_total{chain=\"child\"} 1",
        "bridge_guard_refused_total{chain=\"child\"} 2",
        "bridge_guard_conflicting_votes_refused_total{chain=\"child\"} 1",
    ] {
        has_line(&text, line);
    }
    // No source registered: the family is described, with no samples.
    has_line(&text, "# TYPE bridge_signer_state gauge");
    assert!(!text.contains("bridge_signer_state{chain=\"parent\"}"));
    assert!(!text.contains("bridge_rpc_requests_total{chain=\"child\""));

    // Counters move between scrapes.
    p2c.votes_mined.inc();
    health.record_permanent();
    let text = r.scrape().await;
    has_line(
        &text,
        "bridge_votes_mined_total{direction=\"parent_to_child\"} 4",
    );
    has_line(&text, "bridge_signer_state{chain=\"child\"} 2");
    has_line(
        &text,
        "bridge_signer_errors_total{chain=\"child\",kind=\"permanent\"} 1",
    );
}

#[tokio::test]
async fn endpoint_labels_never_carry_credentials() {
    let r = Running::start().await;
    let keyed: SensitiveUrl =
        "https://alice:s3cretpw@rpc.example.com:8443/v3/KEY123abc?apikey=QQQ999"
            .parse()
            .unwrap();
    let redacted = keyed.redacted().to_owned();
    // One source reports the redacted form, as ChainClient does; the other (a bug) the raw URL.
    // Neither may leak.
    r.metrics.register_chain(Side::Parent, move || ChainStats {
        chain: "parent".into(),
        chain_id: 1,
        failovers: 0,
        rate_limited: 0,
        degraded: false,
        logs: LogWindowStats {
            window: 1000,
            caps: 0,
            overflows: 0,
        },
        endpoints: vec![endpoint(0, &redacted, 1, 100)],
    });
    let raw = keyed.expose().to_string();
    r.metrics.register_chain(Side::Child, move || ChainStats {
        chain: "child".into(),
        chain_id: 2,
        failovers: 0,
        rate_limited: 0,
        degraded: false,
        logs: LogWindowStats {
            window: 1000,
            caps: 0,
            overflows: 0,
        },
        endpoints: vec![
            endpoint(0, &raw, 1, 100),
            endpoint(1, "not a url with KEY123abc", 1, 100),
        ],
    });
    let text = r.scrape().await;
    for secret in ["alice", "s3cretpw", "KEY123abc", "QQQ999", "/v3"] {
        assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
    }
    has_line(
        &text,
        "bridge_rpc_requests_total{chain=\"parent\",index=\"0\",endpoint=\"https://rpc.example.com:8443/[redacted]\"} 1",
    );
    has_line(
        &text,
        "bridge_rpc_requests_total{chain=\"child\",index=\"0\",endpoint=\"https://rpc.example.com:8443/[redacted]\"} 1",
    );
    has_line(
        &text,
        "bridge_rpc_requests_total{chain=\"child\",index=\"1\",endpoint=\"[unparsable]\"} 1",
    );
}

#[tokio::test]
async fn readyz_follows_directions_balances_chains_and_signer() {
    let r = Running::start().await;
    // Fresh: nothing started, no chain reached.
    let (status, body) = r.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready:\n\
         - direction parent_to_child: starting\n\
         - direction child_to_parent: starting\n\
         - chain parent: not reached yet\n\
         - chain child: not reached yet\n"
    );

    r.make_ready();
    assert_eq!(r.get("/readyz").await, (200, "ready\n".to_owned()));
    has_line(&r.scrape().await, "bridge_ready 1");

    // A halted direction: 503 with the reason, and back.
    r.metrics.halt_direction(
        Direction::ChildToParent,
        "reorg deeper than the confirmation depth at block 120; do NOT forcefully resume",
    );
    let (status, body) = r.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready:\n- direction child_to_parent: halted: reorg deeper than the confirmation \
         depth at block 120; do NOT forcefully resume\n"
    );
    has_line(&r.scrape().await, "bridge_ready 0");
    r.metrics.set_direction_running(Direction::ChildToParent);
    assert_eq!(r.get("/readyz").await.0, 200);

    // Low balance, and back.
    r.metrics.set_balance(Side::Parent, U256::from(5u64), true);
    assert_eq!(
        r.get("/readyz").await,
        (
            503,
            "not ready:\n- chain parent: operator balance low\n".to_owned()
        )
    );
    r.metrics
        .set_balance(Side::Parent, U256::from(10u64.pow(18)), false);
    assert_eq!(r.get("/readyz").await.0, 200);

    // An unreachable chain, and an unusable signer; several reasons at once.
    let health = Arc::new(Health::default());
    let h = health.clone();
    r.metrics
        .register_signer(Side::Child, move || Some(h.snapshot()));
    health.record_transient();
    assert_eq!(r.get("/readyz").await.0, 200, "degraded is still ready");
    health.record_permanent();
    r.metrics.set_chain_reachable(Side::Parent, false);
    assert_eq!(
        r.metrics.not_ready(),
        vec![
            NotReady::ChainUnreachable(Side::Parent),
            NotReady::SignerUnusable(Side::Child)
        ]
    );
    assert_eq!(
        r.get("/readyz").await,
        (
            503,
            "not ready:\n- chain parent: unreachable\n- chain child: signer unusable\n".to_owned()
        )
    );
    health.record_success(Duration::from_millis(1));
    r.metrics.set_chain_reachable(Side::Parent, true);
    assert_eq!(r.get("/readyz").await, (200, "ready\n".to_owned()));

    // A chain whose calls are mostly rate-limited is degraded: not ready, and back.
    let degraded = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let d = degraded.clone();
    r.metrics.register_chain(Side::Child, move || ChainStats {
        chain: "child".into(),
        chain_id: 2,
        failovers: 0,
        rate_limited: 9,
        degraded: d.load(std::sync::atomic::Ordering::Relaxed),
        logs: LogWindowStats {
            window: 1000,
            caps: 0,
            overflows: 0,
        },
        endpoints: vec![],
    });
    assert_eq!(
        r.metrics.not_ready(),
        vec![NotReady::ChainDegraded(Side::Child)]
    );
    let (status, body) = r.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("chain child: degraded: most RPC calls are rate-limited"),
        "{body}"
    );
    has_line(&r.scrape().await, "bridge_rpc_degraded{chain=\"child\"} 1");
    degraded.store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.get("/readyz").await, (200, "ready\n".to_owned()));
}

/// A replica that follows is ready (it is warm, to take over) and says whom it follows; the
/// leader says its epoch; without replicas the body is unchanged.
#[tokio::test]
async fn readyz_names_a_replicas_role_and_a_follower_is_ready() {
    let r = Running::start().await;
    r.make_ready();
    has_line(&r.scrape().await, "bridge_replica_leading 1");
    has_line(&r.scrape().await, "bridge_replica_epoch 0");
    r.metrics.replica().leading.set(0);
    r.metrics.replica().epoch.set(3);
    r.metrics.set_role(Role::Following {
        leader: Some("host-a:41:1796509800000000000".into()),
        epoch: 3,
    });
    assert_eq!(
        r.get("/readyz").await,
        (
            200,
            "ready\nfollowing, leader host-a:41:1796509800000000000, epoch 3\n".to_owned()
        )
    );
    let text = r.scrape().await;
    has_line(&text, "bridge_ready 1");
    has_line(&text, "bridge_replica_leading 0");
    has_line(&text, "bridge_replica_epoch 3");
    has_line(&text, "bridge_replica_takeovers_total 0");
    has_line(&text, "bridge_replica_lease_errors_total 0");
    r.metrics.set_role(Role::Leading { epoch: 4 });
    r.metrics.halt_direction(Direction::ParentToChild, "stop");
    assert_eq!(
        r.get("/readyz").await,
        (
            503,
            "not ready:\n- direction parent_to_child: halted: stop\nleading, epoch 4\n".to_owned()
        )
    );
    r.metrics.set_role(Role::Sole);
    r.metrics.set_direction_running(Direction::ParentToChild);
    assert_eq!(r.get("/readyz").await, (200, "ready\n".to_owned()));
}

#[tokio::test]
async fn healthz_404_and_405() {
    let r = Running::start().await;
    // Health does not depend on readiness.
    assert_eq!(r.get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(r.get("/").await.0, 404);
    assert_eq!(r.get("/metrics/extra").await.0, 404);
    assert_eq!(r.get("/nope?x=1").await.0, 404);
    // Query strings do not change the route.
    assert_eq!(r.get("/healthz?verbose=1").await.0, 200);
    let post = r
        .client
        .post(format!("{}/metrics", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let head = r
        .client
        .head(format!("{}/readyz", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 503);
}

#[tokio::test]
async fn shutdown_is_bounded_with_open_connections() {
    let r = Running::start().await;
    let addr = r.server.local_addr();
    // A pooled keep-alive connection, and a client that connects and never sends a byte.
    assert_eq!(r.get("/healthz").await.0, 200);
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    silent.write_all(b"GET /metr").await.unwrap();

    let t0 = Instant::now();
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(4), r.server.stopped())
        .await
        .expect("server did not stop within 4 s");
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = HttpServer::bind(
        addr.as_str(),
        Arc::new(AgentMetrics::new()),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HttpError::Bind { .. }));
    assert!(err.to_string().contains(&addr), "{err}");
}

#[test]
fn encoder_escapes_label_values_round_trip() {
    let nasty = "a\"b\\c\nd}e,f=g";
    let mut e = Encoder::new();
    e.family(
        "bridge_test",
        "Help with a \\ backslash\nand a newline.",
        Kind::Gauge,
        &[
            (vec![("v", nasty)], Value::Float(f64::INFINITY)),
            (vec![("v", "plain")], Value::Float(f64::NAN)),
        ],
    );
    let text = e.finish();
    let samples = validate_exposition(&text);
    assert_eq!(samples[0].1, vec![("v".to_owned(), nasty.to_owned())]);
    assert_eq!(samples[0].2, f64::INFINITY);
    assert!(samples[1].2.is_nan());
    has_line(
        &text,
        "# HELP bridge_test Help with a \\\\ backslash\\nand a newline.",
    );
}

type Parsed = (String, Vec<(String, String)>, f64);

/// Checks the text exposition format strictly enough to catch what Prometheus would reject or
/// misread: every sample belongs to the family last described by HELP then TYPE; families are
/// contiguous and described once; counters end in `_total`; histogram samples are `_bucket`
/// (with `le`), `_sum`, `_count`; label values use only the three escapes; values parse; no
/// series repeats. Returns the samples.
fn validate_exposition(text: &str) -> Vec<Parsed> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let valid_name = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut described: HashSet<String> = HashSet::new();
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(valid_name(&name), "bad name in {line:?}");
            assert!(
                described.insert(name.clone()),
                "family {name} described twice"
            );
            assert!(
                name.starts_with("bridge_"),
                "{name} lacks the bridge_ prefix"
            );
            current = Some(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(
                Some(name),
                current.as_deref(),
                "TYPE without its HELP: {line:?}"
            );
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "kind {kind}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} without _total");
            }
            assert!(kinds.insert(name.to_owned(), kind.to_owned()).is_none());
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line:?}");
        assert!(!line.is_empty(), "empty line");

        let name_end = line.find(['{', ' ']).expect("sample without value");
        let name = &line[..name_end];
        assert!(valid_name(name), "bad sample name {name:?}");
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                let (start, _) = *chars.peek().expect("unterminated labels");
                let mut key_end = start;
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        key_end = i;
                        break;
                    }
                }
                let key = &r[start..key_end];
                assert!(valid_name(key), "bad label name {key:?} in {line:?}");
                assert_eq!(
                    chars.next().map(|x| x.1),
                    Some('"'),
                    "label value not quoted"
                );
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated label value");
                    match c {
                        '"' => break,
                        '\\' => match chars.next().map(|x| x.1) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        '\n' => panic!("raw newline in label value"),
                        c => value.push(c),
                    }
                }
                labels.push((key.to_owned(), value));
                match chars.next().map(|x| x.1) {
                    Some(',') => continue,
                    Some('}') => {
                        let (i, _) = chars.next().expect("value after labels");
                        rest = &r[i..];
                        break;
                    }
                    other => panic!("bad label separator {other:?} in {line:?}"),
                }
            }
        }
        let value = rest.strip_prefix(' ').expect("one space before the value");
        assert!(!value.contains(' '), "timestamps are not used: {line:?}");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let family = current.as_deref().expect("sample before any HELP");
        match kinds.get(family).map(String::as_str) {
            Some("histogram") => {
                let suffix = name
                    .strip_prefix(family)
                    .unwrap_or_else(|| panic!("sample {name} outside its family {family}"));
                assert!(
                    ["_bucket", "_sum", "_count"].contains(&suffix),
                    "histogram sample {name}"
                );
                assert_eq!(
                    suffix == "_bucket",
                    labels.iter().any(|(k, _)| k == "le"),
                    "le on buckets only: {line:?}"
                );
            }
            Some(_) => assert_eq!(name, family, "sample outside its family"),
            None => panic!("sample of {family} before its TYPE"),
        }
        let mut keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "repeated label name in {line:?}");
        let key = format!("{name}{labels:?}");
        assert!(series.insert(key), "series repeated: {line:?}");
        out.push((name.to_owned(), labels, v));
    }
    out
}
