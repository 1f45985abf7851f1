//! `bridge-agent admin …` through the real binary, with the owner key and the operator keys in
//! SoftHSM: each command's happy path asserted on chain, and one bad input per command refused
//! with a clear message before anything is sent (the signer's chain nonce is unchanged).

#[path = "support/rotation.rs"]
mod support;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side, seed};
use std::path::Path;
use support::*;

struct Admin<'a> {
    keys: &'a Keys,
    d: &'a Devnet,
    owner: Address,
}

impl Admin<'_> {
    /// Runs `admin --config <config> <args>`; asserts success and returns stdout.
    fn ok<S: AsRef<str> + std::fmt::Debug>(&self, config: &Path, args: &[S]) -> String {
        let out = self.run(config, args);
        assert!(out.status.success(), "admin {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs it expecting a refusal (exit 2) naming `needle`, with nothing sent by the owner
    /// or by `sender`.
    async fn refused<S: AsRef<str> + std::fmt::Debug>(
        &self,
        config: &Path,
        args: &[S],
        needle: &str,
        sender: Address,
    ) {
        let before = (
            nonce_of(&self.d.parent, sender).await,
            nonce_of(&self.d.child, sender).await,
            nonce_of(&self.d.parent, self.owner).await,
            nonce_of(&self.d.child, self.owner).await,
        );
        let out = self.run(config, args);
        assert_eq!(out.status.code(), Some(2), "admin {args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "admin {args:?}: expected {needle:?} in:\n{err}"
        );
        let after = (
            nonce_of(&self.d.parent, sender).await,
            nonce_of(&self.d.child, sender).await,
            nonce_of(&self.d.parent, self.owner).await,
            nonce_of(&self.d.child, self.owner).await,
        );
        assert_eq!(before, after, "admin {args:?} sent a transaction");
    }

    fn run<S: AsRef<str>>(&self, config: &Path, args: &[S]) -> std::process::Output {
        let mut all = vec!["admin", "--config", config.to_str().unwrap()];
        all.extend(args.iter().map(|a| a.as_ref()));
        cli(self.keys, &all, &[])
    }
}

fn bridge(side: &Side) -> Bridge::BridgeInstance<alloy::providers::DynProvider> {
    Bridge::new(side.bridge, side.reader())
}

async fn dev_send(side: &Side, d: &Devnet, to: Address, value: U256, input: Vec<u8>) {
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_to(to)
        .with_value(value)
        .with_input(Bytes::from(input));
    let r = side
        .provider_with(d.owner())
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_change_the_bridges_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::softhsm(&dir.path().join("hsm"));
    let ops: Vec<Address> = (1..=4)
        .map(|i| keys.generate(&format!("operator-{i}")))
        .collect();
    let owner = keys.generate("owner");
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: ops[..3].to_vec(),
        value_transfer_threshold: 2,
        configuration_threshold: 2,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let cfg: Vec<_> = (1..=4)
        .map(|i| {
            write_config(
                dir.path(),
                &format!("op{i}"),
                &d,
                &keys.signer_section(&format!("operator-{i}")),
            )
        })
        .collect();
    let a = Admin {
        keys: &keys,
        d: &d,
        owner,
    };
    // Owner flags for both chains, then the command.
    let with = |extra: &[&str]| -> Vec<String> {
        ["--chain", "both", "--owner-key-label", "owner"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    // Ownership moves from the deployer's dev key to the owner key in SoftHSM.
    for side in [&d.parent, &d.child] {
        dev_send(side, &d, owner, seed::coins(10), Vec::new()).await;
        let call = Bridge::transferOwnershipCall { newOwner: owner }.abi_encode();
        dev_send(side, &d, side.bridge, U256::ZERO, call).await;
    }
    a.refused(
        &cfg[0],
        &["--chain", "both", "register-operator", &ops[3].to_string()],
        "--owner-key-label",
        owner,
    )
    .await;
    let out = a.ok(&cfg[0], &with(&["accept-ownership"]));
    assert!(out.contains(&format!("owner() = {owner}")), "{out}");
    for side in [&d.parent, &d.child] {
        assert_eq!(bridge(side).owner().call().await.unwrap(), owner);
    }
    a.refused(
        &cfg[0],
        &with(&["accept-ownership"]),
        "not being transferred",
        owner,
    )
    .await;

    // Operators.
    let op4 = ops[3].to_string();
    let out = a.ok(&cfg[0], &with(&["register-operator", &op4.clone()]));
    assert!(out.contains("= true; 4 operators"), "{out}");
    for side in [&d.parent, &d.child] {
        assert!(bridge(side).operators(ops[3]).call().await.unwrap());
    }
    a.refused(
        &cfg[0],
        &with(&["register-operator", &ops[0].to_string()]),
        "already an operator",
        owner,
    )
    .await;
    let stranger = &Address::repeat_byte(0x77).to_string();
    a.refused(
        &cfg[0],
        &with(&["deregister-operator", stranger]),
        "unknown address",
        owner,
    )
    .await;

    // Thresholds.
    let out = a.ok(
        &cfg[0],
        &with(&["set-threshold", "--vote-type", "value", "3"]),
    );
    assert!(out.contains("operatorThresholds(0) = 3"), "{out}");
    for side in [&d.parent, &d.child] {
        assert_eq!(bridge(side).operatorThresholds(0).call().await.unwrap(), 3);
    }
    a.refused(
        &cfg[0],
        &with(&["set-threshold", "--vote-type", "config", "9"]),
        "operator count 4",
        owner,
    )
    .await;

    // Deregister (after the threshold check passes: 3 operators left, thresholds 3 and 2).
    let out = a.ok(&cfg[0], &with(&["deregister-operator", &op4.clone()]));
    assert!(out.contains("= false; 3 operators"), "{out}");
    a.refused(
        &cfg[0],
        &with(&["deregister-operator", &ops[0].to_string()]),
        "below the Value threshold 3",
        owner,
    )
    .await;

    // Tokens (one chain at a time).
    let (token, counterpart) = (d.parent.erc20.to_string(), d.child.erc20.to_string());
    let (token, counterpart) = (token.as_str(), counterpart.as_str());
    let p = |extra: &[&str]| -> Vec<String> {
        ["--chain", "parent", "--owner-key-label", "owner"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let out = a.ok(&cfg[0], &p(&["deregister-token", token]));
    assert!(
        out.contains(&format!(
            "registeredTokens({}) = {}",
            d.parent.erc20,
            Address::ZERO
        )),
        "{out}"
    );
    a.refused(
        &cfg[0],
        &p(&["deregister-token", token]),
        "not a registered token",
        owner,
    )
    .await;
    a.refused(
        &cfg[0],
        &p(&["register-token", stranger, counterpart]),
        "not a contract",
        owner,
    )
    .await;
    let out = a.ok(&cfg[0], &p(&["register-token", token, counterpart]));
    assert!(out.contains(&format!("= {}", d.child.erc20)), "{out}");
    assert_eq!(
        bridge(&d.parent)
            .registeredTokens(d.parent.erc20)
            .call()
            .await
            .unwrap(),
        d.child.erc20
    );
    a.refused(
        &cfg[0],
        &with(&["register-token", token, counterpart]),
        "one chain",
        owner,
    )
    .await;

    // Pause / resume; the wrong key is refused.
    a.refused(
        &cfg[0],
        &[
            "--chain",
            "both",
            "--owner-key-label",
            "operator-4",
            "pause",
        ],
        "is not the bridge owner",
        ops[3],
    )
    .await;
    let out = a.ok(&cfg[0], &with(&["pause"]));
    assert!(out.contains("isRunning() = false"), "{out}");
    assert!(!bridge(&d.child).isRunning().call().await.unwrap());
    a.refused(
        &cfg[0],
        &[
            "--chain",
            "both",
            "--owner-key-label",
            "operator-4",
            "resume",
        ],
        "is not the bridge owner",
        ops[3],
    )
    .await;
    let out = a.ok(&cfg[0], &with(&["resume"]));
    assert!(out.contains("isRunning() = true"), "{out}");
    assert!(bridge(&d.parent).isRunning().call().await.unwrap());

    // Fee receiver.
    let receiver = Address::repeat_byte(0x42);
    let out = a.ok(&cfg[0], &with(&["set-fee-receiver", &receiver.to_string()]));
    assert!(
        out.contains(&format!("feeReceiver() = {receiver}")),
        "{out}"
    );
    assert_eq!(
        bridge(&d.child).feeReceiver().call().await.unwrap(),
        receiver
    );
    let bad = a.run(&cfg[0], &with(&["set-fee-receiver", "0x1234"]));
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));

    // Configuration votes through each operator's own config (threshold 2).
    let out = a.ok(
        &cfg[0],
        &["--chain", "child", "vote", "set-klay-fee", "1000"],
    );
    assert!(out.contains("vote recorded"), "{out}");
    assert_eq!(
        bridge(&d.child).feeOfKLAY().call().await.unwrap(),
        U256::ZERO
    );
    let out = a.ok(
        &cfg[1],
        &["--chain", "child", "vote", "set-klay-fee", "1000"],
    );
    assert!(
        out.contains("vote passed") && out.contains("feeOfKLAY() = 1000"),
        "{out}"
    );
    assert_eq!(
        bridge(&d.child).feeOfKLAY().call().await.unwrap(),
        U256::from(1000)
    );
    a.refused(
        &cfg[3],
        &["--chain", "child", "vote", "set-klay-fee", "5"],
        "holds no seat",
        ops[3],
    )
    .await;

    let child_token = &d.child.erc20.to_string();
    for c in &cfg[..2] {
        a.ok(
            c,
            &[
                "--chain",
                "child",
                "vote",
                "set-erc20-fee",
                child_token,
                "7",
            ],
        );
    }
    assert_eq!(
        bridge(&d.child)
            .feeOfERC20(d.child.erc20)
            .call()
            .await
            .unwrap(),
        U256::from(7)
    );
    a.refused(
        &cfg[0],
        &["--chain", "child", "vote", "set-erc20-fee", stranger, "7"],
        "not a registered token",
        ops[0],
    )
    .await;

    let (old3, new4) = (&ops[2].to_string(), &ops[3].to_string());
    for c in &cfg[..2] {
        a.ok(
            c,
            &["--chain", "parent", "vote", "replace-operator", old3, new4],
        );
    }
    let list = bridge(&d.parent).getOperatorList().call().await.unwrap();
    assert!(
        list.contains(&ops[3]) && !list.contains(&ops[2]),
        "{list:?}"
    );
    a.refused(
        &cfg[0],
        &[
            "--chain",
            "parent",
            "vote",
            "replace-operator",
            stranger,
            old3,
        ],
        "unknown address",
        ops[0],
    )
    .await;
}
