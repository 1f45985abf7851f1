//! Case 3, an invalid attempt: t − 1 operators are compromised. The attacker uses their HSM keys
//! directly, bypassing their agents and guards, to vote forged handles: a wrong amount, a wrong
//! recipient, an invented nonce. None executes; the honest transfers go through (the
//! compromised operators' own agents replace the forged votes of their seats with the right
//! ones); the honest agents count the forged votes they saw and warn.

use crate::support::cluster::{
    Cluster, ClusterOptions, MODULE, PIN, SoftHsm, request_nonce, spawn_load,
};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_signer::AlloyAdapter;
use bridge_signer::pkcs11::{Pkcs11Config, Pkcs11Signer};
use std::time::Duration;

/// The compromised operators (t − 1 = 2 of 4).
const COMPROMISED: [usize; 2] = [0, 1];
const INVENTED_NONCE: u64 = 1_000_000;

/// Signs with operator `i`'s key straight from its token: no agent, no guard.
pub(crate) async fn attacker(i: usize) -> Pkcs11Signer {
    let config: Pkcs11Config = toml::from_str(&format!(
        "module = \"{MODULE}\"\ntoken_label = \"{}\"\nkey_label = \"operator\"\npin = {{ env = \"UNUSED\" }}\n",
        SoftHsm::token_label(i)
    ))
    .unwrap();
    Pkcs11Signer::with_pin(&config, bridge_signer::Pin::new(PIN))
        .await
        .unwrap()
}

pub(crate) fn forged_handle(nonce: u64, to: Address, value: u64) -> Bytes {
    Bridge::handleKLAYTransferCall {
        requestTxHash: keccak256(format!("forged {nonce}")),
        from: Address::repeat_byte(0xee),
        to,
        value: U256::from(value),
        requestedNonce: nonce,
        requestedBlockNumber: 1,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn case_3_forged_votes_by_t_minus_1_keys_never_execute_and_are_reported() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    cluster.compromised = COMPROMISED.to_vec();
    let d = cluster.devnet.clone();
    let thief = Address::repeat_byte(0x66);
    // The next two parent → child requests do not exist yet; the attacker pre-votes them on the
    // child with a wrong amount and a wrong recipient, and votes a nonce that will never exist.
    let next = request_nonce(&d.parent).await;
    let forged = [
        forged_handle(next, thief, 1),
        forged_handle(next + 1, thief, 1_000_000),
        forged_handle(INVENTED_NONCE, thief, 10u64.pow(18)),
    ];
    for i in COMPROMISED {
        let wallet =
            EthereumWallet::from(AlloyAdapter::new(attacker(i).await, Some(d.child.chain_id)));
        let p = ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(d.child.rpc_url().parse().unwrap());
        for data in &forged {
            let tx = TransactionRequest::default()
                .with_to(d.child.bridge)
                .with_input(data.clone())
                .with_gas_limit(500_000);
            let receipt = p
                .send_transaction(tx)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(receipt.status(), "a forged vote is only a vote: it mines");
        }
    }
    let child = Bridge::new(d.child.bridge, d.child.reader());
    assert!(
        !child
            .closedValueTransferVotes(INVENTED_NONCE)
            .call()
            .await
            .unwrap()
    );

    // Honest traffic both ways; its first two parent → child requests are the pre-voted ones.
    let traffic = spawn_load(d.clone(), 24, Duration::ZERO).await.unwrap();
    cluster
        .wait_executed(&traffic, Duration::from_secs(120))
        .await;
    // Exactly once, balances as sent (so no wrong amount or recipient), journals match chain.
    cluster.check_invariants(&traffic).await;
    assert!(
        !child
            .closedValueTransferVotes(INVENTED_NONCE)
            .call()
            .await
            .unwrap(),
        "the invented nonce never executes"
    );
    assert_eq!(
        d.child.reader().get_balance(thief).await.unwrap(),
        U256::ZERO
    );

    // The honest agents saw the forged votes (2 keys × 3 handles) and said so.
    for i in [2, 3] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen = cluster.metric(i, "bridge_forged_votes_seen_total").await;
            if seen >= 6.0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "op{} counted {seen} forged votes, expected 6\n{}",
                i + 1,
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = cluster.nodes[i].log_text();
        assert!(log.contains("forged_vote"), "op{} log:\n{log}", i + 1);
    }
    // …and no honest vote was taken for a forged one (every vote has been audited by now).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..4 {
        assert_eq!(
            cluster.metric(i, "bridge_forged_votes_seen_total").await,
            6.0,
            "op{}\n{}",
            i + 1,
            cluster.log_tails()
        );
    }
    // The compromised operators' own agents noticed their keys voting behind their backs.
    for i in COMPROMISED {
        let log = cluster.nodes[i].log_text();
        assert!(
            log.contains("conflicting_vote_on_chain"),
            "op{} log:\n{log}",
            i + 1
        );
    }
}
