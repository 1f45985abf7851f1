//! Two replicas of one operator (t = 1, one SoftHSM key) on one PostgreSQL database, through
//! the real `bridge-agent run` binary on the anvil devnet: exactly one leads (its metrics), the
//! follower is ready and says whom it follows, transfers execute; kill -9 the leader → the
//! follower leads within 2 × TTL and the transfers requested meanwhile execute; the journal in
//! PostgreSQL holds no conflicting attempt. The killed replica returns as a follower; SIGSTOP
//! the leader past its term → the other leads, and the woken one steps down and signs nothing;
//! a clean stop releases the lease (the other leads within the TTL).

use alloy::primitives::{Address, Bytes, U256, keccak256};
use bridge_agent::contracts::Bridge;
use bridge_devkit::postgres::PgServer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;
use support::agent::{
    Agent, Endpoints, enc, executed, http_address, one_operator_devnet, send, write_config,
};

/// The lease's TTL the replicas run with.
const TTL: Duration = Duration::from_secs(2);

/// A config for one replica in `dir`: the devnet's, with the shared PostgreSQL store.
fn replica_config(dir: &Path, d: &bridge_devkit::devnet::Devnet) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = write_config(dir, d, Endpoints::of(&d.parent), Endpoints::of(&d.child));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[store]\nbackend = \"postgres\"\nurl = {{ env = \"BRIDGE_STORE_URL\" }}\ntls = \"disable\"\n\
         lease_ttl_secs = {}\nlease_name = \"replica-test\"\n",
        TTL.as_secs()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let r = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// `bridge_replica_leading` of the agent at `addr` (None: not answering).
async fn leading(addr: SocketAddr) -> Option<bool> {
    let (_, text) = get(addr, "/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix("bridge_replica_leading "))
        .map(|v| v.trim() == "1")
}

/// Sends one native transfer parent → child; its nonce.
async fn request(d: &bridge_devkit::devnet::Devnet, n: u64) -> u64 {
    let p = &d.parent;
    let nonce = Bridge::new(p.bridge, p.reader())
        .requestNonce()
        .call()
        .await
        .unwrap();
    send(
        p,
        &d.users()[0],
        p.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to: Address::from_word(keccak256(format!("replica recipient {n}"))),
            value: U256::from(1 + n),
            extraData: Bytes::new(),
        }),
        U256::from(1 + n),
    )
    .await;
    nonce
}

