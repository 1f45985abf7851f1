//! Each token type both ways: the request event's fields, execution at the t-th identical
//! vote (not before), and balances on both chains (lock/unlock on the parent, burn/mint on the
//! child).

use crate::support::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolValue;
use bridge_agent::contracts::TokenType;
use bridge_devkit::devnet::Side;
use bridge_devkit::devnet::stand_in::Request;

#[derive(Clone, Copy, Debug)]
enum Dir {
    ParentToChild,
    ChildToParent,
}

fn sides(n: &Net, dir: Dir) -> (&Side, &Side) {
    match dir {
        Dir::ParentToChild => (&n.d.parent, &n.d.child),
        Dir::ChildToParent => (&n.d.child, &n.d.parent),
    }
}

/// Votes `data` with operators 0..3 and asserts it executes exactly at the third.
async fn vote_to_threshold(n: &Net, dest: &Side, req: &Request, data: &Bytes) {
    assert_eq!(vote(dest, &n.ops[0], data).await, Vec::<u64>::new());
    assert_eq!(vote(dest, &n.ops[1], data).await, Vec::<u64>::new());
    assert!(
        !bridge(dest)
            .closedValueTransferVotes(req.nonce)
            .call()
            .await
            .unwrap()
    );
    assert_eq!(
        vote(dest, &n.ops[2], data).await,
        vec![req.nonce],
        "third vote executes"
    );
    assert!(
        bridge(dest)
            .closedValueTransferVotes(req.nonce)
            .call()
            .await
            .unwrap()
    );
    assert!(
        bridge(dest)
            .handledRequestTx(req.tx_hash)
            .call()
            .await
            .unwrap()
    );
}

fn assert_request(
    req: &Request,
    ty: TokenType,
    from: Address,
    to: Address,
    token: Address,
    v: U256,
    extra: &[u8],
) {
    assert_eq!(req.token_type, ty);
    assert_eq!(req.from, from);
    assert_eq!(req.to, to);
    assert_eq!(req.token, token);
    assert_eq!(req.value_or_id, v);
    assert_eq!(req.nonce, 0);
    assert_eq!(req.fee, U256::ZERO);
    assert_eq!(req.extra_data.as_ref(), extra);
}

async fn native(dir: Dir) {
    let n = net().await;
    let (src, dst) = sides(&n, dir);
    let user = &n.users[0];
    let to = fresh_address(&format!("native {dir:?}"));
    let value = coins(3);
    let src_locked = balance(src, src.bridge).await;
    let dst_liquidity = balance(dst, dst.bridge).await;

    let req = request_native(src, user, to, value, value).await;
    assert_request(
        &req,
        TokenType::Native,
        user.address(),
        to,
        Address::ZERO,
        value,
        b"native",
    );
    assert_eq!(
        balance(src, src.bridge).await,
        src_locked + value,
        "coin locked at the source"
    );

    let data = handle_data(src, &req).await;
    assert_eq!(vote(dst, &n.ops[0], &data).await, Vec::<u64>::new());
    assert_eq!(vote(dst, &n.ops[1], &data).await, Vec::<u64>::new());
    assert_eq!(
        balance(dst, to).await,
        U256::ZERO,
        "nothing moves below threshold"
    );
    assert_eq!(vote(dst, &n.ops[2], &data).await, vec![0]);
    assert_eq!(balance(dst, to).await, value);
    assert_eq!(balance(dst, dst.bridge).await, dst_liquidity - value);
}

async fn erc20(dir: Dir) {
    let n = net().await;
    let (src, dst) = sides(&n, dir);
    let user = &n.users[1];
    let to = fresh_address(&format!("erc20 {dir:?}"));
    let value = coins(42);
    let (src_token, dst_token) = (super::support::erc20(src), super::support::erc20(dst));
    let src_supply = src_token.totalSupply().call().await.unwrap();
    let src_locked = src_token.balanceOf(src.bridge).call().await.unwrap();
    let dst_supply = dst_token.totalSupply().call().await.unwrap();
    let dst_locked = dst_token.balanceOf(dst.bridge).call().await.unwrap();

    let req = request_erc20(src, user, to, value, U256::ZERO).await;
    assert_request(
        &req,
        TokenType::Erc20,
        user.address(),
        to,
        src.erc20,
        value,
        b"erc20",
    );
    assert_eq!(
        src_token.balanceOf(user.address()).call().await.unwrap(),
        seed::user_erc20() - value
    );
    if src.mode_mint_burn {
        assert_eq!(
            src_token.totalSupply().call().await.unwrap(),
            src_supply - value,
            "burned"
        );
        assert_eq!(
            src_token.balanceOf(src.bridge).call().await.unwrap(),
            src_locked
        );
    } else {
        assert_eq!(
            src_token.balanceOf(src.bridge).call().await.unwrap(),
            src_locked + value,
            "locked"
        );
    }

    let data = handle_data(src, &req).await;
    vote_to_threshold(&n, dst, &req, &data).await;
    assert_eq!(dst_token.balanceOf(to).call().await.unwrap(), value);
    if dst.mode_mint_burn {
        assert_eq!(
            dst_token.totalSupply().call().await.unwrap(),
            dst_supply + value,
            "minted"
        );
    } else {
        assert_eq!(
            dst_token.balanceOf(dst.bridge).call().await.unwrap(),
            dst_locked - value,
            "unlocked"
        );
    }
}

