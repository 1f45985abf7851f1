//! A vote signed by a SoftHSM key through the guard and alloy's wallet is accepted by anvil.
#![cfg(feature = "pkcs11")]

#[path = "common/anvil.rs"]
mod anvil;
mod common;
#[path = "common/votes.rs"]
mod votes;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::rpc::types::TransactionRequest;
use alloy_primitives::{Address, U256};
use bridge_signer::guard::Journal;
use bridge_signer::{Guard, Signer};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_softhsm_vote_is_accepted_by_anvil() {
    let signer = signer_with_new_key(MAIN_TOKEN, "anvil").await;
    let from = signer.address();
    let bridge = Address::repeat_byte(0xb2);
    let dir = tempfile::tempdir().unwrap();
    let guard = Guard::new(
        signer,
        31337,
        bridge,
        Journal::open(dir.path().join("votes.sqlite")).unwrap(),
    );
    let anvil = anvil::start_anvil();
    let port = anvil.port;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::new(guard))
        .connect_http(format!("http://127.0.0.1:{port}").parse().unwrap());
    provider
        .anvil_set_balance(from, U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let request = TransactionRequest::default()
        .with_from(from)
        .with_to(bridge)
        .with_input(votes::klay_vote(1, 100));
    let receipt = provider
        .send_transaction(request)
        .await
        .expect("anvil accepts the signed tx")
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, from);
    assert_eq!(receipt.to, Some(bridge));

    // A transfer of value through the same wallet is refused before anything reaches anvil.
    let value = TransactionRequest::default()
        .with_from(from)
        .with_to(bridge)
        .with_value(U256::from(1))
        .with_input(votes::klay_vote(2, 100));
    let err = provider.send_transaction(value).await.unwrap_err();
    assert!(err.to_string().contains("not zero"), "{err}");
    assert_eq!(provider.get_transaction_count(from).await.unwrap(), 1);
}
