//! Leftovers: transactions of the operator's account already in the node's pool when the
//! manager starts (an earlier run killed with votes pending, or queued behind a hole after a
//! reorg). They are taken over, never fought: the sequence starts above them, each vote to the
//! bridge gets a tracker like any other (fee bumps, re-sends, the convergence check fills a
//! hole below it), and others (not to the bridge) are only stepped over.
//!
//! Read with `txpool_contentFrom` (geth) or `txpool_content` (anvil, and geth without the
//! former); a node that has neither leaves the manager at the mined count, outbidding what holds
//! a nonce (see `broadcast`).

use super::{Fees, Job, SignedTx};
use crate::chain::ChainClient;
use alloy::consensus::Transaction as _;
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::Address;
use alloy::providers::Provider;
use serde_json::Value;
use tracing::debug;

/// One transaction of the account found in the node's pool.
#[derive(Debug, Clone)]
pub(crate) struct Leftover {
    pub nonce: u64,
    pub to: Option<Address>,
    pub job: Job,
    pub signed: SignedTx,
}

/// The account's transactions in the node's pool (pending and queued), by nonce; `None` when the
/// node offers no pool view.
pub(crate) async fn read(client: &ChainClient, address: Address) -> Option<Vec<Leftover>> {
    let from = client
        .run("txpool_contentFrom", |p| async move {
            p.raw_request::<_, Value>("txpool_contentFrom".into(), (address,))
                .await
        })
        .await;
    let sections = match from {
        Ok(v) => ["pending", "queued"].map(|s| v.get(s).cloned()),
        Err(e) => {
            debug!(chain = %client.name(), error = %e, "txpool_contentFrom unavailable; trying txpool_content");
            let all = client
                .run("txpool_content", |p| async move {
                    p.raw_request::<_, Value>("txpool_content".into(), ()).await
                })
                .await;
            match all {
                Ok(v) => ["pending", "queued"].map(|s| of_sender(v.get(s), address)),
                Err(e) => {
                    debug!(chain = %client.name(), error = %e, "no pool view on this node");
                    return None;
                }
            }
        }
    };
    let mut out: Vec<Leftover> = sections
        .iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|by_nonce| by_nonce.values())
        .filter_map(|tx| parse(tx.clone()))
        .collect();
    out.sort_by_key(|l| l.nonce);
    out.dedup_by_key(|l| l.nonce);
    Some(out)
}

/// `{ sender: { nonce: tx } }` → the `{ nonce: tx }` of `address` (keys in any hex case).
fn of_sender(section: Option<&Value>, address: Address) -> Option<Value> {
    section?
        .as_object()?
        .iter()
        .find(|(k, _)| k.parse::<Address>().ok() == Some(address))
        .map(|(_, v)| v.clone())
}

fn parse(tx: Value) -> Option<Leftover> {
    let tx: alloy::rpc::types::Transaction = match serde_json::from_value(tx) {
        Ok(t) => t,
        Err(e) => {
            debug!(error = %e, "unreadable pool transaction skipped");
            return None;
        }
    };
    let nonce = tx.nonce();
    let fees = match tx.max_priority_fee_per_gas() {
        Some(priority) => Fees::Eip1559 {
            max_fee: tx.max_fee_per_gas(),
            priority,
        },
        None => Fees::Legacy {
            gas_price: tx.gas_price().unwrap_or_else(|| tx.max_fee_per_gas()),
        },
    };
    let to = tx.to();
    let job = Job {
        label: format!("earlier run's transaction at nonce {nonce}"),
        calldata: tx.input().clone(),
        gas: tx.gas_limit(),
    };
    let envelope = tx.into_inner();
    Some(Leftover {
        nonce,
        to,
        job,
        signed: SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718().into(),
            fees,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool entry as anvil 1.x serves it in `txpool_content`.
    const ANVIL_ENTRY: &str = r#"{"type":"0x2","chainId":"0x7a69","nonce":"0x3","gas":"0x5208",
        "maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x3b9aca00",
        "to":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266","value":"0x0","accessList":[],"input":"0x",
        "r":"0x8e654d7623045ffca97754e560f3b8bd763b96849cd612c480be6455c3ca2611",
        "s":"0x7366f2a41c986a784e4b4142e18532d2ce980376cc3a3f0f3bbb129112a76043","yParity":"0x1","v":"0x1",
        "hash":"0xf121732c5b3cefd97cbec173729ea4cd68631cef9471cea396ffeede7e25f262",
        "blockHash":null,"blockNumber":null,"transactionIndex":null,
        "from":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266","gasPrice":"0x77359400"}"#;

    #[test]
    fn a_pool_entry_becomes_a_leftover_with_its_signed_bytes() {
        let l = parse(serde_json::from_str(ANVIL_ENTRY).unwrap()).expect("parsed");
        assert_eq!(l.nonce, 3);
        assert_eq!(l.job.gas, 21_000);
        assert_eq!(
            l.signed.fees,
            Fees::Eip1559 {
                max_fee: 2_000_000_000,
                priority: 1_000_000_000
            }
        );
        // The re-encoded bytes hash to the pool's hash: the same transaction, re-sendable.
        assert_eq!(
            alloy::primitives::keccak256(&l.signed.raw),
            l.signed.hash,
            "raw bytes"
        );
        assert_eq!(
            format!("{:#x}", l.signed.hash),
            "0xf121732c5b3cefd97cbec173729ea4cd68631cef9471cea396ffeede7e25f262"
        );
    }

    #[test]
    fn the_senders_section_is_found_whatever_the_case() {
        let sender: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        let content: Value = serde_json::from_str(&format!(
            r#"{{"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266": {{"3": {ANVIL_ENTRY}}},
                "0x0000000000000000000000000000000000000001": {{}}}}"#
        ))
        .unwrap();
        let mine = of_sender(Some(&content), sender).expect("found");
        assert!(mine.get("3").is_some());
        assert!(of_sender(Some(&content), Address::repeat_byte(7)).is_none());
    }
}
