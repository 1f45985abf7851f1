//! The demo's load: transfers of every token type in both directions, a progress line while
//! they execute, then latencies and a reconciliation of balances on both chains.

use super::agents::Running;
use super::{DemoError, step};
use crate::contracts::{Bridge, ServiceChainNFT, ServiceChainToken};
use crate::devnet::{Devnet, Side, seed};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);
/// How often the demo polls for its own request receipts (anvil mines at once).
const RECEIPT_POLL: Duration = Duration::from_millis(5);
/// How often the execution observer reads both destination bridges.
const EXECUTION_POLL: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Native,
    Erc20,
    Erc721,
}

pub struct Report {
    transfers: usize,
    by_kind: HashMap<(bool, Kind), usize>,
    latencies_ms: Vec<u128>,
    reconciled: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        let mut l = self.latencies_ms.clone();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        println!("[4/5] summary");
        println!("      transfers executed: {}/{}", l.len(), self.transfers);
        for ((p2c, kind), n) in {
            let mut v: Vec<_> = self.by_kind.iter().collect();
            v.sort_by_key(|((p, k), _)| (!*p, format!("{k:?}")));
            v
        } {
            let dir = if *p2c {
                "parent → child"
            } else {
                "child → parent"
            };
            println!("        {dir} {kind:?}: {n}");
        }
        println!(
            "      latency request mined → executed (4 agents, t = 3): p50 {} ms, p99 {} ms",
            pct(0.50),
            pct(0.99)
        );
        println!("      balances reconciled:");
        for line in &self.reconciled {
            println!("        {line}");
        }
    }
}

struct Sent {
    p2c: bool,
    nonce: u64,
    at: Instant,
}

fn enc(c: impl SolCall) -> Bytes {
    c.abi_encode().into()
}

async fn send(
    p: &DynProvider,
    to: Address,
    data: Bytes,
    value: U256,
) -> Result<alloy::rpc::types::TransactionReceipt, DemoError> {
    let tx = TransactionRequest::default()
        .with_to(to)
        .with_input(data)
        .with_value(value);
    let hash = *p
        .send_transaction(tx)
        .await
        .map_err(|e| step("send a request", e))?
        .tx_hash();
    // anvil mines at once; alloy's receipt heartbeat would add up to its poll interval.
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        match p.get_transaction_receipt(hash).await {
            Ok(Some(r)) => break r,
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(RECEIPT_POLL).await,
            Ok(None) => {
                return Err(step(
                    "request receipt",
                    format!("tx {hash} not mined in 30 s"),
                ));
            }
            Err(e) => return Err(step("request receipt", e)),
        }
    };
    if !r.status() {
        return Err(step(
            "send a request",
            format!("tx {} reverted", r.transaction_hash),
        ));
    }
    Ok(r)
}

fn request_nonce(r: &alloy::rpc::types::TransactionReceipt) -> Result<u64, DemoError> {
    r.inner
        .logs()
        .iter()
        .find_map(|l| crate::votes::decode_request(l).ok())
        .map(|req| req.nonce)
        .ok_or_else(|| {
            step(
                "read the request event",
                format!("none in tx {}", r.transaction_hash),
            )
        })
}

