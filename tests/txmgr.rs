//! Tx manager on the real devnet, signing through the guard and the aws-kms backend on an
//! in-process hsm-sim: concurrent votes, late votes, stuck-tx replacement, no stranded nonce
//! after a refusal, low balance.

#[path = "support/proxy.rs"]
#[allow(dead_code)]
mod proxy;

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
use bridge_agent::txmgr::{TxError, TxManager, TxManagerConfig, TxOutcome};
use bridge_devkit::devnet::stand_in::{self, Request};
use bridge_devkit::devnet::{Devnet, DevnetOptions, seed};
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
        metrics: Default::default(),
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

/// A live key switch starts the side's next manager from the same config: it counts on into
/// the side's handles, so nothing the first one counted is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_manager_of_a_side_counts_on_where_the_first_stopped() {
    bounded(120, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let votes = rig.native_requests(2, recipient("txmgr-switch")).await;
        let side = Arc::new(bridge_agent::metrics::ChainMetrics::default());
        let cfg = TxManagerConfig {
            metrics: Arc::clone(&side),
            ..config(&rig.d, fees(Duration::from_secs(30)), seed::coins(1))
        };
        let shutdown = CancellationToken::new();
        let start = |cfg: TxManagerConfig| {
            TxManager::start(
                cfg,
                rig.client.clone(),
                Arc::clone(&rig.guard),
                shutdown.clone(),
            )
        };
        let first = start(cfg.clone()).await.unwrap();
        let out = first.submit(votes[0].1.clone(), "first".into()).await;
        assert!(matches!(out, Ok(TxOutcome::Mined { .. })), "{out:?}");
        let second = start(cfg).await.unwrap();
        drop(first);
        let out = second.submit(votes[1].1.clone(), "second".into()).await;
        assert!(matches!(out, Ok(TxOutcome::Mined { .. })), "{out:?}");
        assert_eq!((side.txs_sent.get(), side.txs_mined.get()), (2, 2));
        let stats = second.stats();
        assert_eq!((stats.sent, stats.mined), (2, 2), "{stats:?}");
        assert_eq!(rig.txm.stats().sent, 0, "another config, other handles");
        shutdown.cancel();
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
async fn a_restart_tracks_a_transaction_left_pending_and_sends_above_it() {
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

        // The next run tracks the earlier vote (not outbid: it is still the vote wanted) and
        // sends its own above it.
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            config(&rig.d, policy, seed::coins(1)),
            rig.client.clone(),
            Arc::clone(&rig.guard),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let stats = txm.stats();
        assert_eq!((stats.nonce, stats.leftovers), (1, 1), "{stats:?}");
        let second = votes[1].1.clone();
        let txm2 = txm.clone();
        let next = tokio::spawn(async move { txm2.submit(second, "next run".into()).await });
        while txm.stats().sent < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.child().anvil_mine(Some(1), None).await.unwrap();
        let outcome = next.await.unwrap().expect("mined");
        assert_eq!(rig.tx_nonce(&outcome).await, 1, "above the earlier run's");
        assert_eq!(rig.chain_nonce().await, 2, "both mined");
        let bridge = Bridge::new(rig.d.child.bridge, rig.child());
        assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 2);
        assert_eq!(txm.stats().replaced, 0, "nothing fought");
        shutdown.cancel();
    })
    .await;
}

// ---- convergence to the chain (issue 12) ------------------------------------------------------

/// The operator's transactions in the node's pool: (pending nonces, queued nonces).
async fn pool_of(p: &DynProvider, who: Address) -> (Vec<u64>, Vec<u64>) {
    let content: serde_json::Value = p
        .raw_request("txpool_content".into(), ())
        .await
        .expect("txpool_content");
    let nonces = |section: &str| -> Vec<u64> {
        let mut out: Vec<u64> = content[section]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.parse::<Address>().ok() == Some(who))
            .flat_map(|(_, by_nonce)| by_nonce.as_object().into_iter().flatten())
            .map(|(n, _)| n.parse().expect("nonce key"))
            .collect();
        out.sort_unstable();
        out
    };
    (nonces("pending"), nonces("queued"))
}

