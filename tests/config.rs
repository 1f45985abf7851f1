//! The config file as an operator meets it: the shipped examples load, a broken file is
//! reported whole, and nothing secret is printed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use bridge_agent::config::{self, FeeMode, LogFormat, Side};
use bridge_signer::SignerConfig;

const PIN: &str = "example-PIN-31337";
const RPC_URL_WITH_KEY: &str = "https://parent-node-3.example/v3/API-KEY-0xC0FFEE";

/// Sets the environment variables the examples name, once, before any test reads the
/// environment (every test calls this first).
fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: every test in this binary calls `env()` before touching the environment,
        // and `Once` makes the others wait until these writes are done; nothing else in the
        // process reads the environment concurrently through libc.
        unsafe {
            std::env::set_var("BRIDGE_PKCS11_PIN", PIN);
            std::env::set_var("BRIDGE_PARENT_RPC_URL", RPC_URL_WITH_KEY);
        }
    });
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

fn load_example(name: &str) -> config::AgentConfig {
    env();
    config::load(&example(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn softhsm_example_loads() {
    let c = load_example("softhsm.toml");
    assert!(matches!(
        c.signer_for(Side::Parent),
        SignerConfig::Pkcs11(_)
    ));
    assert_eq!(c.signer_for(Side::Parent), c.signer_for(Side::Child));
    assert_eq!(c.parent.rpc.len(), 2);
    // The second parent endpoint came from BRIDGE_PARENT_RPC_URL.
    assert_eq!(c.parent.rpc[1].expose().as_str(), RPC_URL_WITH_KEY);
    assert_eq!(c.child.fees.mode, FeeMode::Legacy);
    assert!(config::check(&example("softhsm.toml")).is_empty());
}

#[test]
fn aws_kms_example_loads() {
    let c = load_example("aws-kms.toml");
    assert!(matches!(c.signer_for(Side::Child), SignerConfig::AwsKms(_)));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.parent.confirmations, 2);
    assert_eq!(c.recovery.window_blocks, 1000);
}

#[test]
fn devnet_operator_template_loads_and_matches_the_devnet_defaults() {
    let c = load_example("devnet-operator.toml");
    let defaults = bridge_devkit::devnet::DevnetOptions::default();
    assert_eq!(c.parent.chain_id, defaults.parent_chain_id);
    assert_eq!(c.child.chain_id, defaults.child_chain_id);
    assert_eq!(c.store_path(), Path::new(".devnet/agents/op1/store.sqlite"));
    assert_eq!(
        c.guard_config(Side::Child).journal,
        Path::new(".devnet/agents/op1/journal-child.sqlite")
    );
}

#[test]
fn a_broken_file_is_reported_whole() {
    env();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let text = std::fs::read_to_string(example("softhsm.toml"))
        .unwrap()
        .replace("chain_id = 1002", "chain_id = 1001")
        .replace("bump_percent = 10", "bump_percent = 5")
        .replace("level = \"info\"", "level = \"info,=\"")
        .replace("poll_interval_ms = 1000", "poll_intervall_ms = 1000")
        .replace(
            "pin = { env = \"BRIDGE_PKCS11_PIN\" }",
            "pin = { env = \"BRIDGE_AGENT_TEST_UNSET_PIN_VAR\" }",
        );
    std::fs::write(&path, text).unwrap();
    let e = config::load(&path).unwrap_err();
    assert_eq!(
        e.paths(),
        [
            "log.level",
            "signer.pin.env",
            "parent.poll_intervall_ms",
            "child.chain_id",
            "child.fees.bump_percent",
        ],
        "{e}"
    );
    assert_eq!(config::check(&path), e.problems);
    let shown = e.to_string();
    assert!(shown.contains("5 problems in config file"), "{shown}");
    assert!(
        shown.contains("BRIDGE_AGENT_TEST_UNSET_PIN_VAR is not set"),
        "{shown}"
    );
    // Commands that never sign (status) do not need the PIN; the other problems remain.
    let e = config::load_with(&path, config::Secrets::Skip).unwrap_err();
    assert!(!e.paths().contains(&"signer.pin.env"), "{e}");
    assert_eq!(e.problems.len(), 4, "{e}");
}

#[test]
fn debug_of_a_loaded_config_has_no_secrets() {
    let c = load_example("softhsm.toml");
    let dbg = format!("{c:#?}");
    assert!(!dbg.contains(PIN), "{dbg}");
    assert!(!dbg.contains("API-KEY"), "{dbg}");
    assert!(dbg.contains("https://parent-node-3.example/…"), "{dbg}");
    // The PIN's source is named, so an operator can tell where it is read from.
    assert!(dbg.contains("BRIDGE_PKCS11_PIN"), "{dbg}");
}

/// `bridge-agent config check` through the real binary: OK for an example, and for a broken
/// file a non-zero exit with every problem's path, and never the PIN.
#[test]
fn config_check_cli_reports_every_problem() {
    env();
    let bin = env!("CARGO_BIN_EXE_bridge-agent");
    let ok = std::process::Command::new(bin)
        .args(["config", "check", "--config"])
        .arg(example("softhsm.toml"))
        .env("BRIDGE_PKCS11_PIN", PIN)
        .env("BRIDGE_PARENT_RPC_URL", RPC_URL_WITH_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains(": OK") && stdout.contains("parent: chain"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(example("softhsm.toml"))
        .unwrap()
        .replace("confirmations = ", "confirmations = \"many\" # was ")
        .replace("[http]", "[http]\nlisten_on = 1");
    std::fs::write(&broken, text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["config", "check", "--config"])
        .arg(&broken)
        .env("BRIDGE_PKCS11_PIN", PIN)
        .env("BRIDGE_PARENT_RPC_URL", RPC_URL_WITH_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken config must fail");
    assert!(stderr.contains("confirmations"), "{stderr}");
    assert!(stderr.contains("listen_on"), "{stderr}");
    assert!(!stderr.contains(PIN) && !String::from_utf8_lossy(&out.stdout).contains(PIN));
}
