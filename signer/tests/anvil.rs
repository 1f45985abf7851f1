//! A vote signed by a SoftHSM key through the guard and alloy's wallet is accepted by anvil.
#![cfg(feature = "pkcs11")]

mod common;
#[path = "common/votes.rs"]
mod votes;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::rpc::types::TransactionRequest;
use alloy_primitives::{Address, U256};
use bridge_signer::guard::Journal;
use bridge_signer::{Guard, Signer};
use common::*;

const ANVIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
);

struct Anvil(Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_anvil() -> (Anvil, u16) {
    assert!(
        std::path::Path::new(ANVIL).is_file(),
        "anvil binary {ANVIL} is missing: run `npm ci` in the repository root"
    );
    let mut child = Command::new(ANVIL)
        .args(["--port", "0", "--chain-id", "31337"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start anvil");
    let stdout = child.stdout.take().unwrap();
    let anvil = Anvil(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("Listening on 127.0.0.1:").nth(1) {
            let port = rest.trim().parse().expect("port");
            return (anvil, port);
        }
    }
    panic!("anvil exited without printing its port");
}

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
    let (_anvil, port) = start_anvil();
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