async fn erc721(dir: Dir) {
    let n = net().await;
    let (src, dst) = sides(&n, dir);
    let user = &n.users[2];
    let to = fresh_address(&format!("erc721 {dir:?}"));
    let id = match dir {
        Dir::ParentToChild => seed::parent_nft_ids(2).next().unwrap(),
        Dir::ChildToParent => seed::child_nft_ids(2).next().unwrap(),
    };
    let (src_nft, dst_nft) = (super::support::erc721(src), super::support::erc721(dst));

    let req = request_erc721(src, user, to, id).await;
    assert_request(
        &req,
        TokenType::Erc721,
        user.address(),
        to,
        src.erc721,
        id,
        b"erc721",
    );
    // Encoded twice, as Kaia's bridge does: abi.encode(string(abi.encode(uri))).
    let uri = req.token_uri.as_ref().expect("URI travels in the event");
    assert_eq!(
        uri.encoded_data().as_ref(),
        &seed::nft_uri(id).abi_encode().abi_encode()[..],
        "URI encoded as Kaia's bridge encodes it"
    );
    assert_eq!(
        uri.for_dialect(bridge_agent::dialect::Dialect::Kaia)
            .as_ref(),
        seed::nft_uri(id).as_bytes(),
        "Kaia's rule reads the URI back"
    );
    if src.mode_mint_burn {
        assert!(
            src_nft.ownerOf(id).call().await.is_err(),
            "burned at the source"
        );
    } else {
        assert_eq!(
            src_nft.ownerOf(id).call().await.unwrap(),
            src.bridge,
            "locked at the source"
        );
    }
    if !dst.mode_mint_burn {
        assert_eq!(
            dst_nft.ownerOf(id).call().await.unwrap(),
            dst.bridge,
            "backing locked"
        );
    } else {
        assert!(dst_nft.ownerOf(id).call().await.is_err(), "not yet minted");
    }

    let data = handle_data(src, &req).await;
    vote_to_threshold(&n, dst, &req, &data).await;
    assert_eq!(dst_nft.ownerOf(id).call().await.unwrap(), to);
    assert_eq!(
        dst_nft.tokenURI(id).call().await.unwrap(),
        seed::nft_uri(id)
    );
}

#[tokio::test]
async fn native_parent_to_child() {
    native(Dir::ParentToChild).await;
}
#[tokio::test]
async fn native_child_to_parent() {
    native(Dir::ChildToParent).await;
}
#[tokio::test]
async fn erc20_parent_to_child_locks_and_mints() {
    erc20(Dir::ParentToChild).await;
}
#[tokio::test]
async fn erc20_child_to_parent_burns_and_unlocks() {
    erc20(Dir::ChildToParent).await;
}
#[tokio::test]
async fn erc721_parent_to_child_locks_and_mints_with_uri() {
    erc721(Dir::ParentToChild).await;
}
#[tokio::test]
async fn erc721_child_to_parent_burns_and_unlocks() {
    erc721(Dir::ChildToParent).await;
}

#[tokio::test]
async fn request_rejects_zero_value_zero_recipient_and_unregistered_token() {
    let n = net().await;
    let p = &n.d.parent;
    let user = n.users[0].address();
    let zero_value = Bridge::requestKLAYTransferCall {
        to: user,
        value: U256::ZERO,
        extraData: Bytes::new(),
    };
    assert!(matches!(
        revert_of(p, user, p.bridge, encode(zero_value), U256::ZERO).await,
        Bridge::BridgeErrors::ZeroValue(_)
    ));
    let zero_to = Bridge::requestKLAYTransferCall {
        to: Address::ZERO,
        value: coins(1),
        extraData: Bytes::new(),
    };
    assert!(matches!(
        revert_of(p, user, p.bridge, encode(zero_to), coins(1)).await,
        Bridge::BridgeErrors::ZeroAddress(_)
    ));
    let underpaid = Bridge::requestKLAYTransferCall {
        to: user,
        value: coins(2),
        extraData: Bytes::new(),
    };
    assert!(matches!(
        revert_of(p, user, p.bridge, encode(underpaid), coins(1)).await,
        Bridge::BridgeErrors::InsufficientPayment(_)
    ));
    let unregistered = fresh_address("not a token");
    let call = Bridge::requestERC20TransferCall {
        token: unregistered,
        to: user,
        value: coins(1),
        feeLimit: U256::ZERO,
        extraData: Bytes::new(),
    };
    match revert_of(p, user, p.bridge, encode(call), U256::ZERO).await {
        Bridge::BridgeErrors::TokenNotRegistered(e) => assert_eq!(e.token, unregistered),
        other => panic!("unexpected {other:?}"),
    }
}

use bridge_agent::contracts::Bridge;
