//! `keys rotate` killed at each step in turn (`bridge-dev rotate-crash` aborts right after a step took
//! effect on chain, before it is recorded: the worst moment), then re-run: it completes, and on
//! each chain the old or the new address holds the seat at every moment. Also: `--dry-run`
//! sends nothing (the chain nonce is unchanged), bad input is refused before anything happens,
//! `--destroy-old --yes` removes the old key, and the agent starts with the new key.

#[path = "support/rotation.rs"]
mod support;

use alloy::primitives::Address;
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions};
use support::*;

const STEPS: [&str; 10] = [
    "key",
    "fund:parent",
    "fund:child",
    "propose:parent",
    "propose:child",
    "accept:parent",
    "accept:child",
    "sweep:parent",
    "sweep:child",
    "retire",
];

fn key_address(keys: &Keys, label: &str) -> Option<Address> {
    let out = cli(
        keys,
        &[
            "keys",
            "list",
            "--backend",
            "pkcs11",
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .map(|k| k["address"].as_str().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_killed_at_every_step_resumes_and_never_loses_the_seat() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::softhsm(&dir.path().join("hsm"));
    let operators: Vec<Address> = (1..=4)
        .map(|i| keys.generate(&format!("operator-{i}")))
        .collect();
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: operators.clone(),
        value_transfer_threshold: 3,
        configuration_threshold: 3,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let config = write_config(dir.path(), "op1", &d, &keys.signer_section("operator-1"));
    let config = config.to_str().unwrap();
    let old = operators[0];

    // Bad input: a KMS key for a PKCS#11 signer, --yes without --destroy-old, a bad amount.
    for (args, needle) in [
        (vec!["--new-kms-key", "alias/x"], "--new-key-label"),
        (vec!["--yes"], "--destroy-old"),
        (vec!["--fund", "lots"], "--fund"),
    ] {
        let mut all = vec!["keys", "rotate", "--config", config];
        all.extend(args);
        let out = cli(&keys, &all, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            text(&out)
        );
    }

    // --dry-run: the plan and the transactions, nothing sent, no key created.
    let nonces = (
        nonce_of(&d.parent, old).await,
        nonce_of(&d.child, old).await,
    );
    let out = cli(
        &keys,
        &["keys", "rotate", "--config", config, "--dry-run"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "DRY RUN",
        "would be created",
        "proposeOperatorKey",
        "acceptOperatorKey",
        "sweep",
    ] {
        assert!(plan.contains(needle), "{needle} missing from:\n{plan}");
    }
    assert_eq!(
        (
            nonce_of(&d.parent, old).await,
            nonce_of(&d.child, old).await
        ),
        nonces,
        "--dry-run sent a transaction"
    );
    assert_eq!(
        key_address(&keys, "operator-1-r1"),
        None,
        "--dry-run created a key"
    );

    // Killed after each step in turn; the seat is held by old or new throughout.
    let mut new = None;
    for step in STEPS {
        // The operator's binary has no crash hook; the development binary's hidden command
        // runs the same rotation and aborts after `step` took effect, before it is recorded.
        let out = dev_cli(
            &keys,
            &["rotate-crash", "--config", config, "--after", step],
        );
        assert!(
            !out.status.success(),
            "not killed at {step}: {}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("aborting (test hook)"),
            "killed elsewhere than at {step}: {}",
            text(&out)
        );
        new = new.or_else(|| key_address(&keys, "operator-1-r1"));
        let new = new.expect("the new key exists after the key step");
        for side in [&d.parent, &d.child] {
            let list = Bridge::new(side.bridge, side.reader())
                .getOperatorList()
                .call()
                .await
                .unwrap();
            assert_eq!(list.len(), 4, "after {step}");
            let (has_old, has_new) = (list.contains(&old), list.contains(&new));
            assert!(
                has_old ^ has_new,
                "after {step}: old seated {has_old}, new seated {has_new}"
            );
            assert!(operators[1..].iter().all(|o| list.contains(o)));
        }
    }
    let new = new.unwrap();

    // The same command finishes it, and destroys the old key when asked.
    let out = cli(
        &keys,
        &[
            "keys",
            "rotate",
            "--config",
            config,
            "--destroy-old",
            "--yes",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let done = String::from_utf8_lossy(&out.stdout);
    assert!(done.contains("resuming rotation 1"), "{done}");
    assert!(done.contains("destroyed"), "{done}");
    for side in [&d.parent, &d.child] {
        assert!(is_operator(side, new).await && !is_operator(side, old).await);
        let pending = Bridge::new(side.bridge, side.reader())
            .pendingOperatorKey(old)
            .call()
            .await
            .unwrap();
        assert_eq!(pending, Address::ZERO);
        // Swept: the old account keeps less than one transfer's worth of gas.
        let left = alloy::providers::Provider::get_balance(&side.reader(), old)
            .await
            .unwrap();
        assert!(
            left < alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(16u64)),
            "{left}"
        );
    }
    assert_eq!(
        key_address(&keys, "operator-1"),
        None,
        "old key not destroyed"
    );
    assert_eq!(key_address(&keys, "operator-1-r1"), Some(new));

    // The agent, with its config still naming operator-1, starts with the new key.
    let agent = Agent::start(
        std::path::Path::new(config),
        &keys,
        dir.path().join("op1.log"),
    );
    let log = agent.log_text();
    assert!(
        log.contains("chain ready")
            && log.contains(&new.to_string())
            && !log.contains(&old.to_string()),
        "{log}"
    );
    assert!(agent.stop().success());
}
