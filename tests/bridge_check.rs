//! The bridge check before the first vote (issue 12 item 3, issue 13 item 1), with the real
//! `bridge-agent` binary on the anvil devnet and a SoftHSM operator key:
//! - an address without code, an ERC-20 address, a bridge of another pair (its
//!   `counterpartBridge` is not the other chain's configured bridge): the agent stays up, not
//!   ready, names the chain, the address and what it answered, and sends nothing (the
//!   operator's account nonce does not move on either chain, with a request waiting);
//! - a key without a seat: not ready with the reason, nothing sent, and once the owner
//!   registers the key, ready and the waiting request executes;
//! - `config check --online` on the devnet: dialect ours, seated, exit 0; and exit 1 with the
//!   reason for a wrong bridge.
//! - an RPC failover to an endpoint of the same chain id but another deployment re-runs the
//!   check at once: refused, nothing sent there (the operator is funded there), although a
//!   vote of the agent is unmined at the cut (the tx manager's re-sends and gap fills wait for
//!   the re-check);
//!
//! The Kaia-style bridge's detection is in `bridge_check_kaia.rs` (its own binary: this one
//! sets SOFTHSM2_CONF for its process).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions};

mod support;
use support::agent::{Agent, Endpoints, PIN, enc, executed, provision_key, send, write_config};

/// `GET path` on the agent's HTTP server: status and body (None while it does not answer).
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Where the agent started on `config` serves (published by the agent: port 0 in the config).
async fn listen(config: &Path) -> SocketAddr {
    support::agent::http_address(config).await
}

