//! A wedged sender through the real binary (issue 12): the operator's fee cap is below the
//! child's base fee, so its vote waits in the pool while blocks go by. `/readyz` turns 503 and
//! names the chain, the nonce and since when, `bridge_sender_wedged{chain="child"}` is 1; once
//! the base fee falls under the cap the vote is mined and both clear by themselves. A real
//! Prometheus with the shipped rules (support/prometheus.rs) fires `BridgeSenderWedged`
//! meanwhile and resolves it after.

mod support;

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::sol_types::SolCall;
use bridge_agent::config::GWEI;
use bridge_agent::contracts::Bridge;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::agent::{self, Agent, Endpoints};
use support::prometheus::Prometheus;

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_for(what: &str, agent: &Agent, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 60 s\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_capped_below_the_base_fee_turns_readyz_503_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = agent::one_operator_devnet(dir.path()).await;
    let operator = d.operators[0];
    let config = agent::write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );
    // The child is the last table: its wedge threshold, then its fee cap.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("wedged_after_secs = 2\n\n[child.fees]\nmax_fee_gwei = 5\nbump_after_secs = 1\n");
    std::fs::write(&config, &text).unwrap();

    let child = d.child.reader();
    child.anvil_set_auto_mine(false).await.unwrap();
    let agent = Agent::start(&config, dir.path().join("agent.log"));
    let addr = agent::http_address(&config).await;
    let readyz = format!("http://{addr}/readyz");
    let metrics = format!("http://{addr}/metrics");
    let mining = Arc::new(AtomicBool::new(true));
    let miner = {
        let (child, mining) = (child.clone(), Arc::clone(&mining));
        tokio::spawn(async move {
            loop {
                if mining.load(Ordering::Relaxed) {
                    let _ = child.anvil_mine(Some(1), None).await;
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        })
    };
    wait_for("ready", &agent, async || get(&readyz).await.0 == 200).await;
    let prom = Prometheus::start(&[("op1".into(), addr.port())]).await;

    // A parent → child request; its vote waits in the child's pool (no block for now).
    mining.store(false, Ordering::Relaxed);
    let to = Address::from_word(keccak256("wedged recipient"));
    let call = Bridge::requestKLAYTransferCall {
        to,
        value: U256::from(777),
        extraData: Bytes::new(),
    };
    agent::send(
        &d.parent,
        &d.users()[0],
        d.parent.bridge,
        call.abi_encode().into(),
        U256::from(777),
    )
    .await;
    wait_for("the vote in the child's pool", &agent, async || {
        child
            .get_transaction_count(operator)
            .pending()
            .await
            .unwrap()
            == 1
    })
    .await;
    // The base fee jumps far above the 5 gwei cap; blocks go on without the vote.
    child
        .anvil_set_next_block_base_fee_per_gas(1_000 * GWEI)
        .await
        .unwrap();
    mining.store(true, Ordering::Relaxed);
    wait_for("/readyz 503 naming the wedged sender", &agent, async || {
        let (status, body) = get(&readyz).await;
        status == 503 && body.contains("chain child: sender wedged: nonce 0 not mined since")
    })
    .await;
    let (_, body) = get(&metrics).await;
    assert!(
        body.contains("bridge_sender_wedged{chain=\"child\"} 1"),
        "{body}"
    );
    assert!(
        agent.log().contains("alarm=\"sender_wedged\""),
        "no sender_wedged alarm in the log:\n{}",
        agent.log()
    );
    assert_eq!(
        child.get_transaction_count(operator).await.unwrap(),
        0,
        "not mined"
    );
    prom.wait_firing(
        "BridgeSenderWedged",
        &[("chain", "child")],
        Duration::from_secs(20),
        || agent.log(),
    )
    .await;

    // Lifted: the base fee falls under the cap, the vote is mined, readiness comes back.
    child
        .anvil_set_next_block_base_fee_per_gas(GWEI)
        .await
        .unwrap();
    wait_for("/readyz 200 again", &agent, async || {
        get(&readyz).await.0 == 200
    })
    .await;
    assert_eq!(
        child.get_transaction_count(operator).await.unwrap(),
        1,
        "mined"
    );
    let (_, body) = get(&metrics).await;
    assert!(
        body.contains("bridge_sender_wedged{chain=\"child\"} 0"),
        "{body}"
    );
    assert_eq!(child.get_balance(to).await.unwrap(), U256::from(777));
    wait_for("BridgeSenderWedged resolved", &agent, async || {
        prom.alerts().await.is_empty()
    })
    .await;
    miner.abort();
    assert!(agent.stop().success());
}
