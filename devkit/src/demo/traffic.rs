//! Transfers for the demo, the end-to-end tests and the benchmarks: native, ERC-20 and ERC-721
//! requests in both directions from the devnet's users, with what each recipient must end up
//! holding, and the reconciliation of both chains once everything executed.

use super::{DemoError, step};
use crate::devnet::{Devnet, Side, seed};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use bridge_agent::contracts::{Bridge, ServiceChainNFT, ServiceChainToken};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a request's receipt is polled (anvil mines at once).
const RECEIPT_POLL: Duration = Duration::from_millis(5);
/// How often the execution observer reads both destination bridges.
pub const EXECUTION_POLL: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    Native,
    Erc20,
    Erc721,
}

/// One request sent.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Parent → child (else child → parent).
    pub p2c: bool,
    /// The request nonce on the source bridge.
    pub nonce: u64,
    pub kind: Kind,
    /// When its receipt was seen.
    pub at: Instant,
}

/// Sends transfers and keeps what they must add up to.
pub struct Traffic {
    users: Vec<PrivateKeySigner>,
    to_child: Address,
    to_parent: Address,
    parent_nfts: Vec<(usize, U256)>,
    child_nfts: Vec<(usize, U256)>,
    /// Native and ERC-20 sums sent: parent → child, child → parent.
    native: [U256; 2],
    erc20: [U256; 2],
    nfts_moved: Vec<(bool, U256)>,
    by_kind: HashMap<(bool, Kind), usize>,
    sent: Vec<Sent>,
}

impl Traffic {
    pub fn new(d: &Devnet) -> Self {
        let users = d.users();
        let nfts = |ids: fn(usize) -> Vec<U256>| -> Vec<(usize, U256)> {
            (0..users.len())
                .flat_map(|u| ids(u).into_iter().map(move |id| (u, id)))
                .collect()
        };
        Self {
            parent_nfts: nfts(|u| seed::parent_nft_ids(u).collect()),
            child_nfts: nfts(|u| seed::child_nft_ids(u).collect()),
            users,
            to_child: Address::from_word(keccak256("demo recipient on child")),
            to_parent: Address::from_word(keccak256("demo recipient on parent")),
            native: [U256::ZERO; 2],
            erc20: [U256::ZERO; 2],
            nfts_moved: Vec::new(),
            by_kind: HashMap::new(),
            sent: Vec::new(),
        }
    }

    /// Everything sent so far.
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    /// Transfers sent per (parent → child?, kind).
    pub fn by_kind(&self) -> &HashMap<(bool, Kind), usize> {
        &self.by_kind
    }

    /// Sends the next transfer: even ones parent → child, odd ones back; native, ERC-20 and
    /// ERC-721 in turn (native once the user's NFTs run out).
    pub async fn send_next(&mut self, d: &Devnet) -> Result<Sent, DemoError> {
        let i = self.sent.len();
        let p2c = i.is_multiple_of(2);
        let (side, to, pool) = if p2c {
            (&d.parent, self.to_child, &mut self.parent_nfts)
        } else {
            (&d.child, self.to_parent, &mut self.child_nfts)
        };
        let mut kind = [Kind::Native, Kind::Erc20, Kind::Erc721][(i / 2) % 3];
        let mut nft = None;
        let mut user = i % self.users.len();
        if kind == Kind::Erc721 {
            match pool.pop() {
                Some((u, id)) => {
                    user = u;
                    nft = Some(id);
                }
                None => kind = Kind::Native,
            }
        }
        let amount = U256::from(1_000_000u64 + i as u64);
        let nonce = transfer(side, &self.users[user], kind, to, nft, amount).await?;
        let k = usize::from(!p2c);
        match kind {
            Kind::Native => self.native[k] += amount,
            Kind::Erc20 => self.erc20[k] += amount,
            Kind::Erc721 => self.nfts_moved.push((p2c, nft.unwrap_or_default())),
        }
        *self.by_kind.entry((p2c, kind)).or_insert(0) += 1;
        let s = Sent {
            p2c,
            nonce,
            kind,
            at: Instant::now(),
        };
        self.sent.push(s);
        Ok(s)
    }

    /// Checks both chains once everything sent has executed: what each recipient holds, and
    /// that the bridges' locked amounts match what was minted. Returns one line per check.
    pub async fn reconcile(&self, d: &Devnet) -> Result<Vec<String>, DemoError> {
        reconcile(
            d,
            self.to_child,
            self.to_parent,
            [self.native[0], self.native[1], self.erc20[0], self.erc20[1]],
            &self.nfts_moved,
        )
        .await
    }
}

fn enc(c: impl SolCall) -> Bytes {
    c.abi_encode().into()
}

pub async fn send(
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

pub fn request_nonce(r: &alloy::rpc::types::TransactionReceipt) -> Result<u64, DemoError> {
    r.inner
        .logs()
        .iter()
        .find_map(|l| bridge_agent::votes::decode_request(l).ok())
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
pub type Executions = Arc<Mutex<HashMap<(bool, u64), Instant>>>;

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

pub fn observe_executions(d: &Devnet) -> (Executions, tokio::task::JoinHandle<()>) {
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
