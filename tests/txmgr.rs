//! Tx manager on the real devnet, signing through the guard and the aws-kms backend on an
//! in-process hsm-sim: concurrent votes, late votes, stuck-tx replacement, no stranded nonce
//! after a refusal, low balance.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy::consensus::{Transaction as _, TxEip1559};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolInterface};
use bridge_agent::chain::{ChainAccessConfig, ChainClient, SensitiveUrl};
use bridge_agent::config::{FeeMode, FeePolicy, GWEI};
use bridge_agent::contracts::Bridge;
use bridge_agent::devnet::stand_in::{self, Request};
use bridge_agent::devnet::{Devnet, DevnetOptions, seed};
use bridge_agent::txmgr::{TxError, TxManager, TxManagerConfig, TxOutcome};
use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsSigner};
use bridge_signer::guard::Journal;
use bridge_signer::{Guard, Refused, Signer};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Static test credentials where the AWS default chain finds them first; set once per binary
/// before any client is built.
fn aws_env() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY (test only): runs once, inside the OnceLock, before any AWS client reads the
        // environment (every test calls this first).
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "AKIATXMGRTESTKEY0001");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "txmgr-test-secret");
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/txmgr-test");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/txmgr-test");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

async fn bounded<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test exceeded its time bound")
}

fn fees(bump_after: Duration) -> FeePolicy {
    FeePolicy {
        mode: FeeMode::Eip1559,
        max_fee_per_gas: 200 * GWEI,
        priority_fee_per_gas: GWEI,
        gas_price: None,
        bump_after,
        bump_percent: 25,
        max_bumps: 3,
    }
}

/// A devnet whose only operator is a key in hsm-sim, and a tx manager for it on the child.
struct Rig {
    d: Devnet,
    user: PrivateKeySigner,
    operator: Address,
    client: ChainClient,
    guard: Arc<Guard<Arc<dyn Signer>>>,
    txm: TxManager,
    shutdown: CancellationToken,
    _sim: hsm_sim::HsmSim,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Rig {
    async fn start(fees: FeePolicy, min_balance: U256) -> Rig {
        aws_env();
        let dir = tempfile::Builder::new()
            .prefix("txmgr-test-")
            .tempdir()
            .expect("temp dir");
        let sim = hsm_sim::HsmSim::start(hsm_sim::Config::default())
            .await
            .expect("hsm-sim");
        let key_id = sim.create_key(None).expect("create key");
        let kms = AwsKmsClient::connect(Some("us-east-1"), Some(&sim.endpoint()))
            .await
            .expect("kms client");
        let signer = AwsKmsSigner::with_client(&kms, &key_id)
            .await
            .expect("kms signer");
        let operator = signer.address();
        let d = Devnet::start(DevnetOptions {
            dir: dir.path().to_owned(),
            operators: vec![operator],
            value_transfer_threshold: 1,
            configuration_threshold: 1,
            ..DevnetOptions::default()
        })
        .await
        .expect("devnet");
        let mut access = ChainAccessConfig::new(
            "child",
            d.child.chain_id,
            vec![SensitiveUrl::new(d.child.rpc_url().parse().unwrap())],
        );
        access.rpc_timeout = Duration::from_secs(10);
        let client = ChainClient::connect(access).await.expect("child client");
        let journal = Journal::open(dir.path().join("journal.sqlite")).expect("journal");
        let backend: Arc<dyn Signer> = Arc::new(signer);
        let guard = Arc::new(Guard::new(
            backend,
            d.child.chain_id,
            d.child.bridge,
            journal,
        ));
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            config(&d, fees, min_balance),
            client.clone(),
            Arc::clone(&guard),
            shutdown.clone(),
        )
        .await
        .expect("tx manager starts");
        Rig {
            user: d.users()[0].clone(),
            d,
            operator,
            client,
            guard,
            txm,
            shutdown,
            _sim: sim,
            _dir: dir,
        }
    }

    fn child(&self) -> DynProvider {
        self.d.child.reader()
    }

    async fn chain_nonce(&self) -> u64 {
        self.child()
            .get_transaction_count(self.operator)
            .await
            .expect("nonce")
    }