#[tokio::test(flavor = "multi_thread")]
async fn one_replica_leads_and_the_other_takes_over_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start().unwrap();
    let url = pg.create_database("replicas").unwrap();
    // SAFETY: set before any agent starts; the agents inherit it (never on argv or in a file).
    unsafe { std::env::set_var("BRIDGE_STORE_URL", &url) };
    let d = one_operator_devnet(dir.path()).await;
    let configs = ["r1", "r2"].map(|r| replica_config(&dir.path().join(r), &d));
    let mut agents: Vec<Option<Agent>> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| Some(Agent::start(c, dir.path().join(format!("replica-{i}.log")))))
        .collect();
    let addrs = [
        http_address(&configs[0]).await,
        http_address(&configs[1]).await,
    ];
    let logs = |agents: &Vec<Option<Agent>>| {
        agents
            .iter()
            .flatten()
            .map(Agent::log)
            .collect::<Vec<_>>()
            .join("\n-----\n")
    };

    // Exactly one leads; the other is ready, following it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let roles = [leading(addrs[0]).await, leading(addrs[1]).await];
        match roles {
            [Some(true), Some(false)] => break 0,
            [Some(false), Some(true)] => break 1,
            [Some(true), Some(true)] => panic!("two replicas lead:\n{}", logs(&agents)),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no single leader within 60 s ({roles:?}):\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let follower = 1 - leader;
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(addrs[follower], "/readyz").await.unwrap_or_default();
        if status == 200 && body.contains("following, leader ") {
            break;
        }
        assert!(
            Instant::now() < ready,
            "follower not ready: {status} {body}\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Transfers execute under the leader.
    let agent = agents[leader].as_ref().unwrap();
    for n in 0..3 {
        let nonce = request(&d, n).await;
        executed(&d.child, nonce, agent).await;
    }

    // The follower tried nothing (its gate shut: no vote planned, none refused by its fenced
    // journal), signed and sent nothing.
    let text = get(addrs[follower], "/metrics").await.unwrap().1;
    for family in [
        "bridge_guard_signed_total{",
        "bridge_guard_refused_total{",
        "bridge_txs_sent_total{",
        "bridge_votes_failed_total{",
        "bridge_votes_mined_total{",
    ] {
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(family)).collect();
        assert!(!lines.is_empty(), "{family} not exported:\n{text}");
        assert!(
            lines.iter().all(|l| l.ends_with(" 0")),
            "the follower signed or sent: {lines:?}"
        );
    }

    // `status` says the follower's role.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["status", "--config"])
        .arg(&configs[follower])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("following, leader "), "{stdout}");

    // kill -9 the leader, then request more at once: the follower takes over and votes them.
    agents[leader].take(); // Drop: SIGKILL
    let killed = Instant::now();
    let mut pending = Vec::new();
    for n in 3..6 {
        pending.push(request(&d, n).await);
    }
    loop {
        if leading(addrs[follower]).await == Some(true) {
            break;
        }
        assert!(
            killed.elapsed() < 2 * TTL + Duration::from_millis(500),
            "the follower did not lead within 2 × TTL:\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed.elapsed();
    eprintln!("takeover (kill -9 → the follower leads): {took:?}");
    let survivor = agents[follower].as_ref().unwrap();
    for nonce in pending {
        executed(&d.child, nonce, survivor).await;
    }
    assert!(
        survivor.log().contains("leading: took the leader lease"),
        "{}",
        survivor.log()
    );
    let metrics = get(addrs[follower], "/metrics").await.unwrap().1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bridge_replica_takeovers_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // The journal (in PostgreSQL) logged no conflicting attempt.
    let db = bridge_db::Db::postgres(&pg.pg_config("replicas")).unwrap();
    let conflicts = db
        .run(|sql| sql.query_opt("SELECT COUNT(*) FROM conflicts", &[]))
        .unwrap()
        .expect("a count")
        .int(0)
        .unwrap();
    assert_eq!(conflicts, 0, "{}", logs(&agents));

    // The killed replica comes back as a follower.
    agents[leader] = Some(Agent::start(
        &configs[leader],
        dir.path().join("replica-restarted.log"),
    ));
    let back = http_address(&configs[leader]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(back, "/readyz").await.unwrap_or_default();
        if status == 200 && body.contains("following, leader ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted replica does not follow: {status} {body}\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(leading(addrs[follower]).await, Some(true));

    // SIGSTOP the leader past its term: the follower takes over; woken, the old leader steps
    // down and signs nothing more.
    let signed = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("bridge_guard_signed_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let paused = agents[follower].as_ref().unwrap().pid().to_string();
    let kill = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &paused])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {paused}");
    };
    let before = signed(&get(addrs[follower], "/metrics").await.unwrap().1);
    kill("-STOP");
    let stopped_at = Instant::now();
    while leading(back).await != Some(true) {
        if stopped_at.elapsed() > 2 * TTL + Duration::from_millis(500) {
            kill("-CONT");
            panic!(
                "no takeover from a paused leader within 2 × TTL:\n{}",
                logs(&agents)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill("-CONT");
    let woke = Instant::now();
    while leading(addrs[follower]).await != Some(false) {
        assert!(
            woke.elapsed() < TTL,
            "the woken leader did not step down:\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nonce = request(&d, 6).await;
    executed(&d.child, nonce, agents[leader].as_ref().unwrap()).await;
    let after = signed(&get(addrs[follower], "/metrics").await.unwrap().1);
    assert_eq!(before, after, "the woken leader signed");
    let woken_log = agents[follower].as_ref().unwrap().log();
    assert!(woken_log.contains("stepped down"), "{woken_log}");

    // A clean stop gives the lease up: the other leads at its next tick, well before the
    // lease would have expired, and votes.
    let (stop, next) = (leader, follower);
    let leader_now = agents[stop].take().unwrap();
    let log = leader_now.log_path();
    let stopped = Instant::now();
    let status = leader_now.stop();
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("leader lease released"), "{text}");
    while leading(addrs[next]).await != Some(true) {
        assert!(
            stopped.elapsed() < TTL,
            "no takeover within the TTL after a release:\n{}",
            logs(&agents)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("takeover after a clean stop: {:?}", stopped.elapsed());
    let nonce = request(&d, 7).await;
    executed(&d.child, nonce, agents[next].as_ref().unwrap()).await;
}
