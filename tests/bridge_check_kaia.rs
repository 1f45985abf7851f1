//! The bridge check on a Kaia-style pair (issue 13 items 1 and 6), on the anvil devnet: the
//! dialect is found from the bridge itself, a pinned one that disagrees is warned about, and
//! `keys rotate` / `admin vote replace-operator` (the real binary) refuse before anything is
//! created or sent; `config check --online`, the agent's start-up log, `/metrics` and `status`
//! all say kaia and what it implies.

use std::process::Command;

use alloy::primitives::{Address, keccak256};
use alloy::providers::Provider;
use bridge_devkit::devnet::{Devnet, DevnetOptions};

mod support;
use support::agent::{Agent, Endpoints, PIN, provision_key, write_config};

async fn nonce_of(d: &Devnet, who: Address) -> (u64, u64) {
    (
        d.parent.reader().get_transaction_count(who).await.unwrap(),
        d.child.reader().get_transaction_count(who).await.unwrap(),
    )
}

/// A Kaia-style pair (the devnet's stand-in for Kaia's deployed bridge, deployer seat kept):
/// the check finds dialect kaia from the bridge itself (no `voteOf`: its payable fallback
/// answers with no data), a pinned `ours` is used but warned about, the threshold of 1 with
/// several seats is warned about; `keys rotate` and `admin vote replace-operator` refuse before
/// anything is made or sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_kaia_style_bridge_is_found_and_rotation_refused_before_sending() {
    use bridge_agent::bridge_check::{Seat, check, target};
    use bridge_agent::chain::{ChainAccessConfig, ChainClient, SensitiveUrl};
    use bridge_agent::dialect::Dialect;

    let dir = tempfile::tempdir().unwrap();
    let key = provision_key(&dir.path().join("hsm")).await;
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        dialect: Dialect::Kaia,
        keep_deployer_seat: true,
        operators: vec![key],
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let config = write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );
    let cfg =
        bridge_agent::config::load_with(&config, bridge_agent::config::Secrets::Skip).unwrap();
    let client = ChainClient::connect(ChainAccessConfig::new(
        "parent",
        d.parent.chain_id,
        vec![SensitiveUrl::new(d.parent.rpc_url().parse().unwrap())],
    ))
    .await
    .unwrap();
    let seated = key;
    let r = check(
        &client,
        &target(&cfg, bridge_agent::config::Side::Parent, Some(seated)),
    )
    .await
    .unwrap();
    assert_eq!((r.dialect, r.detected), (Dialect::Kaia, Dialect::Kaia));
    assert_eq!(r.seat, Seat::Seated(seated));
    assert!(
        r.operators.contains(&d.owner().address()),
        "deployer seat kept: {r:?}"
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("value-transfer threshold 1 with 2 seats")),
        "{:?}",
        r.warnings
    );
    let stranger = Address::from_word(keccak256("stranger"));
    let mut pinned = target(&cfg, bridge_agent::config::Side::Parent, Some(stranger));
    pinned.configured = Some(Dialect::Ours);
    let r = check(&client, &pinned).await.unwrap();
    assert_eq!((r.dialect, r.detected), (Dialect::Ours, Dialect::Kaia));
    assert_eq!(r.seat, Seat::NotSeated(stranger));
    assert!(
        r.warnings.iter().any(|w| w.contains(
            "parent.dialect = \"ours\" is configured, but the bridge answers as \"kaia\""
        )),
        "{:?}",
        r.warnings
    );

    let nonces = || async {
        let mut all = Vec::new();
        for who in [d.owner().address(), key] {
            all.push(nonce_of(&d, who).await);
        }
        all
    };
    let before = nonces().await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("BRIDGE_PKCS11_PIN", PIN)
            .output()
            .unwrap()
    };
    let out = run(&["keys", "rotate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`keys rotate` cannot run here: this bridge is of the kaia dialect, which has no key rotation")
            && err.contains("deregisters the old key and registers the new one")
            && err.contains("(nothing was sent)"),
        "{err}"
    );
    let (old, new) = (key.to_string(), stranger.to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["admin", "--config"])
        .arg(&config)
        .args(["--chain", "both", "vote", "replace-operator", &old, &new])
        .env("BRIDGE_PKCS11_PIN", PIN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "parent bridge {}: `admin vote replace-operator` cannot run here: this bridge is of the kaia dialect",
            d.parent.bridge
        )) && err.contains("(nothing was sent)"),
        "{err}"
    );
    assert_eq!(nonces().await, before, "something was sent");
    assert!(
        !dir.path().join("agent").join("store.sqlite").exists(),
        "keys rotate recorded a step"
    );

    // config check --online reports the dialect and what it implies, for both bridges.
    let out = run(&["config", "check", "--online"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (side, bridge) in [("parent", d.parent.bridge), ("child", d.child.bridge)] {
        assert!(
            text.contains(&format!(
                "{side} bridge {bridge}: verified, dialect kaia (detected from the bridge)"
            )),
            "{text}"
        );
    }
    for needle in [
        &format!("key {key}: seated"),
        "implies: Kaia dialect: no voteOf/Voted: forged votes are audited from the bridge's block transactions",
        "implies: no key rotation",
        "warning: value-transfer threshold 1 with 2 seats",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }

    // The agent finds it too: logged at start, in /metrics and in `status`.
    let agent = Agent::start(&config, dir.path().join("agent.log"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let out = run(&["status"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready:\n{text}\n{}",
            agent.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    for needle in [
        "{chain=\"parent\",dialect=\"kaia\"} 1",
        "{chain=\"child\",dialect=\"kaia\"} 1",
        "parent bridge (kaia): no key rotation",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    let log = agent.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("bridge dialect detected") && l.contains("kaia"))
            .count()
            == 2,
        "{log}"
    );
    assert!(agent.stop().success());
}
