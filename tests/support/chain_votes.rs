//! Votes as the destination chain recorded them: every `handle*Transfer` transaction to the
//! bridge, read from the blocks with its receipt. One reading for both dialects: Kaia's bridge
//! emits no `Voted` event and mines a repeated identical vote without any event, so events
//! cannot count repeats; transactions can.

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, keccak256};
use alloy::providers::Provider;
use alloy::sol_types::{SolCall, SolEvent};
use bridge_agent::contracts::Bridge;
use bridge_devkit::demo::traffic::Kind;
use bridge_devkit::devnet::Side;
use std::collections::BTreeMap;

/// One handle transaction mined on the destination.
#[derive(Clone, Debug)]
pub struct HandleTx {
    pub block: u64,
    pub hash: B256,
    pub from: Address,
    /// The request nonce it votes for.
    pub nonce: u64,
    pub kind: Kind,
    /// `keccak256(calldata)`: the vote key.
    pub key: B256,
    /// Whether it succeeded (a vote that counted, or a repeat that changed nothing).
    pub ok: bool,
    /// Whether it was the closing vote (its receipt has the `HandleValueTransfer`).
    pub executed: bool,
    pub gas_used: u64,
}

/// The handle kind and the word index of `requestedNonce` in its arguments.
fn handle_of(input: &[u8]) -> Option<(Kind, usize)> {
    let selector: [u8; 4] = input.get(..4)?.try_into().ok()?;
    match selector {
        Bridge::handleKLAYTransferCall::SELECTOR => Some((Kind::Native, 4)),
        Bridge::handleERC20TransferCall::SELECTOR => Some((Kind::Erc20, 5)),
        Bridge::handleERC721TransferCall::SELECTOR => Some((Kind::Erc721, 5)),
        _ => None,
    }
}

/// The `requestedNonce` argument, read from its word (no full decode: a URI that is not UTF-8
/// must not hide a vote).
fn nonce_of(input: &[u8], word: usize) -> Option<u64> {
    let w = input.get(4 + 32 * word..4 + 32 * (word + 1))?;
    Some(u64::from_be_bytes(w[24..].try_into().ok()?))
}

/// The transactions of block `n`. anvil sometimes answers a full block read with null right
/// after `anvil_reorg` re-included transactions in it (seen in `tests/ha/dest_reorg.rs`); the
/// block by hashes and each transaction by hash still answer then.
async fn block_txs(reader: &impl Provider, n: u64) -> Vec<alloy::rpc::types::Transaction> {
    let number = BlockNumberOrTag::Number(n);
    if let Some(block) = reader.get_block_by_number(number).full().await.unwrap() {
        return block.transactions.into_transactions().collect();
    }
    let block = reader
        .get_block_by_number(number)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("block {n} missing"));
    let mut txs = Vec::new();
    for hash in block.transactions.hashes() {
        txs.push(
            reader
                .get_transaction_by_hash(hash)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("transaction {hash} of block {n} missing")),
        );
    }
    txs
}

/// Every handle transaction to `side`'s bridge from its deployment to the head, in chain order.
pub async fn handle_txs(side: &Side) -> Vec<HandleTx> {
    let reader = side.reader();
    let head = reader.get_block_number().await.unwrap();
    let from = side.bridge_deploy_block;
    // Blocks are read by a few tasks at once (one anvil block per transaction adds up).
    const TASKS: u64 = 8;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let reader = reader.clone();
        let bridge = side.bridge;
        set.spawn(async move {
            let mut out = Vec::new();
            let mut n = from + t;
            while n <= head {
                for tx in &block_txs(&reader, n).await {
                    if tx.to() != Some(bridge) {
                        continue;
                    }
                    let input = tx.input();
                    let Some((kind, word)) = handle_of(input) else {
                        continue;
                    };
                    let Some(nonce) = nonce_of(input, word) else {
                        continue;
                    };
                    let hash = *tx.inner.tx_hash();
                    let receipt = reader
                        .get_transaction_receipt(hash)
                        .await
                        .unwrap()
                        .unwrap_or_else(|| panic!("receipt of {hash} missing"));
                    out.push(HandleTx {
                        block: n,
                        hash,
                        from: tx.inner.signer(),
                        nonce,
                        kind,
                        key: keccak256(input),
                        ok: receipt.status(),
                        executed: receipt.inner.logs().iter().any(|l| {
                            l.address() == bridge
                                && l.topic0() == Some(&Bridge::HandleValueTransfer::SIGNATURE_HASH)
                        }),
                        gas_used: receipt.gas_used,
                    });
                }
                n += TASKS;
            }
            out
        });
    }
    let mut all = Vec::new();
    while let Some(part) = set.join_next().await {
        all.extend(part.unwrap());
    }
    all.sort_by_key(|h| h.block);
    all
}

/// Successful handle transactions per request nonce.
pub fn ok_by_nonce(txs: &[HandleTx]) -> BTreeMap<u64, Vec<&HandleTx>> {
    let mut by: BTreeMap<u64, Vec<&HandleTx>> = BTreeMap::new();
    for h in txs.iter().filter(|h| h.ok) {
        by.entry(h.nonce).or_default().push(h);
    }
    by
}

/// Each operator's standing vote per nonce on the chain: the key of its last successful handle
/// transaction (a later vote replaces an earlier one on both dialects).
pub fn standing_votes(txs: &[HandleTx]) -> BTreeMap<(Address, u64), B256> {
    let mut standing = BTreeMap::new();
    for h in txs.iter().filter(|h| h.ok) {
        standing.insert((h.from, h.nonce), h.key);
    }
    standing
}
