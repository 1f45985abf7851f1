//! The interim demo: the devnet comes up and one transfer goes each way, native coin from parent
//! to child and an ERC-20 from child to parent.
//!
//! One throw-away anvil account stands in for the agent as the only operator (threshold 1),
//! through [`crate::devnet::stand_in`]. It is clearly labelled as such in the output: the real
//! four-agent demo, signing through SoftHSM, replaces it once the agent exists (issue #4).

use crate::contracts::{Bridge, ServiceChainToken};
use crate::devnet::stand_in::{self, Request};
use crate::devnet::{Devnet, DevnetError, DevnetOptions, Side};
use alloy::primitives::{Address, Bytes, U256, keccak256, utils::format_ether};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use std::path::PathBuf;

fn fail(what: &str, reason: impl ToString) -> DevnetError {
    DevnetError::Chain {
        chain: "demo".into(),
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Runs the demo in `dir`, printing each step. The chains stop when it returns.
pub async fn run(dir: PathBuf) -> Result<(), DevnetError> {
    println!("== bridge-agent interim demo ==");
    println!("NOTE: a throw-away anvil dev account STANDS IN FOR THE AGENT here, as the only");
    println!("      operator (threshold 1). The real agent signing through SoftHSM replaces it");
    println!("      in a later release; never use a raw key like this with real value.\n");

    let devnet = Devnet::start(DevnetOptions {
        dir,
        dev_operators: 1,
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await?;
    let operator = devnet.dev_operator_keys()[0].clone();
    println!(
        "[1/5] devnet up: parent chain {} at {}, child chain {} at {}",
        devnet.parent.chain_id,
        devnet.parent.rpc_url(),
        devnet.child.chain_id,
        devnet.child.rpc_url()
    );
    println!("      description: {}", devnet.description_path().display());
    println!(
        "      stand-in operator (throw-away key): {}",
        operator.address()
    );

    let user = devnet.users()[0].clone();
    let recipient = Address::from_word(keccak256("bridge-agent demo recipient"));

    // Parent → child, native coin (locked on the parent, paid from child liquidity).
    let value = U256::from(15u64) * U256::from(10u64).pow(U256::from(17u64));
    let parent_user = devnet.parent.provider_with(user.clone());
    let receipt = Bridge::new(devnet.parent.bridge, &parent_user)
        .requestKLAYTransfer(recipient, value, Bytes::new())
        .value(value)
        .send()
        .await
        .map_err(|e| fail("request native transfer", e))?
        .get_receipt()
        .await
        .map_err(|e| fail("request receipt", e))?;
    println!(
        "[2/5] user {} requested {} ETH parent → child for {recipient} (tx {})",
        user.address(),
        format_ether(value),
        receipt.transaction_hash
    );
    let before = devnet
        .child
        .reader()
        .get_balance(recipient)
        .await
        .map_err(|e| fail("balance", e))?;
    relay(&devnet.parent, &devnet.child, &operator, "[3/5]").await?;
    let after = devnet
        .child
        .reader()
        .get_balance(recipient)
        .await
        .map_err(|e| fail("balance", e))?;
    if after - before != value {
        return Err(fail(
            "check child balance",
            format!("expected +{value}, got {before} → {after}"),
        ));
    }
    println!(
        "      recipient's child-chain balance: {} → {} ETH",
        format_ether(before),
        format_ether(after)
    );

    // Child → parent, ERC-20 (burned on the child, unlocked on the parent).
    let amount = U256::from(250u64) * U256::from(10u64).pow(U256::from(18u64));
    let child_user = devnet.child.provider_with(user.clone());
    let token = ServiceChainToken::new(devnet.child.erc20, &child_user);
    send(
        token.approve(devnet.child.bridge, amount).send().await,
        "approve",
    )
    .await?;
    let receipt = Bridge::new(devnet.child.bridge, &child_user)
        .requestERC20Transfer(
            devnet.child.erc20,
            recipient,
            amount,
            U256::ZERO,
            Bytes::new(),
        )
        .send()
        .await
        .map_err(|e| fail("request ERC-20 transfer", e))?
        .get_receipt()
        .await
        .map_err(|e| fail("request receipt", e))?;
    println!(
        "[4/5] user requested 250 CTT child → parent for {recipient}, burned on the child (tx {})",
        receipt.transaction_hash
    );
    let parent_token = ServiceChainToken::new(devnet.parent.erc20, devnet.parent.reader());
    let before = parent_token
        .balanceOf(recipient)
        .call()
        .await
        .map_err(|e| fail("balance", e))?;
    relay(&devnet.child, &devnet.parent, &operator, "[5/5]").await?;
    let after = parent_token
        .balanceOf(recipient)
        .call()
        .await
        .map_err(|e| fail("balance", e))?;
    if after - before != amount {
        return Err(fail(
            "check parent ERC-20 balance",
            format!("expected +{amount}, got {before} → {after}"),
        ));
    }
    println!(
        "      recipient's parent-chain PTT balance: {} → {}",
        format_ether(before),
        format_ether(after)
    );
    println!("\nBoth transfers landed. Stopping the chains.");
    Ok(())
}

async fn send<T>(
    r: Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>, T>,
    what: &str,
) -> Result<(), DevnetError>
where
    T: ToString,
{
    let receipt = r
        .map_err(|e| fail(what, e))?
        .get_receipt()
        .await
        .map_err(|e| fail(what, e))?;
    if !receipt.status() {
        return Err(fail(what, "reverted"));
    }
    Ok(())
}

/// The stand-in operator: votes every request the source bridge emitted, on the destination.
async fn relay(
    source: &Side,
    dest: &Side,
    operator: &PrivateKeySigner,
    step: &str,
) -> Result<(), DevnetError> {
    let reader: DynProvider = source.reader();
    let requests: Vec<Request> =
        stand_in::requests_since(&reader, source.bridge, source.bridge_deploy_block).await?;
    let dest_provider = dest.provider_with(operator.clone());
    for req in &requests {
        let token = stand_in::counterpart_token(&reader, source.bridge, req).await?;
        let calldata = stand_in::handle_calldata(req, token);
        let receipt = stand_in::send_vote(&dest_provider, dest.bridge, calldata).await?;
        if !receipt.status() {
            return Err(fail(
                "stand-in vote",
                format!("tx {} reverted", receipt.transaction_hash),
            ));
        }
        let handled = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<Bridge::HandleValueTransfer>().ok())
            .map(|l| l.inner.data.handleNonce)
            .collect::<Vec<_>>();
        println!(
            "{step} STAND-IN operator {} voted request nonce {} on chain {} (tx {}); executed nonces: {handled:?}",
            operator.address(),
            req.nonce,
            dest.chain_id,
            receipt.transaction_hash
        );
        if handled != [req.nonce] {
            return Err(fail(
                "stand-in vote",
                format!("expected HandleValueTransfer for nonce {}", req.nonce),
            ));
        }
    }
    Ok(())
}
