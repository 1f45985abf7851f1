//! What the signing benches share: the vote they sign (a `handleKLAYTransfer` to one bridge,
//! one per nonce) and the guarded run with votes in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall, sol};
use bridge_signer::{Guard, Signer};

pub const CHAIN: u64 = 31_002;
pub const BRIDGE: Address = Address::repeat_byte(0xb1);

sol! {
    function handleKLAYTransfer(bytes32 requestTxHash, address from, address to, uint256 value, uint64 requestedNonce, uint64 requestedBlockNumber, bytes extraData);
}

/// The vote for request `nonce` (its own request hash), sent at account nonce `nonce`.
fn vote_tx(nonce: u64) -> TxEip1559 {
    let input: Bytes = handleKLAYTransferCall {
        requestTxHash: keccak256(nonce.to_be_bytes()),
        from: Address::repeat_byte(0x22),
        to: Address::repeat_byte(0x33),
        value: U256::from(1u64),
        requestedNonce: nonce,
        requestedBlockNumber: 7,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into();
    TxEip1559 {
        chain_id: CHAIN,
        nonce,
        gas_limit: 300_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(BRIDGE),
        value: U256::ZERO,
        input,
        ..Default::default()
    }
}

/// `n` distinct votes through the guard with `in_flight` concurrent tasks.
pub async fn run_guarded<S: Signer + 'static>(
    g: &Arc<Guard<S>>,
    nonces: &Arc<AtomicU64>,
    n: usize,
    in_flight: usize,
) -> Duration {
    let per = n / in_flight;
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (g, nonces) = (Arc::clone(g), Arc::clone(nonces));
            tokio::spawn(async move {
                for _ in 0..per {
                    let mut tx = vote_tx(nonces.fetch_add(1, Ordering::Relaxed));
                    g.sign_transaction(&mut tx).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}
