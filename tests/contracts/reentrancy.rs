//! Reentrancy: a malicious native-coin receiver and a malicious token both try to re-enter
//! the bridge; the guard refuses, and a receiver that refuses payment gets a claim instead of
//! blocking the nonce.

use crate::support::*;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use alloy::sol;
use alloy::sol_types::{SolError, SolEvent};
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::Side;

sol!(
    #[sol(rpc)]
    ReentrantReceiver,
    "contracts/artifacts/test/ReentrantReceiver.json"
);
sol!(
    #[sol(rpc)]
    ReentrantToken,
    "contracts/artifacts/test/ReentrantToken.json"
);

async fn deploy_receiver(
    n: &Net,
    side: &Side,
) -> ReentrantReceiver::ReentrantReceiverInstance<DynProvider> {
    let p = side.provider_with(n.owner.clone());
    ReentrantReceiver::deploy(p, side.bridge)
        .await
        .expect("deploy receiver")
}

async fn pay_to(n: &Net, to: Address, value: U256) -> alloy::rpc::types::TransactionReceipt {
    let (p, c) = (&n.d.parent, &n.d.child);
    let req = request_native(p, &n.users[0], to, value, value).await;
    let data = handle_data(p, &req).await;
    for op in &n.ops[..2] {
        vote(c, op, &data).await;
    }
    send_ok(c, &n.ops[2], c.bridge, data, U256::ZERO).await
}

#[tokio::test]
async fn receiver_reentry_is_refused_and_payment_lands() {
    let n = net().await;
    let c = &n.d.child;
    let receiver = deploy_receiver(&n, c).await;
    let value = coins(2);
    let receipt = pay_to(&n, *receiver.address(), value).await;
    assert_eq!(handled_nonces(&receipt), vec![0]);
    assert!(
        receiver.reentryRefused().call().await.unwrap(),
        "re-entry must be refused"
    );
    let data = receiver.lastRevertData().call().await.unwrap();
    assert_eq!(
        &data[..4],
        Bridge::ReentrancyGuardReentrantCall::SELECTOR.as_slice()
    );
    assert_eq!(balance(c, *receiver.address()).await, value);
    assert_eq!(
        bridge(c).requestNonce().call().await.unwrap(),
        0,
        "no request was made by re-entry"
    );
}

#[tokio::test]
async fn refusing_receiver_gets_a_claim_and_the_nonce_still_closes() {
    let n = net().await;
    let c = &n.d.child;
    let receiver = deploy_receiver(&n, c).await;
    receiver
        .setBubble(true)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let value = coins(2);
    let receipt = pay_to(&n, *receiver.address(), value).await;
    assert_eq!(
        handled_nonces(&receipt),
        vec![0],
        "the nonce closes although the payout failed"
    );
    let deferred: Vec<_> = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.topic0() == Some(&Bridge::NativePayoutDeferred::SIGNATURE_HASH))
        .collect();
    assert_eq!(deferred.len(), 1);
    let b = bridge(c);
    assert_eq!(
        b.unclaimedNative(*receiver.address()).call().await.unwrap(),
        value
    );
    assert_eq!(b.totalUnclaimedNative().call().await.unwrap(), value);
    assert_eq!(b.lowerHandleNonce().call().await.unwrap(), 1);

    let dest = fresh_address("claim destination");
    receiver
        .claim(dest)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(balance(c, dest).await, value);
    assert_eq!(
        b.unclaimedNative(*receiver.address()).call().await.unwrap(),
        U256::ZERO
    );
    assert_eq!(b.totalUnclaimedNative().call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn malicious_token_reentry_is_refused() {
    let n = net().await;
    let p = &n.d.parent;
    let owner = p.provider_with(n.owner.clone());
    let token = ReentrantToken::deploy(owner.clone(), p.bridge)
        .await
        .expect("deploy token");
    let b = Bridge::new(p.bridge, owner.clone());
    b.registerToken(*token.address(), fresh_address("counterpart"))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    token
        .approve(p.bridge, coins(10))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let call = Bridge::requestERC20TransferCall {
        token: *token.address(),
        to: n.owner.address(),
        value: coins(1),
        feeLimit: U256::ZERO,
        extraData: Default::default(),
    };
    assert!(matches!(
        revert_of(p, n.owner.address(), p.bridge, encode(call), U256::ZERO).await,
        Bridge::BridgeErrors::ReentrancyGuardReentrantCall(_)
    ));
    assert_eq!(bridge(p).requestNonce().call().await.unwrap(), 0);
}
