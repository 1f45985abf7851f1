//! Load faster than `Traffic::send_next`: many requests (native and ERC-20, both directions)
//! from every devnet user at once, each signed locally with a nonce kept here and sent without
//! waiting for its receipt; and the plain-key voter the benchmarks compare the agents with.
//!
//! ```text
//! request i: even → parent → child, odd → child → parent; native and ERC-20 in turn;
//!            user (i / 2) mod users; one sequential sender per chain, both chains at once
//! ```
//!
//! One stream per chain, in chunks that are mined before the next is sent: with ~1,000
//! transactions queued at once anvil was seen to drop accepted ones (the sender's nonce stopped
//! short with an empty pool). And not one stream per sender: with several senders' transactions arriving at
//! once, anvil's automine was seen to leave ready transactions unmined and to answer
//! inconsistently (a handle nonce neither closed nor below `lowerHandleNonce`, yet its vote
//! reverting with `AlreadyExecuted`; executions without their `HandleValueTransfer` log).
//!
//! anvil's automine can leave ready transactions unmined when many arrive at once
//! (foundry-rs/foundry#10122): they wait for the next transaction to trigger a block. Where this
//! module waits for its own transactions and nothing moves for [`KICK_AFTER`], it mines one
//! empty block (`evm_mine`), which takes them in, and counts it in [`kicks`].
//!
//! Nothing here waits for receipts, so a request that reverted would go unnoticed: `send`
//! therefore ends by checking that each source bridge's `requestNonce` moved by exactly what was
//! sent.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use bridge_agent::contracts::{Bridge, ServiceChainToken};
use bridge_agent::votes::{Request, decode_request, handle_calldata};
use bridge_devkit::devnet::{Devnet, Side};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long a wait sees no progress before it mines a block to take stuck transactions in.
pub const KICK_AFTER: Duration = Duration::from_millis(250);
static KICKS: AtomicU64 = AtomicU64::new(0);
/// Set when the chains mine on an interval: then no block is mined by hand (there is no
/// automine to get stuck, and a kick would speed up only the phase that waits here), and
/// requests and votes go unchunked, at full speed (the chunks are automine's workaround).
static INTERVAL_MINING: AtomicBool = AtomicBool::new(false);

/// Tells this module the chains mine on an interval (see [`INTERVAL_MINING`]).
pub fn set_interval_mining(on: bool) {
    INTERVAL_MINING.store(on, Ordering::Relaxed);
}

/// `chunk` under automine, everything at once under interval mining.
fn chunk(chunk: usize) -> usize {
    if INTERVAL_MINING.load(Ordering::Relaxed) {
        usize::MAX / 2
    } else {
        chunk
    }
}

/// Blocks mined by hand so far because anvil's automine left ready transactions behind.
pub fn kicks() -> u64 {
    KICKS.load(Ordering::Relaxed)
}

/// Mines one block on `c`'s chain.
async fn kick(c: &Chain) {
    let _: serde_json::Value = c
        .provider
        .raw_request("evm_mine".into(), ())
        .await
        .unwrap_or_else(|e| panic!("evm_mine: {e}"));
    KICKS.fetch_add(1, Ordering::Relaxed);
}