    /// `n` native requests on the parent to `to`, with their handle calldata for the child.
    async fn native_requests(&self, n: usize, to: Address) -> Vec<(Request, Bytes)> {
        let p = self.d.parent.provider_with(self.user.clone());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let value = U256::from(1_000 + i as u64);
            let call = Bridge::requestKLAYTransferCall {
                to,
                value,
                extraData: Bytes::from_static(b"txmgr"),
            };
            let tx = TransactionRequest::default()
                .with_to(self.d.parent.bridge)
                .with_input(call.abi_encode())
                .with_value(value);
            let receipt = p
                .send_transaction(tx)
                .await
                .expect("request accepted")
                .get_receipt()
                .await
                .expect("request receipt");
            assert!(receipt.status(), "request {i} reverted");
            let req = receipt
                .inner
                .logs()
                .iter()
                .find_map(|l| stand_in::decode_request(l).ok())
                .expect("a request event");
            let token =
                stand_in::counterpart_token(&self.d.parent.reader(), self.d.parent.bridge, &req)
                    .await
                    .expect("registry");
            let data = stand_in::handle_calldata(&req, token);
            out.push((req, data));
        }
        out
    }

    async fn tx_nonce(&self, outcome: &TxOutcome) -> u64 {
        let TxOutcome::Mined { tx_hash, .. } = outcome else {
            panic!("not mined: {outcome:?}");
        };
        self.child()
            .get_transaction_by_hash(*tx_hash)
            .await
            .expect("tx by hash")
            .expect("tx exists")
            .nonce()
    }
}

fn config(d: &Devnet, fees: FeePolicy, min_balance: U256) -> TxManagerConfig {
    TxManagerConfig {
        chain: "child".into(),
        bridge: d.child.bridge,
        fees,
        min_balance,
        receipt_poll: Duration::from_millis(50),
        max_in_flight: 64,
        wedged_after: Duration::from_secs(120),
    }
}

