//! The real `bridge-agent run` binary, one operator (t = 1) signing through SoftHSM, on the
//! anvil devnet: every token type both ways lands with its extra data and URI, and an agent that
//! was down while 50 requests happened catches up on restart, voting each exactly once.

use alloy::primitives::{Address, Bytes, U256, keccak256};
use bridge_agent::contracts::{
    Bridge, ServiceChainNFT, ServiceChainToken, VOTE_TYPE_VALUE_TRANSFER,
};
use bridge_devkit::devnet::seed;
use std::process::Command;

mod support;
use support::agent::{Agent, Endpoints, enc, executed, one_operator_devnet, send, write_config};

#[tokio::test(flavor = "multi_thread")]
async fn one_agent_carries_every_token_type_both_ways_and_catches_up_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let d = one_operator_devnet(dir.path()).await;
    let operator = d.operators[0];
    let config = write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );
    let agent = Agent::start(&config, dir.path().join("agent-1.log"));
    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("agent run recipient"));

    // Parent → child: native, ERC-20, ERC-721 (nonces 0, 1, 2).
    let p = &d.parent;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(7),
            extraData: Bytes::from_static(b"x1"),
        }),
        U256::from(7),
    )
    .await;
    send(
        p,
        &user,
        p.erc20,
        enc(ServiceChainToken::approveCall {
            spender: p.bridge,
            value: U256::from(500),
        }),
        U256::ZERO,
    )
    .await;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestERC20TransferCall {
            token: p.erc20,
            to,
            value: U256::from(500),
            feeLimit: U256::ZERO,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;
    let nft = seed::parent_nft_ids(0).next().unwrap();
    send(
        p,
        &user,
        p.erc721,
        enc(ServiceChainNFT::approveCall {
            to: p.bridge,
            tokenId: nft,
        }),
        U256::ZERO,
    )
    .await;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestERC721TransferCall {
            token: p.erc721,
            to,
            tokenId: nft,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;
    // Child → parent: native and ERC-20 (nonces 0, 1).
    let c = &d.child;
    send(
        c,
        &user,
        c.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(9),
            extraData: Bytes::new(),
        }),
        U256::from(9),
    )
    .await;
    send(
        c,
        &user,
        c.erc20,
        enc(ServiceChainToken::approveCall {
            spender: c.bridge,
            value: U256::from(300),
        }),
        U256::ZERO,
    )
    .await;
    send(
        c,
        &user,
        c.bridge,
        enc(Bridge::requestERC20TransferCall {
            token: c.erc20,
            to,
            value: U256::from(300),
            feeLimit: U256::ZERO,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;

    for n in 0..3 {
        executed(c, n, &agent).await;
    }
    for n in 0..2 {
        executed(p, n, &agent).await;
    }
    use alloy::providers::Provider;
    assert_eq!(c.reader().get_balance(to).await.unwrap(), U256::from(7));
    assert_eq!(
        ServiceChainToken::new(c.erc20, c.reader())
            .balanceOf(to)
            .call()
            .await
            .unwrap(),
        U256::from(500)
    );
    let child_nft = ServiceChainNFT::new(c.erc721, c.reader());
    assert_eq!(child_nft.ownerOf(nft).call().await.unwrap(), to);
    assert_eq!(
        child_nft.tokenURI(nft).call().await.unwrap(),
        seed::nft_uri(nft),
        "URI carried"
    );
    assert_eq!(p.reader().get_balance(to).await.unwrap(), U256::from(9));
    assert_eq!(
        ServiceChainToken::new(p.erc20, p.reader())
            .balanceOf(to)
            .call()
            .await
            .unwrap(),
        U256::from(300)
    );
    // The status command shows the running agent's readiness and metrics.
    let status_cmd = || {
        Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
            .args(["status", "--config"])
            .arg(&config)
            // status never signs: it must not need the PIN.
            .env_remove("BRIDGE_PKCS11_PIN")
            .output()
            .unwrap()
    };
    let out = status_cmd();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("READY"),
        "{text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    assert!(
        text.contains("votes mined") && text.contains("direction=\"parent_to_child\""),
        "{text}"
    );
    // The vote for nonce 0 carried the request's extra data verbatim.
    let handled = c
        .reader()
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(c.bridge)
                .from_block(c.bridge_deploy_block)
                .event_signature(
                    <Bridge::HandleValueTransfer as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                ),
        )
        .await
        .unwrap();
    // Votes are planned in parallel, so nonce 0 need not be the first executed.
    let first = handled
        .iter()
        .map(|l| {
            l.log_decode::<Bridge::HandleValueTransfer>()
                .unwrap()
                .inner
                .data
        })
        .find(|h| h.handleNonce == 0)
        .expect("nonce 0 executed");
    assert_eq!(first.extraData.as_ref(), b"x1".as_slice());
    let status = agent.stop();
    assert!(status.success(), "clean stop: {status}");
    let out = status_cmd();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no agent answers") && text.contains("parent → child: requestNonce 3"),
        "{text}"
    );

    // Down while 50 requests happen; up again: all executed, each voted once by this operator.
    for i in 0..50u64 {
        send(
            p,
            &user,
            p.bridge,
            enc(Bridge::requestKLAYTransferCall {
                to,
                value: U256::from(100 + i),
                extraData: Bytes::new(),
            }),
            U256::from(100 + i),
        )
        .await;
    }
    let agent = Agent::start(&config, dir.path().join("agent-2.log"));
    for n in 3..53 {
        executed(c, n, &agent).await;
    }
    let b = Bridge::new(c.bridge, c.reader());
    for n in 0..53 {
        assert_ne!(
            b.voteOf(VOTE_TYPE_VALUE_TRANSFER, n, operator)
                .call()
                .await
                .unwrap(),
            alloy::primitives::B256::ZERO
        );
    }
    // Nothing old was voted again: the operator sent exactly one tx per request on the child.
    let sent = c.reader().get_transaction_count(operator).await.unwrap();
    assert_eq!(
        sent,
        53,
        "one vote per request, no re-votes:\n{}",
        agent.log()
    );
    assert!(agent.stop().success());
}