/// Sends one transfer of `kind` from `user` on `side`; returns its request nonce.
async fn transfer(
    side: &Side,
    user: &PrivateKeySigner,
    kind: Kind,
    to: Address,
    nft: Option<U256>,
    amount: U256,
) -> Result<u64, DemoError> {
    let p = side.provider_with(user.clone());
    let receipt = match kind {
        Kind::Native => {
            let call = Bridge::requestKLAYTransferCall {
                to,
                value: amount,
                extraData: Bytes::from_static(b"demo"),
            };
            send(&p, side.bridge, enc(call), amount).await?
        }
        Kind::Erc20 => {
            send(
                &p,
                side.erc20,
                enc(ServiceChainToken::approveCall {
                    spender: side.bridge,
                    value: amount,
                }),
                U256::ZERO,
            )
            .await?;
            let call = Bridge::requestERC20TransferCall {
                token: side.erc20,
                to,
                value: amount,
                feeLimit: U256::ZERO,
                extraData: Bytes::new(),
            };
            send(&p, side.bridge, enc(call), U256::ZERO).await?
        }
        Kind::Erc721 => {
            let id = nft.expect("an NFT id for an ERC-721 transfer");
            send(
                &p,
                side.erc721,
                enc(ServiceChainNFT::approveCall {
                    to: side.bridge,
                    tokenId: id,
                }),
                U256::ZERO,
            )
            .await?;
            let call = Bridge::requestERC721TransferCall {
                token: side.erc721,
                to,
                tokenId: id,
                extraData: Bytes::new(),
            };
            send(&p, side.bridge, enc(call), U256::ZERO).await?
        }
    };
    request_nonce(&receipt)
}

/// Request nonces executed on `dest` in blocks `from..` (HandleValueTransfer events), and the
/// block to read from next time.
async fn executed_since(dest: &Watched, from: u64) -> Result<(Vec<u64>, u64), DemoError> {
    let reader = &dest.reader;
    let head = reader
        .get_block_number()
        .await
        .map_err(|e| step("read the head", e))?;
    if head < from {
        return Ok((Vec::new(), from));
    }
    let filter = Filter::new()
        .address(dest.bridge)
        .from_block(from)
        .to_block(head)
        .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH);
    let logs = reader
        .get_logs(&filter)
        .await
        .map_err(|e| step("read HandleValueTransfer", e))?;
    let nonces = logs
        .iter()
        .filter_map(|l| l.log_decode::<Bridge::HandleValueTransfer>().ok())
        .map(|l| l.inner.data.handleNonce)
        .collect();
    Ok((nonces, head + 1))
}

/// When each request was seen executed, keyed by (parent → child?, nonce): filled by a task
/// that polls both destination bridges every [`EXECUTION_POLL`] while transfers are sent.
type Executions = Arc<Mutex<HashMap<(bool, u64), Instant>>>;

/// A destination bridge the observer reads.
struct Watched {
    reader: DynProvider,
    bridge: Address,
}

impl Watched {
    fn of(side: &Side) -> Self {
        Self {
            reader: side.reader(),
            bridge: side.bridge,
        }
    }
}

fn observe_executions(d: &Devnet) -> (Executions, tokio::task::JoinHandle<()>) {
    let seen: Executions = Arc::default();
    let (child, parent) = (Watched::of(&d.child), Watched::of(&d.parent));
    let (mut next_child, mut next_parent) =
        (d.child.bridge_deploy_block, d.parent.bridge_deploy_block);
    let out = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            for (p2c, dest, next) in [
                (true, &child, &mut next_child),
                (false, &parent, &mut next_parent),
            ] {
                // A failed read is retried on the next round; the demo's deadline bounds it.
                if let Ok((nonces, n)) = executed_since(dest, *next).await {
                    let now = Instant::now();
                    let mut map = out.lock().unwrap_or_else(PoisonError::into_inner);
                    for nonce in nonces {
                        map.entry((p2c, nonce)).or_insert(now);
                    }
                    *next = n;
                }
            }
            tokio::time::sleep(EXECUTION_POLL).await;
        }
    });
    (seen, task)
}

/// How the demo sends its transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// All at once, one after another without waiting: the agents vote under load.
    Burst,
    /// Each only after the previous one executed: the unloaded latency (benchmark P3).
    OneAtATime,
}

pub async fn run(d: &Devnet, n: usize, pace: Pace, agents: &Running) -> Result<Report, DemoError> {
    let (executions, observer) = observe_executions(d);
    let result = send_and_wait(d, n, pace, agents, &executions).await;
    observer.abort();
    result
}