/// A copy of `config` under `dir` whose `side` section names `bridge`, with its own data dir.
fn with_bridge(config: &Path, dir: &Path, side: &str, bridge: Address) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let (head, child) = text.split_once("[child]").unwrap();
    let replace = |section: &str| {
        section
            .lines()
            .map(|l| {
                if l.starts_with("bridge = ") {
                    format!("bridge = \"{bridge}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (head, child) = match side {
        "parent" => (replace(head), child.to_string()),
        _ => (head.to_string(), replace(child)),
    };
    std::fs::create_dir_all(dir).unwrap();
    let text = format!("{head}\n[child]{child}").replace(
        &format!(
            "data_dir = \"{}",
            config.parent().unwrap().join("agent").display()
        ),
        &format!("data_dir = \"{}", dir.join("agent").display()),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until `/readyz` answers `status` with a body containing every one of `parts`.
async fn readyz(agent: &Agent, addr: SocketAddr, status: u16, parts: &[&str]) -> String {
    readyz_within(agent, addr, status, parts, Duration::from_secs(60)).await
}

/// [`readyz`] within `bound`.
async fn readyz_within(
    agent: &Agent,
    addr: SocketAddr,
    status: u16,
    parts: &[&str],
    bound: Duration,
) -> String {
    let deadline = Instant::now() + bound;
    let mut last = None;
    loop {
        if let Some((s, body)) = get(addr, "/readyz") {
            if s == status && parts.iter().all(|p| body.contains(p)) {
                return body;
            }
            last = Some((s, body));
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status} with {parts:?}; last {last:?}\nlog:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn nonce_of(d: &Devnet, who: Address) -> (u64, u64) {
    (
        d.parent.reader().get_transaction_count(who).await.unwrap(),
        d.child.reader().get_transaction_count(who).await.unwrap(),
    )
}

/// A request on each chain the agent would vote on if it were let.
async fn request_both_ways(d: &Devnet) {
    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("bridge check recipient"));
    for side in [&d.parent, &d.child] {
        send(
            side,
            &user,
            side.bridge,
            enc(Bridge::requestKLAYTransferCall {
                to,
                value: U256::from(5),
                extraData: Bytes::new(),
            }),
            U256::from(5),
        )
        .await;
    }
}

/// Runs an agent on `config` that must refuse with every one of `reason` on `/readyz`, and
/// checks it stays up, logs the refusal and sends nothing while requests wait.
async fn refuses(d: &Devnet, operator: Address, config: &Path, log: PathBuf, reason: &[&str]) {
    let before = nonce_of(d, operator).await;
    let agent = Agent::start(config, log);
    let body = readyz(&agent, listen(config).await, 503, reason).await;
    // Time for a direction that would vote to do so (polls every 100 ms, recovery every 2 s),
    // with a fresh request on each side.
    request_both_ways(d).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        get(listen(config).await, "/readyz").map(|r| r.0),
        Some(503),
        "still up and not ready"
    );
    let log = agent.log();
    assert!(
        log.contains("bridge check failed"),
        "no refusal logged:\n{log}"
    );
    assert_eq!(
        nonce_of(d, operator).await,
        before,
        "the operator sent a transaction although the bridge check failed; /readyz: {body}\nlog:\n{log}"
    );
    let metrics = get(listen(config).await, "/metrics").unwrap().1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bridge_contract_verified{") && l.ends_with(" 0")),
        "bridge_contract_verified shows no failing chain:\n{metrics}"
    );
    assert!(agent.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_bridges_and_an_unseated_key_vote_nothing_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let operator = provision_key(&dir.path().join("hsm")).await;
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: vec![operator],
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let good = write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );

    // config check --online on the devnet: both verified, dialect ours, seated.
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["config", "check", "--online", "--config"])
        .arg(&good)
        .env("BRIDGE_PKCS11_PIN", PIN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for side in ["parent", "child"] {
        let b = if side == "parent" {
            d.parent.bridge
        } else {
            d.child.bridge
        };
        assert!(
            text.contains(&format!(
                "{side} bridge {b}: verified, dialect ours (detected from the bridge)"
            )),
            "{text}"
        );
    }
    assert!(text.contains(&format!("key {operator}: seated")), "{text}");
    assert!(text.contains("implies: key rotation"), "{text}");
    assert!(text.contains("online check: OK"), "{text}");

    // An address without code.
    let nowhere = Address::from_word(keccak256("no bridge here"));
    let cfg = with_bridge(&good, &dir.path().join("no-code"), "parent", nowhere);
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["config", "check", "--online", "--config"])
        .arg(&cfg)
        .env("BRIDGE_PKCS11_PIN", PIN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "NOT VERIFIED: parent bridge {nowhere}: no code at this address"
        )) && text.contains(&format!(
            "NOT VERIFIED: child bridge {}: counterpartBridge() is {}, but the other chain's configured bridge is {nowhere}",
            d.child.bridge, d.parent.bridge
        )) && text.contains("online check: FAILED (2 problem(s))"),
        "{text}"
    );
    refuses(
        &d,
        operator,
        &cfg,
        dir.path().join("no-code.log"),
        &[&format!(
            "chain parent: bridge not verified: parent bridge {nowhere}: no code at this address"
        )],
    )
    .await;

    // An ERC-20 contract: code, but no bridge views.
    let cfg = with_bridge(&good, &dir.path().join("erc20"), "child", d.child.erc20);
    refuses(
        &d,
        operator,
        &cfg,
        dir.path().join("erc20.log"),
        &[&format!(
            "chain child: bridge not verified: child bridge {}: requestNonce() reverted",
            d.child.erc20
        )],
    )
    .await;

    // A bridge of another pair on the right chain: every view answers and the key is seated,
    // but its counterpart is not the configured child bridge.
    let owner = d.parent.provider_with(d.owner());
    let other = Bridge::deploy(&owner, false).await.unwrap();
    for tx in [
        other.registerOperator(operator).into_transaction_request(),
        other
            .setCounterPartBridge(Address::from_word(keccak256("elsewhere")))
            .into_transaction_request(),
    ] {
        let r = owner
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    let cfg = with_bridge(
        &good,
        &dir.path().join("other-pair"),
        "parent",
        *other.address(),
    );
    refuses(
        &d,
        operator,
        &cfg,
        dir.path().join("other-pair.log"),
        &[&format!(
            "parent bridge {}: counterpartBridge() is {}, but the other chain's configured bridge is {}",
            other.address(),
            Address::from_word(keccak256("elsewhere")),
            d.child.bridge
        )],
    )
    .await;

    // A key without a seat on the child bridge: not ready, nothing sent; seated later, it votes.
    let child_owner = d.child.provider_with(d.owner());
    let child_bridge = Bridge::new(d.child.bridge, &child_owner);
    let second = Address::from_word(keccak256("second operator"));
    for tx in [
        child_bridge
            .registerOperator(second)
            .into_transaction_request(),
        child_bridge
            .deregisterOperator(operator)
            .into_transaction_request(),
    ] {
        let r = child_owner
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    let cfg = with_bridge(&good, &dir.path().join("unseated"), "child", d.child.bridge);
    let before = nonce_of(&d, operator).await;
    let agent = Agent::start(&cfg, dir.path().join("unseated.log"));
    let addr = listen(&cfg).await;
    readyz(
        &agent,
        addr,
        503,
        &[&format!(
            "chain child: key not seated: child bridge {}: this operator's key {operator} holds no seat",
            d.child.bridge
        )],
    )
    .await;
    // `status` shows the dialect, what it implies and the missing seat.
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for needle in [
        "NOT READY",
        "chain child: key not seated",
        "{chain=\"child\",dialect=\"ours\"} 1",
        "{chain=\"child\"} 0",
        "child bridge (ours): key rotation: `bridge-agent keys rotate`",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    let requested = Bridge::new(d.parent.bridge, d.parent.reader())
        .requestNonce()
        .call()
        .await
        .unwrap();
    request_both_ways(&d).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = agent.log();
    assert!(log.contains("key not seated"), "{log}");
    // Parent → child waits for the seat; child → parent (seated there) may vote.
    assert_eq!(
        nonce_of(&d, operator).await.1,
        before.1,
        "a vote was sent to the child bridge without a seat:\n{log}"
    );
    let r = child_owner
        .send_transaction(
            child_bridge
                .registerOperator(operator)
                .into_transaction_request(),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    readyz(&agent, addr, 200, &["ready"]).await;
    // Every parent → child request made while unseated executes now (threshold 1).
    for nonce in 0..requested + 1 {
        executed(&d.child, nonce, &agent).await;
    }
    assert!(nonce_of(&d, operator).await.1 > before.1);
    assert!(agent.stop().success());

    failover_to_another_deployment_is_refused(&d, operator, &dir.path().join("failover")).await;
}

/// The parent's first RPC endpoint goes down and the second serves the same chain id but
/// another deployment (nothing at the bridge address, the operator funded there): the failover
/// re-runs the check, which refuses, and nothing is sent there.
async fn failover_to_another_deployment_is_refused(d: &Devnet, operator: Address, dir: &Path) {
    use alloy::network::TransactionBuilder;
    use bridge_devkit::devnet::{Anvil, AnvilOptions, locate_anvil};
    use support::proxy::{FaultProxy, Mode};

    std::fs::create_dir_all(dir).unwrap();
    let impostor = Anvil::spawn(
        &locate_anvil().unwrap(),
        dir,
        &AnvilOptions {
            name: "impostor".into(),
            chain_id: d.parent.chain_id,
            port: 0,
            block_time: None,
            accounts: 2,
        },
    )
    .unwrap();
    let impostor_rpc = impostor.rpc_url();
    let funder = alloy::providers::ProviderBuilder::new()
        .wallet(impostor.dev_accounts()[0].clone())
        .connect_http(impostor_rpc.parse().unwrap());
    let r = funder
        .send_transaction(
            alloy::rpc::types::TransactionRequest::default()
                .with_to(operator)
                .with_value(bridge_devkit::devnet::seed::coins(10)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    let impostor_nonce = || async { funder.get_transaction_count(operator).await.unwrap() };

    let first = FaultProxy::start(&d.parent.rpc_url()).await;
    let config = write_config(
        dir,
        d,
        Endpoints {
            rpc: vec![first.url("http"), impostor_rpc.clone()],
            ws: None,
        },
        Endpoints::of(&d.child),
    );
    let agent = Agent::start(&config, dir.join("agent.log"));
    let addr = listen(&config).await;
    readyz(&agent, addr, 200, &["ready"]).await;
    // A vote of the agent waits unmined in the parent's pool at the cut (the parent stops
    // mining; the child mines the request at once), so after the failover the impostor
    // "lacks" a transaction the tx manager broadcast. Its convergence check (re-send, fill the
    // hole below with copies) and fee bumps must not send it there before the bridge re-check
    // refuses that chain: they wait for the re-check like the direction loops.
    let parent = d.parent.reader();
    let automine = |on: bool| {
        let parent = parent.clone();
        async move {
            parent
                .raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (on,))
                .await
                .unwrap();
        }
    };
    automine(false).await;
    let mined = parent.get_transaction_count(operator).await.unwrap();
    let user = d.users()[0].clone();
    send(
        &d.child,
        &user,
        d.child.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to: Address::from_word(keccak256("vote pending at the cut")),
            value: U256::from(5),
            extraData: Bytes::new(),
        }),
        U256::from(5),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while parent
        .get_transaction_count(operator)
        .pending()
        .await
        .unwrap()
        == mined
    {
        assert!(
            Instant::now() < deadline,
            "the agent sent no vote to the parent:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.set(Mode::Cut);
    // The agent reaches the parent through the impostor only now; the parent mines again
    // (its held vote included) for the requests below.
    automine(true).await;
    // Well before the periodic re-check of a verified bridge (60 s): the failover triggers it.
    readyz_within(
        &agent,
        addr,
        503,
        &[&format!(
            "chain parent: bridge not verified: parent bridge {}: no code at this address",
            d.parent.bridge
        )],
        Duration::from_secs(20),
    )
    .await;
    request_both_ways(d).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        impostor_nonce().await,
        0,
        "votes went to the other deployment:\n{}",
        agent.log()
    );
    assert!(agent.stop().success());
}
