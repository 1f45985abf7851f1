//! Fees: set by configuration vote (Kaia's functions), taken only with a receiver set, sent to
//! the receiver, and the change refunded to the requester.

use crate::support::*;
use alloy::primitives::{Address, U256};
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::Side;

/// Three operators vote `data` as a configuration change; the third vote applies it.
async fn config_vote(n: &Net, side: &Side, data: alloy::primitives::Bytes) {
    for op in &n.ops[..3] {
        send_ok(side, op, side.bridge, data.clone(), U256::ZERO).await;
    }
}

async fn set_receiver(n: &Net, side: &Side, receiver: Address) {
    let call = Bridge::setFeeReceiverCall { receiver };
    send_ok(side, &n.owner, side.bridge, encode(call), U256::ZERO).await;
}

#[tokio::test]
async fn native_fee_goes_to_receiver_and_change_is_refunded() {
    let n = net().await;
    let p = &n.d.parent;
    let receiver = fresh_address("fee receiver");
    let fee = coins(1) / U256::from(10);
    set_receiver(&n, p, receiver).await;
    config_vote(
        &n,
        p,
        encode(Bridge::setKLAYFeeCall {
            fee,
            requestNonce: 0,
        }),
    )
    .await;
    let b = bridge(p);
    assert_eq!(b.feeOfKLAY().call().await.unwrap(), fee);
    assert_eq!(b.configurationNonce().call().await.unwrap(), 1);

    let user = &n.users[0];
    let value = coins(2);
    let paid = value + fee + coins(1); // one coin too much: change
    let user_before = balance(p, user.address()).await;
    let bridge_before = balance(p, p.bridge).await;
    let call = Bridge::requestKLAYTransferCall {
        to: user.address(),
        value,
        extraData: Default::default(),
    };
    let receipt = send_ok(p, user, p.bridge, encode(call), paid).await;
    let req = request_from(&receipt);
    assert_eq!(req.fee, fee, "the event carries the fee taken");
    assert_eq!(balance(p, receiver).await, fee);
    assert_eq!(
        balance(p, p.bridge).await,
        bridge_before + value,
        "only the value is locked"
    );
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(
        balance(p, user.address()).await,
        user_before - value - fee - gas,
        "change refunded"
    );

    // A payment that cannot cover value + fee is refused.
    let call = Bridge::requestKLAYTransferCall {
        to: user.address(),
        value,
        extraData: Default::default(),
    };
    match revert_of(
        p,
        user.address(),
        p.bridge,
        encode(call),
        value + fee - U256::from(1),
    )
    .await
    {
        Bridge::BridgeErrors::FeeLimitTooLow(e) => assert_eq!(e.fee, fee),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn erc20_fee_goes_to_receiver_and_change_is_refunded() {
    let n = net().await;
    let p = &n.d.parent;
    let receiver = fresh_address("erc20 fee receiver");
    let fee = coins(3);
    set_receiver(&n, p, receiver).await;
    config_vote(
        &n,
        p,
        encode(Bridge::setERC20FeeCall {
            token: p.erc20,
            fee,
            requestNonce: 0,
        }),
    )
    .await;
    assert_eq!(bridge(p).feeOfERC20(p.erc20).call().await.unwrap(), fee);

    let user = &n.users[1];
    let token = erc20(p);
    let locked_before = token.balanceOf(p.bridge).call().await.unwrap();
    let value = coins(10);
    let req = request_erc20(p, user, user.address(), value, fee + coins(5)).await;
    assert_eq!(req.fee, fee);
    assert_eq!(token.balanceOf(receiver).call().await.unwrap(), fee);
    assert_eq!(
        token.balanceOf(user.address()).call().await.unwrap(),
        seed::user_erc20() - value - fee
    );
    assert_eq!(
        token.balanceOf(p.bridge).call().await.unwrap(),
        locked_before + value
    );
}

#[tokio::test]
async fn no_fee_without_receiver_and_configuration_nonce_is_checked() {
    let n = net().await;
    let p = &n.d.parent;
    config_vote(
        &n,
        p,
        encode(Bridge::setKLAYFeeCall {
            fee: coins(1),
            requestNonce: 0,
        }),
    )
    .await;
    let user = &n.users[0];
    let req = request_native(p, user, user.address(), coins(1), coins(1)).await;
    assert_eq!(req.fee, U256::ZERO, "no receiver, no fee");

    // A configuration vote must carry the current configuration nonce (now 1).
    let stale = Bridge::setKLAYFeeCall {
        fee: U256::ZERO,
        requestNonce: 0,
    };
    match revert_of(p, n.ops[0].address(), p.bridge, encode(stale), U256::ZERO).await {
        Bridge::BridgeErrors::ConfigurationNonceMismatch(e) => {
            assert_eq!((e.expected, e.given), (1, 0))
        }
        other => panic!("unexpected {other:?}"),
    }
}