fn recipient(label: &str) -> Address {
    Address::from_word(keccak256(label.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_votes_mine_with_consecutive_nonces() {
    bounded(240, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let to = recipient("txmgr-twenty");
        let votes = rig.native_requests(20, to).await;
        let expected: U256 = votes.iter().map(|(r, _)| r.value_or_id).sum();

        let mut set = JoinSet::new();
        for (req, data) in votes {
            let txm = rig.txm.clone();
            set.spawn(async move { txm.submit(data, format!("request {}", req.nonce)).await });
        }
        let mut nonces = Vec::new();
        while let Some(joined) = set.join_next().await {
            let outcome = joined.expect("task").expect("submitted");
            assert!(matches!(outcome, TxOutcome::Mined { .. }), "{outcome:?}");
            nonces.push(rig.tx_nonce(&outcome).await);
        }
        nonces.sort_unstable();
        assert_eq!(nonces, (0..20).collect::<Vec<u64>>());
        assert_eq!(rig.chain_nonce().await, 20);

        let bridge = Bridge::new(rig.d.child.bridge, rig.child());
        assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 20);
        assert_eq!(rig.child().get_balance(to).await.unwrap(), expected);

        let stats = rig.txm.stats();
        assert_eq!((stats.sent, stats.mined, stats.reverted), (20, 20, 0));
        assert_eq!((stats.failed, stats.pending, stats.nonce), (0, 0, 20));
        assert_eq!(rig.guard.counters().signed(), 20);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_vote_would_revert_with_already_executed_and_is_not_sent() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let votes = rig.native_requests(1, recipient("txmgr-late")).await;
        let (req, data) = &votes[0];
        let first = rig.txm.submit(data.clone(), "first".into()).await.unwrap();
        assert!(matches!(first, TxOutcome::Mined { .. }), "{first:?}");
        let before = rig.chain_nonce().await;
        let signed_before = rig.guard.counters().signed();

        let late = rig.txm.submit(data.clone(), "late".into()).await.unwrap();
        let TxOutcome::WouldRevert { revert } = late else {
            panic!("expected WouldRevert, got {late:?}");
        };
        match Bridge::BridgeErrors::abi_decode(&revert).expect("a bridge error") {
            Bridge::BridgeErrors::AlreadyExecuted(e) => assert_eq!(e.requestNonce, req.nonce),
            other => panic!("expected AlreadyExecuted, got {other:?}"),
        }
        assert_eq!(rig.chain_nonce().await, before, "nothing sent");
        assert_eq!(
            rig.guard.counters().signed(),
            signed_before,
            "nothing signed"
        );
        let stats = rig.txm.stats();
        assert_eq!((stats.sent, stats.would_revert, stats.nonce), (1, 1, 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_transaction_is_replaced_and_the_replacement_mines() {
    bounded(180, async {
        let policy = fees(Duration::from_millis(400));
        let rig = Rig::start(policy, seed::coins(1)).await;
        let votes = rig.native_requests(1, recipient("txmgr-stuck")).await;
        rig.child().anvil_set_auto_mine(false).await.unwrap();

        let txm = rig.txm.clone();
        let data = votes[0].1.clone();
        let pending = tokio::spawn(async move { txm.submit(data, "stuck".into()).await });
        while rig.txm.stats().replaced < 1 {
            assert!(!pending.is_finished(), "must not resolve before mining");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rig.chain_nonce().await, 0, "nothing mined yet");
        rig.child().anvil_mine(Some(1), None).await.unwrap();
        let outcome = pending.await.unwrap().expect("mined");
        let TxOutcome::Mined { tx_hash, block, .. } = outcome else {
            panic!("expected Mined, got {outcome:?}");
        };
        let tx = rig
            .child()
            .get_transaction_by_hash(tx_hash)
            .await
            .unwrap()
            .expect("mined tx");
        assert_eq!(tx.nonce(), 0);
        assert!(
            tx.max_priority_fee_per_gas().unwrap() > policy.priority_fee_per_gas,
            "the mined tx is a replacement (raised tip {:?})",
            tx.max_priority_fee_per_gas()
        );
        let mined_block = rig
            .child()
            .get_block_by_number(block.into())
            .await
            .unwrap()
            .expect("block");
        assert_eq!(mined_block.transactions.len(), 1, "one tx for that nonce");
        assert_eq!(rig.chain_nonce().await, 1);
        let stats = rig.txm.stats();
        assert!(stats.replaced >= 1, "{stats:?}");
        assert_eq!((stats.sent, stats.mined), (1, 1));
        assert_eq!(rig.guard.counters().same_vote(), stats.replaced);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_submission_strands_no_nonce() {
    bounded(240, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let to = recipient("txmgr-refused");
        let mut votes = rig.native_requests(11, to).await;

        // A different vote for the last request is already in the journal: voting the real
        // calldata for it is a conflicting vote (its estimate passes: not executed).
        let (conflicted, real) = votes.pop().unwrap();
        let mut other = conflicted.clone();
        other.to = recipient("someone-else");
        let prior = TxEip1559 {
            chain_id: rig.d.child.chain_id,
            to: TxKind::Call(rig.d.child.bridge),
            input: stand_in::handle_calldata(&other, Address::ZERO),
            ..Default::default()
        };
        rig.guard
            .authorize(&prior)
            .await
            .expect("first vote recorded");

        // A call the guard never signs, that estimates fine (a view).
        let not_a_vote: Bytes = Bridge::requestNonceCall {}.abi_encode().into();

        let mut set = JoinSet::new();
        let mut submit = |data: Bytes, label: String, good: bool| {
            let txm = rig.txm.clone();
            set.spawn(async move { (good, label.clone(), txm.submit(data, label).await) });
        };
        for (i, (_, data)) in votes.iter().enumerate() {
            if i == 1 {
                submit(not_a_vote.clone(), "not a vote".into(), false);
            }
            if i == 5 {
                submit(real.clone(), "conflicting".into(), false);
            }
            submit(data.clone(), format!("good {i}"), true);
        }
        let mut nonces = Vec::new();
        let mut refusals = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (good, label, result) = joined.expect("task");
            if good {
                let outcome = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                nonces.push(rig.tx_nonce(&outcome).await);
            } else {
                match result {
                    Err(TxError::Refused { source, .. }) => refusals.push(source),
                    other => panic!("{label}: expected a refusal, got {other:?}"),
                }
            }
        }
        nonces.sort_unstable();
        assert_eq!(nonces, (0..10).collect::<Vec<u64>>(), "no gap");
        assert_eq!(rig.chain_nonce().await, 10, "chain nonce = mined txs");
        assert_eq!(refusals.len(), 2);
        assert!(
            refusals
                .iter()
                .any(|r| matches!(r, Refused::UnknownSelector(_)))
        );
        assert!(
            refusals
                .iter()
                .any(|r| matches!(r, Refused::ConflictingVote { .. }))
        );
        let stats = rig.txm.stats();
        assert_eq!((stats.mined, stats.failed, stats.nonce), (10, 2, 10));
        let bridge = Bridge::new(rig.d.child.bridge, rig.child());
        assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn low_balance_is_flagged() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let stats = rig.txm.stats();
        let balance = stats.last_balance.expect("balance read at start");
        assert!(balance >= seed::operator_gas(), "funded by the devnet");
        assert!(!stats.low_balance);

        let strict = TxManager::start(
            config(
                &rig.d,
                fees(Duration::from_secs(30)),
                balance + U256::from(1),
            ),
            rig.client.clone(),
            Arc::clone(&rig.guard),
            rig.shutdown.clone(),
        )
        .await
        .unwrap();
        let stats = strict.stats();
        assert!(stats.low_balance, "{stats:?}");
        assert_eq!(stats.last_balance, Some(balance));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_fees_send_a_legacy_transaction_at_the_policy_price() {
    bounded(180, async {
        let policy = FeePolicy {
            mode: FeeMode::Legacy,
            gas_price: Some(3 * GWEI),
            ..fees(Duration::from_secs(30))
        };
        let rig = Rig::start(policy, seed::coins(1)).await;
        let votes = rig.native_requests(1, recipient("txmgr-legacy")).await;
        let outcome = rig
            .txm
            .submit(votes[0].1.clone(), "legacy".into())
            .await
            .unwrap();
        let TxOutcome::Mined { tx_hash, .. } = outcome else {
            panic!("expected Mined, got {outcome:?}");
        };
        let tx = rig
            .child()
            .get_transaction_by_hash(tx_hash)
            .await
            .unwrap()
            .expect("mined tx");
        assert_eq!(tx.inner.tx_type(), alloy::consensus::TxType::Legacy);
        assert_eq!(tx.gas_price(), Some(3 * GWEI));
        assert_eq!(tx.chain_id(), Some(rig.d.child.chain_id), "EIP-155");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_takes_over_the_nonce_of_a_transaction_left_pending() {
    bounded(180, async {
        let policy = fees(Duration::from_secs(60));
        let rig = Rig::start(policy, seed::coins(1)).await;
        let votes = rig.native_requests(2, recipient("txmgr-restart")).await;
        rig.child().anvil_set_auto_mine(false).await.unwrap();
        // The first run sends a vote that stays in the pool, then stops.
        let txm = rig.txm.clone();
        let first = votes[0].1.clone();
        let pending = tokio::spawn(async move { txm.submit(first, "earlier run".into()).await });
        while rig.txm.stats().sent < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.shutdown.cancel();
        assert!(pending.await.unwrap().is_err(), "stopped before mining");

        // The next run starts at the mined count and outbids it with its own vote.
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            config(&rig.d, policy, seed::coins(1)),
            rig.client.clone(),
            Arc::clone(&rig.guard),
            shutdown.clone(),
        )
        .await
        .unwrap();
        assert_eq!(txm.stats().nonce, 0);
        let second = votes[1].1.clone();
        let txm2 = txm.clone();
        let next = tokio::spawn(async move { txm2.submit(second, "next run".into()).await });
        while txm.stats().sent < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.child().anvil_mine(Some(1), None).await.unwrap();
        let outcome = next.await.unwrap().expect("mined");
        let TxOutcome::Mined { tx_hash, .. } = outcome else {
            panic!("expected Mined, got {outcome:?}");
        };
        let tx = rig
            .child()
            .get_transaction_by_hash(tx_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tx.nonce(), 0, "the earlier run's nonce, taken over");
        assert_eq!(rig.chain_nonce().await, 1, "one transaction for nonce 0");
        shutdown.cancel();
    })
    .await;
}
