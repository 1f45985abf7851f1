//! ERC-721 token URIs through our bridge, every edge of issue 13: the request event carries the
//! URI encoded twice (as Kaia's bridge does), the agent's decoder and handle builder read it as
//! bytes, and three operators' identical votes mint the NFT on the other chain with exactly the
//! URI Kaia's rule gives (the URI itself, NULs at its ends aside; empty when `tokenURI` fails).

use crate::support::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::sol_types::{SolCall, SolValue};
use bridge_agent::contracts::Bridge;
use bridge_agent::votes::UriForm;
use bridge_devkit::devnet::Side;
use bridge_devkit::devnet::kaia::UriTestNFT;
use bridge_devkit::devnet::stand_in::Request;

/// `mintWithTokenURI(to, id, uri)` with the URI as raw bytes (the generated binding takes a
/// Rust `String`, which cannot hold a URI that is not UTF-8; the encoding is the same).
fn mint_raw(to: Address, id: U256, uri: &[u8]) -> Bytes {
    let mut data = UriTestNFT::mintWithTokenURICall::SELECTOR.to_vec();
    data.extend((to, id, Bytes::copy_from_slice(uri)).abi_encode_params());
    data.into()
}

/// NUL bytes trimmed from both ends: what Kaia's rule leaves of a canonically encoded URI.
fn trimmed(uri: &[u8]) -> &[u8] {
    let start = uri.iter().position(|&b| b != 0).unwrap_or(uri.len());
    let end = uri.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    &uri[start..end]
}

async fn deploy_nft(side: &Side, owner: &alloy::signers::local::PrivateKeySigner) -> Address {
    let p: DynProvider = side.provider_with(owner.clone());
    *UriTestNFT::deploy(&p, "Uri".into(), "URI".into())
        .await
        .expect("UriTestNFT deploys")
        .address()
}

#[tokio::test]
async fn every_uri_edge_is_minted_with_kaias_uri() {
    let n = net().await;
    let (src, dst) = (&n.d.parent, &n.d.child);
    assert!(dst.mode_mint_burn, "the child mints what the parent locks");
    let (owner, user) = (&n.owner, &n.users[0]);
    let (src_nft, dst_nft) = (deploy_nft(src, owner).await, deploy_nft(dst, owner).await);
    let set_minter = UriTestNFT::setMinterCall {
        minter: dst.bridge,
        allowed: true,
    };
    send_ok(dst, owner, dst_nft, encode(set_minter), U256::ZERO).await;
    for (side, me, other) in [(src, src_nft, dst_nft), (dst, dst_nft, src_nft)] {
        let register = Bridge::registerTokenCall {
            token: me,
            counterpartToken: other,
        };
        send_ok(side, owner, side.bridge, encode(register), U256::ZERO).await;
    }

    let of_len =
        |n: usize| -> Vec<u8> { (0..n).map(|i| b"ipfs:/abcdef0123456789"[i % 22]).collect() };
    let mut cases: Vec<(String, Vec<u8>)> = [0, 31, 32, 63, 64, 65, 127, 128, 159, 255, 256, 1000]
        .into_iter()
        .map(|len| (format!("length {len}"), of_len(len)))
        .collect();
    cases.push(("not UTF-8".into(), b"ipfs://\xff\xfe\xc3(".to_vec()));
    cases.push(("NUL first".into(), b"\0\0ipfs://nul-first".to_vec()));
    cases.push(("NUL last".into(), b"ipfs://nul-last\0".to_vec()));
    cases.push(("failing tokenURI".into(), b"never read".to_vec()));

    let dst_reader = UriTestNFT::new(dst_nft, dst.reader());
    for (i, (name, uri)) in cases.iter().enumerate() {
        let id = U256::from(i + 1);
        send_ok(
            src,
            owner,
            src_nft,
            mint_raw(user.address(), id, uri),
            U256::ZERO,
        )
        .await;
        let failing = name == "failing tokenURI";
        if failing {
            let fail = UriTestNFT::setFailingURICall {
                tokenId: id,
                failing: true,
            };
            send_ok(src, owner, src_nft, encode(fail), U256::ZERO).await;
        }
        let approve = UriTestNFT::approveCall {
            to: src.bridge,
            tokenId: id,
        };
        send_ok(src, user, src_nft, encode(approve), U256::ZERO).await;
        let to = fresh_address(&format!("uri {name}"));
        let request = Bridge::requestERC721TransferCall {
            token: src_nft,
            to,
            tokenId: id,
            extraData: Bytes::new(),
        };
        let req: Request =
            request_from(&send_ok(src, user, src.bridge, encode(request), U256::ZERO).await);
        let token_uri = req.token_uri.as_ref().expect("URI data in the event");
        assert_eq!(token_uri.form(), UriForm::Double, "{name}");
        let answer: Vec<u8> = if failing {
            vec![]
        } else {
            Bytes::copy_from_slice(uri).abi_encode()
        };
        assert_eq!(
            token_uri.encoded_data().as_ref(),
            &Bytes::from(answer).abi_encode()[..],
            "{name}: encoded twice, as Kaia's bridge does"
        );

        let data = handle_data(src, &req).await;
        assert_eq!(
            vote(dst, &n.ops[0], &data).await,
            Vec::<u64>::new(),
            "{name}"
        );
        assert_eq!(
            vote(dst, &n.ops[1], &data).await,
            Vec::<u64>::new(),
            "{name}"
        );
        assert_eq!(vote(dst, &n.ops[2], &data).await, vec![req.nonce], "{name}");
        let expected: &[u8] = if failing { b"" } else { trimmed(uri) };
        assert_eq!(
            dst_reader.ownerOf(id).call().await.unwrap(),
            to,
            "{name}: minted"
        );
        assert_eq!(
            dst_reader.rawTokenURI(id).call().await.unwrap().as_ref(),
            expected,
            "{name}: minted with Kaia's URI"
        );
    }
}