/// Waits (bounded) until `cond` holds, polling every 50 ms; panics with `what` otherwise.
async fn until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Rig {
    /// Mined and pending counts equal and nothing of the operator's left in the pool.
    async fn settled(&self) -> bool {
        let p = self.child();
        let latest = p
            .get_transaction_count(self.operator)
            .latest()
            .await
            .unwrap();
        let pending = p
            .get_transaction_count(self.operator)
            .pending()
            .await
            .unwrap();
        let (in_pending, queued) = pool_of(&p, self.operator).await;
        latest == pending && in_pending.is_empty() && queued.is_empty()
    }

    async fn lower_handle_nonce(&self) -> u64 {
        Bridge::new(self.d.child.bridge, self.child())
            .lowerHandleNonce()
            .call()
            .await
            .unwrap()
    }

    async fn reorg(&self, depth: u64) {
        self.child()
            .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
                depth,
                tx_block_pairs: vec![],
            })
            .await
            .unwrap();
    }

    fn submit(
        &self,
        data: &Bytes,
        label: &str,
    ) -> tokio::task::JoinHandle<Result<TxOutcome, TxError>> {
        let (txm, data, label) = (self.txm.clone(), data.clone(), label.to_owned());
        tokio::spawn(async move { txm.submit(data, label).await })
    }
}