async fn send_and_wait(
    d: &Devnet,
    n: usize,
    pace: Pace,
    agents: &Running,
    executions: &Executions,
) -> Result<Report, DemoError> {
    let users = d.users();
    let to_child = Address::from_word(keccak256("demo recipient on child"));
    let to_parent = Address::from_word(keccak256("demo recipient on parent"));
    let mut parent_nfts: Vec<(usize, U256)> = (0..users.len())
        .flat_map(|u| seed::parent_nft_ids(u).map(move |id| (u, id)))
        .collect();
    let mut child_nfts: Vec<(usize, U256)> = (0..users.len())
        .flat_map(|u| seed::child_nft_ids(u).map(move |id| (u, id)))
        .collect();
    let mut sent = Vec::with_capacity(n);
    let mut by_kind = HashMap::new();
    let (mut native_p2c, mut native_c2p, mut erc20_p2c, mut erc20_c2p) =
        (U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO);
    let mut nfts_moved = Vec::new();
    let how = match pace {
        Pace::Burst => "without waiting",
        Pace::OneAtATime => "one at a time, each after the previous executed",
    };
    println!("      sending {n} transfers (native, ERC-20, ERC-721; both directions), {how}…");
    let progress = Progress::new(n);
    for i in 0..n {
        let p2c = i % 2 == 0;
        let (side, to) = if p2c {
            (&d.parent, to_child)
        } else {
            (&d.child, to_parent)
        };
        let pool = if p2c {
            &mut parent_nfts
        } else {
            &mut child_nfts
        };
        let mut kind = [Kind::Native, Kind::Erc20, Kind::Erc721][(i / 2) % 3];
        let mut nft = None;
        let mut user = &users[i % users.len()];
        if kind == Kind::Erc721 {
            match pool.pop() {
                Some((u, id)) => {
                    user = &users[u];
                    nft = Some(id);
                }
                None => kind = Kind::Native,
            }
        }
        let amount = U256::from(1_000_000u64 + i as u64);
        let nonce = transfer(side, user, kind, to, nft, amount).await?;
        let at = Instant::now();
        match (kind, p2c) {
            (Kind::Native, true) => native_p2c += amount,
            (Kind::Native, false) => native_c2p += amount,
            (Kind::Erc20, true) => erc20_p2c += amount,
            (Kind::Erc20, false) => erc20_c2p += amount,
            (Kind::Erc721, _) => nfts_moved.push((p2c, nft.unwrap_or_default())),
        }
        *by_kind.entry((p2c, kind)).or_insert(0) += 1;
        sent.push(Sent { p2c, nonce, at });
        if pace == Pace::OneAtATime {
            wait_executed(&sent[sent.len() - 1..], executions, None, agents).await?;
        }
        progress.show(done_count(&sent, executions));
    }
    let latencies = wait_executed(&sent, executions, Some(&progress), agents).await?;
    eprintln!();

    let reconciled = reconcile(
        d,
        to_child,
        to_parent,
        [native_p2c, native_c2p, erc20_p2c, erc20_c2p],
        &nfts_moved,
    )
    .await?;
    Ok(Report {
        transfers: n,
        by_kind,
        latencies_ms: latencies,
        reconciled,
    })
}

fn done_count(sent: &[Sent], executions: &Executions) -> usize {
    let map = executions.lock().unwrap_or_else(PoisonError::into_inner);
    sent.iter()
        .filter(|s| map.contains_key(&(s.p2c, s.nonce)))
        .count()
}

/// Waits up to [`TIMEOUT`] until every transfer in `sent` executed; returns their latencies in
/// milliseconds (request receipt → execution seen).
async fn wait_executed(
    sent: &[Sent],
    executions: &Executions,
    progress: Option<&Progress>,
    agents: &Running,
) -> Result<Vec<u128>, DemoError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        {
            let map = executions.lock().unwrap_or_else(PoisonError::into_inner);
            let done: Vec<u128> = sent
                .iter()
                .filter_map(|s| {
                    map.get(&(s.p2c, s.nonce))
                        .map(|t| t.saturating_duration_since(s.at).as_millis())
                })
                .collect();
            if let Some(p) = progress {
                p.show(done.len());
            }
            if done.len() == sent.len() {
                return Ok(done);
            }
            if Instant::now() > deadline {
                eprintln!();
                eprintln!("{}", agents.log_tails());
                return Err(DemoError::Timeout(
                    sent.len() - done.len(),
                    TIMEOUT,
                    "the demo folder's agents/".into(),
                ));
            }
        }
        tokio::time::sleep(EXECUTION_POLL).await;
    }
}

