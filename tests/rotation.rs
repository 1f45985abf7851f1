//! Key rotation under load: 4 agents (t = 3) signing with SoftHSM keys carry 100 native
//! transfers both ways while operator 1 runs `bridge-agent keys rotate`. Nothing is lost or
//! paid twice, operator 1 votes with the old key before the seat moves and with the new key
//! after (its agent switches without a restart), and the old address is refused afterwards.

#[path = "support/rotation.rs"]
mod support;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

const PER_DIRECTION: usize = 50;

fn recipient(direction: usize, i: usize) -> Address {
    Address::from_word(keccak256(format!("rotation-recipient-{direction}-{i}")))
}

fn value(i: usize) -> U256 {
    U256::from(1_000_000 + i as u64)
}

/// Blocks of the `Voted` events `operator` has on `side`'s bridge.
async fn votes_by(side: &Side, operator: Address) -> Vec<u64> {
    let filter = Filter::new()
        .address(side.bridge)
        .event_signature(Bridge::Voted::SIGNATURE_HASH)
        .topic3(operator.into_word())
        .from_block(0);
    side.reader()
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|l| l.block_number.unwrap())
        .collect()
}

async fn replaced_at(side: &Side) -> u64 {
    let filter = Filter::new()
        .address(side.bridge)
        .event_signature(Bridge::OperatorReplaced::SIGNATURE_HASH)
        .from_block(0);
    let logs = side.reader().get_logs(&filter).await.unwrap();
    assert_eq!(logs.len(), 1, "one seat moved on chain {}", side.chain_id);
    logs[0].block_number.unwrap()
}

/// What an `eth_call` of a vote from `from` reverts with.
async fn vote_error(side: &Side, from: Address) -> Bridge::BridgeErrors {
    use alloy::network::TransactionBuilder;
    let call = Bridge::handleKLAYTransferCall {
        requestTxHash: B256::repeat_byte(1),
        from,
        to: from,
        value: U256::from(1),
        requestedNonce: 10_000,
        requestedBlockNumber: 1,
        extraData: Bytes::new(),
    };
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_from(from)
        .with_to(side.bridge)
        .with_input(Bytes::from(call.abi_encode()));
    let err = side
        .reader()
        .call(tx)
        .await
        .expect_err("the vote must revert");
    let data = err
        .as_error_resp()
        .and_then(|e| e.as_revert_data())
        .expect("revert data");
    Bridge::BridgeErrors::abi_decode(&data).expect("a bridge custom error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_during_100_transfers_loses_nothing_and_switches_live() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::softhsm(&dir.path().join("hsm"));
    let operators: Vec<Address> = (1..=4)
        .map(|i| keys.generate(&format!("operator-{i}")))
        .collect();
    let d = Arc::new(
        Devnet::start(DevnetOptions {
            dir: dir.path().join("chains"),
            operators: operators.clone(),
            value_transfer_threshold: 3,
            configuration_threshold: 3,
            ..DevnetOptions::default()
        })
        .await
        .unwrap(),
    );
    let configs: Vec<_> = (1..=4)
        .map(|i| {
            write_config(
                dir.path(),
                &format!("op{i}"),
                &d,
                &keys.signer_section(&format!("operator-{i}")),
            )
        })
        .collect();
    let agents: Vec<Agent> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| Agent::start(c, &keys, dir.path().join(format!("op{}.log", i + 1))))
        .collect();

    // 100 transfers, alternating directions and paced: the rotation starts after 30 and runs
    // among them; the last 20 wait until it finished, so some always come after it (however
    // slow the machine).
    let sent = Arc::new(AtomicUsize::new(0));
    let rotated = Arc::new(AtomicBool::new(false));
    let load = {
        let (d, sent, rotated) = (Arc::clone(&d), Arc::clone(&sent), Arc::clone(&rotated));
        tokio::spawn(async move {
            let users = d.users();
            for i in 0..PER_DIRECTION {
                if i == PER_DIRECTION - 10 {
                    while !rotated.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                request_native(&d.parent, &users[0], recipient(0, i), value(i)).await;
                request_native(&d.child, &users[1], recipient(1, i), value(i)).await;
                sent.fetch_add(2, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    while sent.load(Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = operators[0];
    let rotate = {
        let (keys, config) = (keys.clone(), configs[0].clone());
        tokio::task::spawn_blocking(move || {
            cli(
                &keys,
                &["keys", "rotate", "--config", config.to_str().unwrap()],
                &[],
            )
        })
    }
    .await
    .unwrap();
    rotated.store(true, Ordering::SeqCst);
    assert!(rotate.status.success(), "{}", text(&rotate));
    let out = String::from_utf8_lossy(&rotate.stdout).to_string();
    assert!(out.contains("[7/7] retire"), "{out}");
    let sent_during_rotation = sent.load(Ordering::SeqCst);
    load.await.unwrap();
    assert!(
        sent_during_rotation > 30,
        "no transfer was requested while the rotation ran"
    );
    eprintln!("keys rotate said:\n{out}");
    let new: Address = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("[1/7] key")
                .and_then(|r| r.rsplit(' ').next())
        })
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no new address in:\n{out}"));
    assert_ne!(new, old);

    // Every transfer executed exactly once, both ways.
    let deadline = Instant::now() + Duration::from_secs(120);
    for (direction, dest) in [(0, &d.child), (1, &d.parent)] {
        let bridge = Bridge::new(dest.bridge, dest.reader());
        for nonce in 0..PER_DIRECTION as u64 {
            while !bridge.closedValueTransferVotes(nonce).call().await.unwrap() {
                assert!(
                    Instant::now() < deadline,
                    "direction {direction} nonce {nonce} not executed:\n{}",
                    agents[0].log_text()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for i in 0..PER_DIRECTION {
            let got = dest
                .reader()
                .get_balance(recipient(direction, i))
                .await
                .unwrap();
            assert_eq!(
                got,
                value(i),
                "direction {direction} transfer {i}: lost or paid twice"
            );
        }
        let handled = dest
            .reader()
            .get_logs(
                &Filter::new()
                    .address(dest.bridge)
                    .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH)
                    .from_block(0),
            )
            .await
            .unwrap();
        assert_eq!(
            handled.len(),
            PER_DIRECTION,
            "one HandleValueTransfer per request"
        );
    }

    // Operator 1 voted with the old key until its seat moved, and with the new key after.
    for side in [&d.parent, &d.child] {
        let moved = replaced_at(side).await;
        let (old_votes, new_votes) = (votes_by(side, old).await, votes_by(side, new).await);
        assert!(
            !old_votes.is_empty(),
            "chain {}: no votes by the old key",
            side.chain_id
        );
        assert!(
            !new_votes.is_empty(),
            "chain {}: no votes by the new key",
            side.chain_id
        );
        assert!(
            old_votes.iter().all(|b| *b <= moved),
            "old key voted after the seat moved"
        );
        assert!(
            new_votes.iter().all(|b| *b > moved),
            "new key voted before it held the seat"
        );
        assert!(!is_operator(side, old).await && is_operator(side, new).await);
        assert_eq!(
            vote_error(side, old).await,
            Bridge::BridgeErrors::NotOperator(Bridge::NotOperator { caller: old }),
            "the old address is refused with the custom error"
        );
    }
    let log = agents[0].log_text();
    assert_eq!(
        log.matches("key switched").count(),
        2,
        "one live switch per chain:\n{log}"
    );

    for agent in agents {
        assert!(agent.stop().success());
    }
}
