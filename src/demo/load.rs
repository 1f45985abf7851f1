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
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

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
    let r = p
        .send_transaction(tx)
        .await
        .map_err(|e| step("send a request", e))?
        .get_receipt()
        .await
        .map_err(|e| step("request receipt", e))?;
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

/// Executed request nonces on `dest` so far (HandleValueTransfer events).
async fn executed(dest: &Side) -> Result<Vec<u64>, DemoError> {
    let filter = Filter::new()
        .address(dest.bridge)
        .from_block(dest.bridge_deploy_block)
        .event_signature(Bridge::HandleValueTransfer::SIGNATURE_HASH);
    let logs = dest
        .reader()
        .get_logs(&filter)
        .await
        .map_err(|e| step("read HandleValueTransfer", e))?;
    Ok(logs
        .iter()
        .filter_map(|l| l.log_decode::<Bridge::HandleValueTransfer>().ok())
        .map(|l| l.inner.data.handleNonce)
        .collect())
}

pub async fn run(d: &Devnet, n: usize, agents: &Running) -> Result<Report, DemoError> {
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
    println!("      sending {n} transfers (native, ERC-20, ERC-721; both directions)…");
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
        let at = Instant::now();
        let nonce = transfer(side, user, kind, to, nft, amount).await?;
        match (kind, p2c) {
            (Kind::Native, true) => native_p2c += amount,
            (Kind::Native, false) => native_c2p += amount,
            (Kind::Erc20, true) => erc20_p2c += amount,
            (Kind::Erc20, false) => erc20_c2p += amount,
            (Kind::Erc721, _) => nfts_moved.push((p2c, nft.unwrap_or_default())),
        }
        *by_kind.entry((p2c, kind)).or_insert(0) += 1;
        sent.push(Sent { p2c, nonce, at });
    }

    // Wait for every request to execute, with a progress line.
    let deadline = Instant::now() + TIMEOUT;
    let mut latencies = HashMap::new();
    let mut shown = usize::MAX;
    loop {
        let (on_child, on_parent) = (executed(&d.child).await?, executed(&d.parent).await?);
        for s in &sent {
            let done = if s.p2c { &on_child } else { &on_parent };
            if done.contains(&s.nonce) {
                latencies
                    .entry((s.p2c, s.nonce))
                    .or_insert_with(|| s.at.elapsed().as_millis());
            }
        }
        if latencies.len() != shown {
            shown = latencies.len();
            let width = 30;
            let filled = shown * width / n.max(1);
            eprint!(
                "\r      [{}{}] {shown}/{n} executed",
                "#".repeat(filled),
                ".".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        }
        if latencies.len() == n {
            eprintln!();
            break;
        }
        if Instant::now() > deadline {
            eprintln!();
            eprintln!("{}", agents.log_tails());
            return Err(DemoError::Timeout(
                n - latencies.len(),
                TIMEOUT,
                "the demo folder's agents/".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

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
        latencies_ms: latencies.into_values().collect(),
        reconciled,
    })
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