fn mined_or_already_executed(outcome: &TxOutcome) -> bool {
    match outcome {
        TxOutcome::Mined { .. } => true,
        TxOutcome::Reverted {
            revert: Some(data), ..
        } => matches!(
            Bridge::BridgeErrors::abi_decode(data),
            Ok(Bridge::BridgeErrors::AlreadyExecuted(_))
        ),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reorg_that_orphans_mined_votes_moves_numbering_back_to_the_chain() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let votes = rig.native_requests(3, recipient("txmgr-reorg-quiet")).await;
        for (i, (_, data)) in votes.iter().take(2).enumerate() {
            let out = rig
                .txm
                .submit(data.clone(), format!("vote {i}"))
                .await
                .unwrap();
            assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        }
        assert_eq!(rig.chain_nonce().await, 2);
        // Both votes' blocks are replaced: the account's nonce is 0 again (anvil does not put
        // orphaned transactions back in its pool).
        rig.reorg(2).await;
        assert_eq!(rig.chain_nonce().await, 0);
        assert_eq!(
            rig.lower_handle_nonce().await,
            0,
            "the executions were orphaned too"
        );
        // Idle, the manager notices on its own and numbers from the chain again.
        until(30, "numbering back at the chain's nonce", || async {
            rig.txm.stats().nonce == 0
        })
        .await;
        let stats = rig.txm.stats();
        assert!(stats.nonce_went_down >= 1, "{stats:?}");
        assert!(stats.rebases >= 1, "{stats:?}");
        // Recovery re-feeds the orphaned requests: they go at the chain's nonce, nothing queues.
        for (i, (_, data)) in votes.iter().enumerate() {
            let out = rig
                .txm
                .submit(data.clone(), format!("again {i}"))
                .await
                .unwrap();
            assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
            assert_eq!(rig.tx_nonce(&out).await, i as u64, "at the chain's nonce");
        }
        assert_eq!(rig.lower_handle_nonce().await, 3);
        assert!(
            rig.settled().await,
            "{:?}",
            pool_of(&rig.child(), rig.operator).await
        );
        assert_eq!(rig.txm.stats().gap_fills, 0, "nothing needed filling");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vote_queued_above_a_reorg_hole_gets_the_hole_filled() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(30)), seed::coins(1)).await;
        let votes = rig.native_requests(3, recipient("txmgr-reorg-hole")).await;
        for (i, (_, data)) in votes.iter().take(2).enumerate() {
            let out = rig
                .txm
                .submit(data.clone(), format!("vote {i}"))
                .await
                .unwrap();
            assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        }
        // The reorg and the next vote come together: the vote is signed at nonce 2 before the
        // poller can see the chain is back at 0, and the node queues it behind a hole.
        rig.reorg(2).await;
        let late = rig.submit(&votes[2].1, "vote 2");
        let out = late.await.unwrap().expect("resolved");
        assert!(mined_or_already_executed(&out), "{out:?}");
        until(30, "nothing of the operator's left queued", || {
            rig.settled()
        })
        .await;
        let stats = rig.txm.stats();
        assert!(stats.gap_fills + stats.rebases >= 1, "{stats:?}");
        // Request 2 executed (by its vote or a copy filling the hole); 0 and 1, orphaned, are
        // voted again as recovery would and go at the chain's nonce.
        let bridge = Bridge::new(rig.d.child.bridge, rig.child());
        for (i, (_, data)) in votes.iter().take(2).enumerate() {
            let out = rig
                .txm
                .submit(data.clone(), format!("again {i}"))
                .await
                .unwrap();
            assert!(mined_or_already_executed(&out), "{out:?}");
        }
        assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 3);
        assert!(rig.settled().await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn votes_the_node_dropped_are_sent_again() {
    bounded(180, async {
        // Bumps far away: only the convergence check can bring them back in time.
        let rig = Rig::start(fees(Duration::from_secs(120)), seed::coins(1)).await;
        let votes = rig.native_requests(4, recipient("txmgr-dropped")).await;
        rig.child().anvil_set_auto_mine(false).await.unwrap();
        let jobs: Vec<_> = votes
            .iter()
            .enumerate()
            .map(|(i, (_, data))| rig.submit(data, &format!("vote {i}")))
            .collect();
        until(30, "four votes in the pool", || async {
            pool_of(&rig.child(), rig.operator).await.0.len() == 4
        })
        .await;
        rig.child().anvil_drop_all_transactions().await.unwrap();
        assert_eq!(pool_of(&rig.child(), rig.operator).await, (vec![], vec![]));
        until(30, "the votes back in the pool", || async {
            pool_of(&rig.child(), rig.operator).await.0 == vec![0, 1, 2, 3]
        })
        .await;
        rig.child().anvil_mine(Some(1), None).await.unwrap();
        for job in jobs {
            let out = job.await.unwrap().expect("mined");
            assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        }
        assert_eq!(rig.lower_handle_nonce().await, 4);
        let stats = rig.txm.stats();
        assert!(stats.repair_resent >= 4, "{stats:?}");
        assert_eq!((stats.replaced, stats.gap_fills), (0, 0), "{stats:?}");
        assert!(rig.settled().await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_sent_elsewhere_from_the_operators_key_takes_a_nonce() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(120)), seed::coins(1)).await;
        let votes = rig.native_requests(2, recipient("txmgr-foreign")).await;
        let out = rig
            .txm
            .submit(votes[0].1.clone(), "vote 0".into())
            .await
            .unwrap();
        assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        // The same key, used by hand (no guard: a plain transfer), takes nonce 1.
        let adapter = bridge_signer::AlloyAdapter::new(
            Arc::clone(rig.guard.signer()),
            Some(rig.d.child.chain_id),
        );
        let by_hand = alloy::providers::ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::new(adapter))
            .connect_http(rig.d.child.rpc_url().parse().unwrap());
        let receipt = by_hand
            .send_transaction(
                TransactionRequest::default()
                    .with_from(rig.operator)
                    .with_to(recipient("by hand"))
                    .with_value(U256::from(1)),
            )
            .await
            .expect("sent by hand")
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        assert_eq!(rig.chain_nonce().await, 2);
        // The manager (at 1) follows the chain: its next vote goes at 2.
        let out = rig
            .txm
            .submit(votes[1].1.clone(), "vote 1".into())
            .await
            .unwrap();
        assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        assert_eq!(rig.tx_nonce(&out).await, 2);
        assert_eq!(rig.lower_handle_nonce().await, 2);
        assert!(rig.settled().await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leftovers_of_an_earlier_run_queued_behind_a_hole_are_taken_over() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(120)), seed::coins(1)).await;
        let votes = rig.native_requests(3, recipient("txmgr-leftovers")).await;
        let p = rig.child();
        // What an earlier run left: its vote for request 1 at nonce 1, bumped to a high fee,
        // queued behind nonce 0 (lost: node restarted, or orphaned by a reorg).
        rig.shutdown.cancel(); // the rig's own manager is not used
        let mut earlier = TxEip1559 {
            chain_id: rig.d.child.chain_id,
            nonce: 1,
            gas_limit: 2_000_000,
            max_fee_per_gas: 150 * GWEI,
            max_priority_fee_per_gas: 20 * GWEI,
            to: TxKind::Call(rig.d.child.bridge),
            input: votes[1].1.clone(),
            ..Default::default()
        };
        let sig = rig
            .guard
            .sign_transaction(&mut earlier)
            .await
            .expect("signed");
        let raw =
            alloy::eips::eip2718::Encodable2718::encoded_2718(&alloy::consensus::TxEnvelope::from(
                alloy::consensus::SignableTransaction::into_signed(earlier, sig),
            ));
        let _: alloy::primitives::B256 = p
            .raw_request("eth_sendRawTransaction".into(), (Bytes::from(raw),))
            .await
            .expect("queued");
        assert_eq!(pool_of(&p, rig.operator).await, (vec![], vec![1]));

        // The next run takes the queued leftover over and starts above it; nothing is fought.
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            config(&rig.d, fees(Duration::from_secs(120)), seed::coins(1)),
            rig.client.clone(),
            Arc::clone(&rig.guard),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let stats = txm.stats();
        assert_eq!((stats.leftovers, stats.nonce), (1, 2), "{stats:?}");
        let out = txm
            .submit(votes[2].1.clone(), "next run".into())
            .await
            .expect("no underpriced replacement, no error");
        assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        assert_eq!(rig.tx_nonce(&out).await, 2);
        until(30, "nothing of the operator's left queued", || {
            rig.settled()
        })
        .await;
        let stats = txm.stats();
        assert_eq!((stats.gap_fills, stats.failed), (1, 0), "{stats:?}");
        // Request 1 executed (its vote, or its copy in the hole); request 0 is recovery's to
        // re-feed, and goes at the chain's nonce.
        let out = txm
            .submit(votes[0].1.clone(), "re-fed".into())
            .await
            .unwrap();
        assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        assert_eq!(rig.tx_nonce(&out).await, 3);
        assert_eq!(rig.lower_handle_nonce().await, 3);
        assert!(rig.settled().await);
        shutdown.cancel();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_capped_below_the_base_fee_is_wedged_until_the_base_fee_falls() {
    bounded(180, async {
        let policy = FeePolicy {
            max_fee_per_gas: 5 * GWEI,
            ..fees(Duration::from_millis(500))
        };
        aws_env();
        let rig = Rig::start(policy, seed::coins(1)).await;
        let votes = rig.native_requests(1, recipient("txmgr-wedged")).await;
        let p = rig.child();
        p.anvil_set_auto_mine(false).await.unwrap();
        // A manager that calls 2 s of no progress wedged (the rig's one says 120 s).
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            TxManagerConfig {
                wedged_after: Duration::from_secs(2),
                ..config(&rig.d, policy, seed::coins(1))
            },
            rig.client.clone(),
            Arc::clone(&rig.guard),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let job = {
            let (txm, data) = (txm.clone(), votes[0].1.clone());
            tokio::spawn(async move { txm.submit(data, "capped".into()).await })
        };
        until(30, "the vote in the pool", || async {
            pool_of(&p, rig.operator).await.0 == vec![0]
        })
        .await;
        // The base fee jumps far above the cap; blocks keep coming without the vote.
        p.anvil_set_next_block_base_fee_per_gas(1_000 * GWEI)
            .await
            .unwrap();
        let miner = {
            let p = p.clone();
            tokio::spawn(async move {
                loop {
                    let _ = p.anvil_mine(Some(1), None).await;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        eprintln!("waiting for the wedged report");
        until(30, "reported wedged", || async {
            txm.stats().wedged.is_some()
        })
        .await;
        let wedged = txm.stats().wedged.unwrap();
        assert_eq!(wedged.nonce, 0);
        assert!(wedged.since_unix() > 0);
        assert_eq!(rig.chain_nonce().await, 0, "not mined while wedged");
        assert!(!job.is_finished());
        // Lifted: the base fee falls under the cap, the vote is mined, the flag clears itself.
        p.anvil_set_next_block_base_fee_per_gas(GWEI).await.unwrap();
        eprintln!("base fee lowered; waiting for the vote to be mined");
        let out = job.await.unwrap().expect("mined once the base fee fell");
        miner.abort();
        assert!(matches!(out, TxOutcome::Mined { .. }), "{out:?}");
        until(30, "no longer wedged", || async {
            txm.stats().wedged.is_none()
        })
        .await;
        shutdown.cancel();
    })
    .await;
}

/// A second node for the child: an anvil forked from it at its head (same state, empty pool),
/// in its own temp dir; killed on drop.
struct ForkedNode {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl ForkedNode {
    async fn start(of: &str, chain_id: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("txmgr-fork-")
            .tempdir()
            .unwrap();
        let log_path = dir.path().join("anvil.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // Port 0: anvil takes a free port and prints it ("Listening on 127.0.0.1:PORT").
        let child = std::process::Command::new(bridge_devkit::devnet::locate_anvil().unwrap())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--chain-id", &chain_id.to_string(), "--fork-url", of])
            .args(["--prune-history", "--cache-path"])
            .arg(dir.path().join("cache"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("anvil --fork-url");
        let port = std::sync::atomic::AtomicU16::new(0);
        until(30, "the forked node says where it listens", || async {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let found = text.lines().find_map(|l| {
                let addr = l.trim().strip_prefix("Listening on ")?;
                addr.rsplit(':').next()?.parse().ok()
            });
            port.store(found.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            found.is_some()
        })
        .await;
        let port = port.into_inner();
        let url = format!("http://127.0.0.1:{port}");
        let p = alloy::providers::ProviderBuilder::new().connect_http(url.parse().unwrap());
        until(30, "the forked node answers", || async {
            p.get_chain_id().await.is_ok()
        })
        .await;
        Self {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for ForkedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_node_with_an_empty_pool_gets_the_pending_votes_again() {
    bounded(180, async {
        let rig = Rig::start(fees(Duration::from_secs(120)), seed::coins(1)).await;
        rig.shutdown.cancel(); // a manager with two endpoints is made below
        let votes = rig.native_requests(3, recipient("txmgr-fresh-node")).await;
        let fresh = ForkedNode::start(&rig.d.child.rpc_url(), rig.d.child.chain_id).await;
        // The manager reaches the first node through a proxy, so the test can cut it off.
        let link = proxy::FaultProxy::start(&rig.d.child.rpc_url()).await;
        let mut access = ChainAccessConfig::new(
            "child",
            rig.d.child.chain_id,
            vec![
                SensitiveUrl::new(link.url("http").parse().unwrap()),
                SensitiveUrl::new(fresh.url.parse().unwrap()),
            ],
        );
        access.rpc_timeout = Duration::from_secs(2);
        let client = ChainClient::connect(access).await.expect("two endpoints");
        let shutdown = CancellationToken::new();
        let txm = TxManager::start(
            config(&rig.d, fees(Duration::from_secs(120)), seed::coins(1)),
            client,
            Arc::clone(&rig.guard),
            shutdown.clone(),
        )
        .await
        .unwrap();
        // The votes wait in the first node's pool...
        rig.child().anvil_set_auto_mine(false).await.unwrap();
        let jobs: Vec<_> = votes
            .iter()
            .enumerate()
            .map(|(i, (_, data))| {
                let (txm, data) = (txm.clone(), data.clone());
                tokio::spawn(async move { txm.submit(data, format!("vote {i}")).await })
            })
            .collect();
        until(30, "three votes in the first node's pool", || async {
            pool_of(&rig.child(), rig.operator).await.0.len() == 3
        })
        .await;
        // ...which the manager can no longer reach: it fails over to a node that never saw them
        // (a fork of the first: same chain, empty pool).
        link.set(proxy::Mode::Cut);
        let mut outcomes = Vec::new();
        for job in jobs {
            outcomes.push(job.await.unwrap());
        }
        for out in &outcomes {
            assert!(matches!(out, Ok(TxOutcome::Mined { .. })), "{out:?}");
        }
        let on_fresh = alloy::providers::ProviderBuilder::new()
            .connect_http(fresh.url.parse().unwrap())
            .erased();
        let bridge = Bridge::new(rig.d.child.bridge, on_fresh.clone());
        assert_eq!(bridge.lowerHandleNonce().call().await.unwrap(), 3);
        assert_eq!(
            on_fresh.get_transaction_count(rig.operator).await.unwrap(),
            3
        );
        assert_eq!(pool_of(&on_fresh, rig.operator).await, (vec![], vec![]));
        let stats = txm.stats();
        assert!(stats.repair_resent >= 3, "{stats:?}");
        shutdown.cancel();
    })
    .await;
}