/// Waits until `read` reaches `target` on `c`, mining a block whenever it stalls for
/// [`KICK_AFTER`]; panics after `timeout` with `what` and the last value read.
async fn wait_reaching<F, Fut>(c: &Chain, target: u64, timeout: Duration, what: &str, read: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let deadline = Instant::now() + timeout;
    let (mut last, mut since) = (u64::MAX, Instant::now());
    loop {
        let now = read().await;
        if now >= target {
            return;
        }
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= KICK_AFTER && !INTERVAL_MINING.load(Ordering::Relaxed) {
            kick(c).await;
            since = Instant::now();
        }
        if Instant::now() >= deadline {
            let pool: serde_json::Value = c
                .provider
                .raw_request("txpool_inspect".into(), ())
                .await
                .unwrap_or_default();
            let text = pool.to_string();
            panic!(
                "{what} on chain {}: {now} < {target} after {timeout:?}; txpool: {}",
                c.chain_id,
                &text[..text.len().min(3000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Gas limit of a request (a native request uses ~60k, an ERC-20 one ~90k).
const REQUEST_GAS: u64 = 300_000;
/// Gas limit of a plain-key vote. The executing vote also advances `lowerHandleNonce` over
/// nonces already executed out of order (up to `MAX_HANDLE_NONCE_ADVANCE` = 200 of them, ~5k gas
/// each), so a fixed limit must cover that sweep; only the gas used is paid.
const VOTE_GAS: u64 = 2_000_000;
/// A fee cap far above anvil's base fee at any point of a run. With many transactions per
/// block the base fee climbs, and anvil silently drops a pooled transaction whose cap fell below
/// it (seen with 100 gwei: voters' nonces stopped short with an empty pool). Only base fee plus
/// tip is paid.
const MAX_FEE: u128 = 5_000_000_000_000;
/// Requests sent at once per chain before waiting for them to be counted (see `VOTE_CHUNK`).
const REQUEST_CHUNK: usize = 250;
/// Requests whose votes are sent at once before waiting for them to be mined (see `vote_all`).
const VOTE_CHUNK: usize = 100;
const PRIORITY_FEE: u128 = 1_000_000_000;

/// What one chain needs for raw sending.
struct Chain {
    provider: DynProvider,
    chain_id: u64,
    bridge: Address,
    erc20: Address,
}

impl Chain {
    fn of(side: &Side) -> Self {
        Self {
            provider: side.reader(),
            chain_id: side.chain_id,
            bridge: side.bridge,
            erc20: side.erc20,
        }
    }
}

/// A signed transaction for `to`, ready for `eth_sendRawTransaction`.
fn sign(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
    input: Bytes,
    gas: u64,
) -> Bytes {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: MAX_FEE,
        max_priority_fee_per_gas: PRIORITY_FEE,
        to: TxKind::Call(to),
        value,
        input,
        access_list: Default::default(),
    };
    let sig = key
        .sign_hash_sync(&tx.signature_hash())
        .expect("a local key signs");
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into()
}

/// Sends `txs` (already signed, in nonce order) one after another, each as soon as the node
/// accepted the previous one.
async fn send_in_order(provider: DynProvider, txs: Vec<Bytes>) {
    for raw in txs {
        let _pending = provider
            .send_raw_transaction(&raw)
            .await
            .unwrap_or_else(|e| panic!("eth_sendRawTransaction: {e}"));
    }
}

/// The devnet's users, as a fast request source.
pub struct Burst {
    users: Vec<PrivateKeySigner>,
    parent: Chain,
    child: Chain,
    /// Requests sent so far: parent → child, child → parent.
    pub sent: [u64; 2],
}

impl Burst {
    /// Approves the bridges for every user's ERC-20 once (waiting for those receipts), so each
    /// ERC-20 request is a single transaction afterwards.
    pub async fn prepare(d: &Devnet) -> Burst {
        let burst = Burst {
            users: d.users(),
            parent: Chain::of(&d.parent),
            child: Chain::of(&d.child),
            sent: [
                request_nonce(&Chain::of(&d.parent)).await,
                request_nonce(&Chain::of(&d.child)).await,
            ],
        };
        for side in [&d.parent, &d.child] {
            for user in &burst.users {
                let approve = ServiceChainToken::approveCall {
                    spender: side.bridge,
                    value: U256::MAX,
                };
                let tx = TransactionRequest::default()
                    .with_to(side.erc20)
                    .with_input(Bytes::from(approve.abi_encode()));
                let receipt = side
                    .provider_with(user.clone())
                    .send_transaction(tx)
                    .await
                    .unwrap()
                    .get_receipt()
                    .await
                    .unwrap();
                assert!(receipt.status(), "ERC-20 approve reverted");
            }
        }
        burst
    }

    /// Sends `n` requests as fast as the chains take them and returns once both source bridges
    /// counted them all. Returns how long sending took.
    pub async fn send(&mut self, n: usize) -> Duration {
        let start = Instant::now();
        let users = self.users.len();
        // Per chain, every request in order (one stream per chain: see the module docs).
        let mut queues: Vec<Vec<Bytes>> = vec![Vec::new(); 2];
        let mut nonces = Vec::new();
        for (side, chain) in [(0, &self.parent), (1, &self.child)] {
            for u in &self.users {
                let nonce = chain
                    .provider
                    .get_transaction_count(u.address())
                    .pending()
                    .await
                    .unwrap();
                nonces.push((side, nonce));
            }
        }
        let recipient = Address::repeat_byte(0x5e);
        let mut counts = [0u64; 2];
        for i in 0..n {
            let side = i % 2;
            let u = (i / 2) % users;
            let q = side * users + u;
            let chain = if side == 0 { &self.parent } else { &self.child };
            let amount = U256::from(1_000_000 + i as u64);
            let (value, to, input) = if (i / 2) % 2 == 0 {
                let call = Bridge::requestKLAYTransferCall {
                    to: recipient,
                    value: amount,
                    extraData: Bytes::from_static(b"burst"),
                };
                (amount, chain.bridge, call.abi_encode())
            } else {
                let call = Bridge::requestERC20TransferCall {
                    token: chain.erc20,
                    to: recipient,
                    value: amount,
                    feeLimit: U256::ZERO,
                    extraData: Bytes::new(),
                };
                (U256::ZERO, chain.bridge, call.abi_encode())
            };
            let nonce = nonces[q].1;
            nonces[q].1 += 1;
            queues[side].push(sign(
                &self.users[u],
                chain.chain_id,
                nonce,
                to,
                value,
                input.into(),
                REQUEST_GAS,
            ));
            counts[side] += 1;
        }
        // In chunks, each counted on chain before the next goes (see `VOTE_CHUNK`).
        let base = self.sent;
        let longest = queues.iter().map(Vec::len).max().unwrap_or(0);
        let mut sent = 0;
        while sent < longest {
            let end = sent.saturating_add(chunk(REQUEST_CHUNK)).min(longest);
            let mut tasks = JoinSet::new();
            for (q, txs) in queues.iter().enumerate() {
                let chain = if q == 0 { &self.parent } else { &self.child };
                let chunk = txs[sent.min(txs.len())..end.min(txs.len())].to_vec();
                tasks.spawn(send_in_order(chain.provider.clone(), chunk));
            }
            while let Some(r) = tasks.join_next().await {
                r.expect("a request sender panicked");
            }
            for (q, chain) in [&self.parent, &self.child].into_iter().enumerate() {
                let want = base[q] + end.min(queues[q].len()) as u64;
                wait_reaching(
                    chain,
                    want,
                    Duration::from_secs(60),
                    "requests counted",
                    || request_nonce(chain),
                )
                .await;
            }
            sent = end;
        }
        self.sent[0] += counts[0];
        self.sent[1] += counts[1];
        for (chain, want) in [(&self.parent, self.sent[0]), (&self.child, self.sent[1])] {
            let got = request_nonce(chain).await;
            assert_eq!(got, want, "requestNonce against the requests sent");
        }
        start.elapsed()
    }
}

/// The plain-key baseline: `voters` vote every request of both directions from local keys,
/// each voter's votes on one chain sent in nonce order without waiting for receipts, all voters
/// and both chains at once.
pub struct RawVoters {
    voters: Vec<PrivateKeySigner>,
    parent: Chain,
    child: Chain,
    /// Executions seen on the child and on the parent.
    executed: tokio::sync::Mutex<[Executed; 2]>,
}

impl RawVoters {
    pub async fn new(d: &Devnet, voters: Vec<PrivateKeySigner>) -> Self {
        Self {
            voters,
            parent: Chain::of(&d.parent),
            child: Chain::of(&d.child),
            executed: tokio::sync::Mutex::new([
                Executed::new(&d.child).await,
                Executed::new(&d.parent).await,
            ]),
        }
    }

    /// The handle calldata of every request on `source` not in `done`, exactly as an agent
    /// builds it (the counterpart token is the other side's ERC-20).
    async fn handles(source: &Chain, dest: &Chain, done: u64) -> Vec<(u64, Bytes)> {
        let filter = Filter::new()
            .address(source.bridge)
            .from_block(0)
            .event_signature(Bridge::RequestValueTransfer::SIGNATURE_HASH);
        let mut reqs: Vec<Request> = source
            .provider
            .get_logs(&filter)
            .await
            .unwrap()
            .iter()
            .map(|l| decode_request(l).expect("a well-formed request"))
            .filter(|r| r.nonce >= done)
            .collect();
        reqs.sort_by_key(|r| r.nonce);
        reqs.iter()
            .map(|r| {
                let token = if r.token == source.erc20 {
                    dest.erc20
                } else {
                    Address::ZERO
                };
                (r.nonce, handle_calldata(r, token))
            })
            .collect()
    }

    /// Votes every request not yet executed on both sides, and returns once all executed: the
    /// time from the first vote sent to the last execution seen, and the votes sent.
    pub async fn vote_all(&self) -> (Duration, usize, [(u64, u64); 2]) {
        let mut executed = self.executed.lock().await;
        let mut plan = Vec::new();
        for (k, (source, dest)) in [(&self.parent, &self.child), (&self.child, &self.parent)]
            .into_iter()
            .enumerate()
        {
            executed[k].poll().await;
            let done = executed[k].poll().await;
            let handles = Self::handles(source, dest, done).await;
            let target = request_nonce(source).await;
            plan.push((dest, handles, target));
        }
        // Everything is signed before the clock starts: the baseline is the chain's rate.
        let mut streams = Vec::new();
        let mut votes = 0;
        let mut firsts = std::collections::HashMap::new();
        for (dest, handles, _) in &plan {
            let mut nonces = Vec::new();
            for v in &self.voters {
                nonces.push(
                    dest.provider
                        .get_transaction_count(v.address())
                        .pending()
                        .await
                        .unwrap(),
                );
            }
            // Request by request, every voter's vote in turn, on one stream per chain.
            let mut txs = Vec::new();
            for (_, h) in handles {
                for (v, nonce) in self.voters.iter().zip(nonces.iter_mut()) {
                    txs.push(sign(
                        v,
                        dest.chain_id,
                        *nonce,
                        dest.bridge,
                        U256::ZERO,
                        h.clone(),
                        VOTE_GAS,
                    ));
                    *nonce += 1;
                }
            }
            votes += txs.len();
            firsts.insert(
                dest.chain_id,
                nonces
                    .iter()
                    .map(|n| n - handles.len() as u64)
                    .collect::<Vec<_>>(),
            );
            streams.push((dest.provider.clone(), txs));
        }
        // Votes go in chunks of VOTE_CHUNK requests, both chains at once, each chunk mined before
        // the next is sent: with ~1,000 votes queued on one stream anvil was seen to drop
        // accepted transactions (a voter's nonce stopped short with an empty pool).
        let voters = self.voters.len();
        let start = Instant::now();
        let longest = streams.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
        let mut sent = 0;
        while sent < longest {
            let end = sent
                .saturating_add(chunk(VOTE_CHUNK).saturating_mul(voters))
                .min(longest);
            let mut tasks = JoinSet::new();
            for (p, txs) in &streams {
                let chunk = txs[sent.min(txs.len())..end.min(txs.len())].to_vec();
                tasks.spawn(send_in_order(p.clone(), chunk));
            }
            while let Some(r) = tasks.join_next().await {
                r.expect("a vote sender panicked");
            }
            for (dest, handles, _) in &plan {
                let requests = (end / voters).min(handles.len()) as u64;
                for (v, first) in self.voters.iter().zip(&firsts[&dest.chain_id]) {
                    wait_reaching(
                        dest,
                        first + requests,
                        Duration::from_secs(120),
                        "plain-key votes mined",
                        || async {
                            dest.provider
                                .get_transaction_count(v.address())
                                .latest()
                                .await
                                .unwrap()
                        },
                    )
                    .await;
                }
            }
            sent = end;
        }
        let elapsed = start.elapsed();
        let mut done = [(0, 0); 2];
        for (k, (_, _, target)) in plan.iter().enumerate() {
            done[k] = (*target, executed[k].poll().await);
        }
        (elapsed, votes, done)
    }
}

/// Counts the requests a destination bridge executed, from its state: the longest prefix of
/// nonces with `closedValueTransferVotes` set, found from `lowerHandleNonce` on (one execution
/// advances `lowerHandleNonce` by at most `MAX_HANDLE_NONCE_ADVANCE`, so after out-of-order
/// executions it may lag until the next one). Not from `HandleValueTransfer` logs: under this
/// load anvil's `eth_getLogs` was seen to miss executions its state shows.
pub struct Executed {
    chain: Chain,
    /// Every nonce below this one executed.
    pub prefix: u64,
    /// `eth_call`s made.
    pub calls: u64,
}

impl Executed {
    pub async fn new(dest: &Side) -> Self {
        let mut e = Self {
            chain: Chain::of(dest),
            prefix: 0,
            calls: 0,
        };
        e.poll().await;
        e
    }

    /// Reads the destination; returns how many requests (a prefix of the nonces) executed.
    pub async fn poll(&mut self) -> u64 {
        let bridge = Bridge::new(self.chain.bridge, &self.chain.provider);
        self.calls += 1;
        self.prefix = self
            .prefix
            .max(bridge.lowerHandleNonce().call().await.unwrap());
        loop {
            self.calls += 1;
            if !bridge
                .closedValueTransferVotes(self.prefix)
                .call()
                .await
                .unwrap()
            {
                return self.prefix;
            }
            self.prefix += 1;
        }
    }

    /// Waits until `target` requests executed, mining a block when nothing moves for
    /// [`KICK_AFTER`] (see the module docs); panics after `timeout`.
    pub async fn wait(&mut self, target: u64, timeout: Duration, what: &str) {
        let chain = Chain {
            provider: self.chain.provider.clone(),
            ..self.chain
        };
        let cell = tokio::sync::Mutex::new(self);
        wait_reaching(&chain, target, timeout, what, || async {
            cell.lock().await.poll().await
        })
        .await;
    }
}

async fn request_nonce(c: &Chain) -> u64 {
    Bridge::new(c.bridge, &c.provider)
        .requestNonce()
        .call()
        .await
        .unwrap()
}
