//! ERC-721 token URIs across a Kaia-style bridge pair, edge by edge: the source bridge emits
//! `abi.encode(string(raw tokenURI return data))` (the URI encoded twice, or empty when
//! `tokenURI` fails), and each NFT must be minted on the child with exactly the URI Kaia's own
//! node would vote, so operators running either reach one threshold. A URI is bytes: lengths
//! around every 32-byte boundary, not UTF-8, NUL at either end; none may stop a transfer.

use crate::support::cluster::{Cluster, ClusterOptions, lower_handle_nonce, request_nonce};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolValue};
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_devkit::demo::traffic::send;
use bridge_devkit::devnet::kaia::{UriTestNFT, kaia_node_uri};
use std::time::{Duration, Instant};

/// (label, URI bytes, tokenURI fails).
fn cases() -> Vec<(String, Vec<u8>, bool)> {
    let text = |n: usize| -> Vec<u8> { (0..n).map(|i| b'a' + (i % 26) as u8).collect() };
    let mut out: Vec<(String, Vec<u8>, bool)> =
        [0, 31, 32, 63, 64, 65, 127, 128, 159, 255, 256, 1000]
            .into_iter()
            .map(|n| (format!("length {n}"), text(n), false))
            .collect();
    let mut not_utf8 = b"ipfs://".to_vec();
    not_utf8.extend([0xff, 0xfe, 0xc3, 0x28, 0x80]);
    not_utf8.extend(text(60));
    out.push(("not UTF-8".into(), not_utf8, false));
    out.push(("NUL first".into(), [&[0u8][..], &text(40)].concat(), false));
    out.push(("NUL last".into(), [&text(40)[..], &[0u8]].concat(), false));
    out.push(("NUL both ends, short".into(), b"\0x\0".to_vec(), false));
    out.push(("tokenURI fails".into(), text(80), true));
    out
}

async fn owner_tx(p: &DynProvider, to: Address, data: Bytes) {
    let tx = TransactionRequest::default().with_to(to).with_input(data);
    let r = p
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(
        r.status(),
        "owner transaction {} reverted",
        r.transaction_hash
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kaia_uri_edge_cases_are_minted_with_the_uri_kaias_node_votes() {
    let cluster = Cluster::start(ClusterOptions {
        dialect: Dialect::Kaia,
        standby_delay_ms: Some(120_000),
        recovery_secs: 60,
        ..ClusterOptions::default()
    })
    .await;
    let d = cluster.devnet.clone();
    let (owner_p, owner_c) = (
        d.parent.provider_with(d.owner()),
        d.child.provider_with(d.owner()),
    );
    let pnft = *UriTestNFT::deploy(&owner_p, "Uri P".into(), "URIP".into())
        .await
        .unwrap()
        .address();
    let cnft = UriTestNFT::deploy(&owner_c, "Uri C".into(), "URIC".into())
        .await
        .unwrap();
    let cnft_addr = *cnft.address();
    owner_tx(
        &owner_c,
        cnft_addr,
        UriTestNFT::setMinterCall {
            minter: d.child.bridge,
            allowed: true,
        }
        .abi_encode()
        .into(),
    )
    .await;
    for (p, bridge, mine, other) in [
        (&owner_p, d.parent.bridge, pnft, cnft_addr),
        (&owner_c, d.child.bridge, cnft_addr, pnft),
    ] {
        owner_tx(
            p,
            bridge,
            Bridge::registerTokenCall {
                token: mine,
                counterpartToken: other,
            }
            .abi_encode()
            .into(),
        )
        .await;
    }

    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("uri recipient"));
    let up = d.parent.provider_with(user.clone());
    let mut sent = Vec::new();
    for (i, (label, uri, fails)) in cases().into_iter().enumerate() {
        let id = U256::from(5000 + i);
        // `string` and `bytes` encode alike: the URI goes in as raw bytes, UTF-8 or not.
        let mut mint = UriTestNFT::mintWithTokenURICall::SELECTOR.to_vec();
        mint.extend((user.address(), id, Bytes::from(uri.clone())).abi_encode_params());
        owner_tx(&owner_p, pnft, mint.into()).await;
        if fails {
            let call = UriTestNFT::setFailingURICall {
                tokenId: id,
                failing: true,
            };
            owner_tx(&owner_p, pnft, call.abi_encode().into()).await;
        }
        let approve = UriTestNFT::approveCall {
            to: d.parent.bridge,
            tokenId: id,
        };
        send(&up, pnft, approve.abi_encode().into(), U256::ZERO)
            .await
            .unwrap();
        let request = Bridge::requestERC721TransferCall {
            token: pnft,
            to,
            tokenId: id,
            extraData: Bytes::new(),
        };
        let r = send(
            &up,
            d.parent.bridge,
            request.abi_encode().into(),
            U256::ZERO,
        )
        .await
        .unwrap();
        let encoded = r
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<Bridge::RequestValueTransferEncoded>().ok())
            .expect("an encoded request")
            .inner
            .data
            .encodedData;
        sent.push((label, id, encoded));
    }

    let want = request_nonce(&d.parent).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while lower_handle_nonce(&d.child).await < want {
        assert!(
            Instant::now() < deadline,
            "URI transfers did not all execute ({} of {want})\n{}",
            lower_handle_nonce(&d.child).await,
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut failures = Vec::new();
    for (label, id, encoded) in &sent {
        // Kaia's node: decode once as a string, then its rule on those bytes.
        let raw = Bytes::abi_decode(encoded).expect("encodedData is one ABI string");
        let expected = kaia_node_uri(&raw);
        assert_eq!(
            cnft.ownerOf(*id).call().await.unwrap(),
            to,
            "{label}: owner"
        );
        let minted = cnft.rawTokenURI(*id).call().await.unwrap();
        eprintln!(
            "{label:>22}: raw {:>4} bytes → minted {:>4} bytes {}",
            raw.len(),
            minted.len(),
            if minted[..] == expected[..] {
                "✓"
            } else {
                "✗"
            }
        );
        if minted[..] != expected[..] {
            failures.push(format!(
                "{label}: minted {minted}, Kaia's node votes {}",
                Bytes::from(expected)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "URIs unlike Kaia's node:\n{}",
        failures.join("\n")
    );
    cluster.check_votes_on_chain().await;
}
