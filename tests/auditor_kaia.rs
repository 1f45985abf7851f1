//! The auditor on a Kaia-style bridge, which emits no `Voted` event: the real binary reads the
//! destination's blocks, and sees forged handles voted by a seated key (a wrong recipient for a
//! real request, a nonce never requested) while the agent's own honest vote passes; and it
//! reports the deployer's seat that Kaia's constructor gives and that never votes.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_devkit::devnet::DevnetOptions;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "one_agent/mod.rs"]
mod one_agent;
mod support;
use one_agent::{metric, plain, request_native, start, start_with, wait_ready};
use support::agent::{Agent, provision_key};

const INVENTED_NONCE: u64 = 1_000_000;

fn forged_handle(nonce: u64, to: Address, value: u64) -> Bytes {
    Bridge::handleKLAYTransferCall {
        requestTxHash: keccak256(format!("forged {nonce}")),
        from: Address::repeat_byte(0xee),
        to,
        value: U256::from(value),
        requestedNonce: nonce,
        requestedBlockNumber: 1,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into()
}

/// Waits until `get` reaches `want`, or panics with the agent's log.
async fn wait_metric(port: u16, name: &str, labels: &str, want: f64, agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while metric(port, name, labels).await < want {
        assert!(
            Instant::now() < deadline,
            "{name}{{{labels}}} never reached {want}:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn forged_votes_are_seen_without_voted_events(dir: &Path, operator: Address) {
    // A seated key in the attacker's hands, bypassing any agent and guard.
    let forger_key = alloy::signers::local::PrivateKeySigner::random();
    let forger = forger_key.address();
    let (d, agent, port) = start(dir, Dialect::Kaia, vec![operator, forger], 2).await;
    wait_ready(port, &agent).await;
    let c = &d.child;
    // Gas for the forger.
    let owner = c.provider_with(d.owner());
    owner
        .send_transaction(
            TransactionRequest::default()
                .with_to(forger)
                .with_value(U256::from(10u128.pow(18))),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    request_native(&d, Address::from_word(keccak256("honest recipient")), 7).await;
    // The agent's honest vote for nonce 0 (1 of 2).
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.reader().get_transaction_count(operator).await.unwrap() < 1 {
        assert!(Instant::now() < deadline, "no vote:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let thief = Address::repeat_byte(0x66);
    let forger_p = c.provider_with(forger_key);
    for call in [
        forged_handle(0, thief, 7),
        forged_handle(INVENTED_NONCE, thief, 1),
    ] {
        let r = forger_p
            .send_transaction(
                TransactionRequest::default()
                    .with_to(c.bridge)
                    .with_input(call),
            )
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "a forged vote below the threshold is mined");
    }
    wait_metric(
        port,
        "bridge_forged_votes_seen_total",
        "parent_to_child",
        2.0,
        &agent,
    )
    .await;
    // A moment more: nothing else (the agent's own vote) is called forged.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = plain(&agent.log());
    assert_eq!(
        metric(port, "bridge_forged_votes_seen_total", "parent_to_child").await,
        2.0,
        "{log}"
    );
    assert!(log.contains(&format!("operator={forger}")), "{log}");
    assert!(
        log.contains("no request: the source's requestNonce is 1"),
        "{log}"
    );
    let bridge = Bridge::new(c.bridge, c.reader());
    assert!(!bridge.closedValueTransferVotes(0).call().await.unwrap());
    assert!(agent.stop().success());
}

async fn the_deployer_seat_that_never_votes_is_reported(dir: &Path, operator: Address) {
    let (d, agent, port) = start_with(
        dir,
        DevnetOptions {
            operators: vec![operator],
            value_transfer_threshold: 1,
            configuration_threshold: 1,
            dialect: Dialect::Kaia,
            keep_deployer_seat: true,
            ..DevnetOptions::default()
        },
    )
    .await;
    wait_ready(port, &agent).await;
    let seats = Bridge::new(d.child.bridge, d.child.reader())
        .getOperatorList()
        .call()
        .await
        .unwrap();
    let deployer = d.owner().address();
    assert!(seats.contains(&deployer), "{seats:?}");
    // limit(2 seats) = 16 executed nonces without its vote.
    let n = 18u64;
    for i in 0..n {
        request_native(&d, Address::from_word(keccak256("silent recipient")), 1 + i).await;
    }
    wait_metric(port, "bridge_silent_seats", "parent_to_child", 1.0, &agent).await;
    let log = plain(&agent.log());
    assert_eq!(log.matches("alarm=\"silent_seat\"").count(), 1, "{log}");
    assert!(log.contains(&format!("operator={deployer}")), "{log}");
    assert_eq!(
        metric(port, "bridge_silent_seats", "child_to_parent").await,
        0.0,
        "nothing executed that way"
    );
    assert!(agent.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn kaia_auditor_sees_forged_handles_and_the_silent_deployer_seat() {
    let dir = tempfile::tempdir().unwrap();
    // One SoftHSM key for both runs (the SoftHSM config is process-wide).
    let operator = provision_key(&dir.path().join("hsm")).await;
    let run = dir.path().join("forged");
    std::fs::create_dir_all(&run).unwrap();
    forged_votes_are_seen_without_voted_events(&run, operator).await;
    let run = dir.path().join("silent");
    std::fs::create_dir_all(&run).unwrap();
    the_deployer_seat_that_never_votes_is_reported(&run, operator).await;
}