/// The progress line on stderr.
struct Progress {
    total: usize,
    shown: std::cell::Cell<usize>,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            shown: std::cell::Cell::new(usize::MAX),
        }
    }

    fn show(&self, done: usize) {
        if self.shown.replace(done) == done {
            return;
        }
        let width = 30;
        let filled = done * width / self.total.max(1);
        eprint!(
            "\r      [{}{}] {done}/{} executed",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
    }
}

/// Checks what the recipients hold and that the bridges' locked amounts match what was minted.
async fn reconcile(
    d: &Devnet,
    to_child: Address,
    to_parent: Address,
    sums: [U256; 4],
    nfts: &[(bool, U256)],
) -> Result<Vec<String>, DemoError> {
    let [native_p2c, native_c2p, erc20_p2c, erc20_c2p] = sums;
    let (p, c) = (d.parent.reader(), d.child.reader());
    let bal = |pr: &DynProvider, a: Address| {
        let pr = pr.clone();
        async move {
            pr.get_balance(a)
                .await
                .map_err(|e| step("read a balance", e))
        }
    };
    let check = |what: &str, got: U256, want: U256| {
        if got == want {
            Ok(format!("{what}: {got} ✓"))
        } else {
            Err(DemoError::Reconcile(format!(
                "{what}: expected {want}, found {got}"
            )))
        }
    };
    let token = |side: &Side, pr: &DynProvider| ServiceChainToken::new(side.erc20, pr.clone());
    let mut lines = vec![
        check(
            "native received on child",
            bal(&c, to_child).await?,
            native_p2c,
        )?,
        check(
            "native received on parent",
            bal(&p, to_parent).await?,
            native_c2p,
        )?,
        check(
            "ERC-20 received on child",
            token(&d.child, &c)
                .balanceOf(to_child)
                .call()
                .await
                .map_err(|e| step("balanceOf", e))?,
            erc20_p2c,
        )?,
        check(
            "ERC-20 received on parent",
            token(&d.parent, &p)
                .balanceOf(to_parent)
                .call()
                .await
                .map_err(|e| step("balanceOf", e))?,
            erc20_c2p,
        )?,
    ];
    // Conservation: the native coin held by both bridges together never changes, and every
    // child-side token is backed by one locked in the parent bridge.
    let held = bal(&p, d.parent.bridge).await? + bal(&c, d.child.bridge).await?;
    lines.push(check(
        "native held by both bridges (conserved)",
        held,
        seed::bridge_liquidity() * U256::from(2),
    )?);
    lines.push(check(
        "ERC-20 locked on parent = supply on child",
        token(&d.parent, &p)
            .balanceOf(d.parent.bridge)
            .call()
            .await
            .map_err(|e| step("balanceOf", e))?,
        token(&d.child, &c)
            .totalSupply()
            .call()
            .await
            .map_err(|e| step("totalSupply", e))?,
    )?);
    for (p2c, id) in nfts {
        let (side, pr, to) = if *p2c {
            (&d.child, &c, to_child)
        } else {
            (&d.parent, &p, to_parent)
        };
        let owner = ServiceChainNFT::new(side.erc721, pr.clone())
            .ownerOf(*id)
            .call()
            .await
            .map_err(|e| step("ownerOf", e))?;
        if owner != to {
            return Err(DemoError::Reconcile(format!(
                "NFT {id} is owned by {owner}, not the recipient {to}"
            )));
        }
    }
    lines.push(format!(
        "ERC-721: {} NFT(s) owned by their recipients ✓",
        nfts.len()
    ));
    Ok(lines)
}
