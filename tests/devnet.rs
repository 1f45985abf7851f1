//! The devnet as a library and through the development binary `bridge-dev` (`devnet up`, and
//! the demo, which runs the operator's `bridge-agent`): it starts, describes itself,
//! stops its chains, and reports bad input (a missing anvil, a busy port, equal chain ids)
//! clearly.

use bridge_devkit::bins::{OPERATOR_BIN_ENV, dev_binary};
use bridge_devkit::devnet::{Devnet, DevnetDescription, DevnetError, DevnetOptions};
use bridge_devkit::wait::wait_until_blocking;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn opts(dir: &tempfile::TempDir) -> DevnetOptions {
    DevnetOptions {
        dir: dir.path().to_owned(),
        ..DevnetOptions::default()
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purposes; /proc/PID/stat's third field is the state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
        .unwrap_or(false)
}

#[tokio::test]
async fn devnet_describes_itself_and_stops_its_chains_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(opts(&dir)).await.expect("devnet starts");
    let desc = DevnetDescription::read(&devnet.description_path()).expect("description readable");
    assert_eq!(desc, devnet.description());
    assert_eq!(
        (desc.parent.chain_id, desc.child.chain_id),
        (31_001, 31_002)
    );
    assert!(!desc.parent.mode_mint_burn && desc.child.mode_mint_burn);
    assert_eq!(desc.operators.len(), 4);
    assert_eq!(desc.value_transfer_threshold, 3);
    assert_ne!(desc.parent.rpc_url, desc.child.rpc_url);
    assert!(
        desc.parent.rpc_url.starts_with("http://127.0.0.1:"),
        "loopback only"
    );
    let pids = [devnet.parent.anvil.pid(), devnet.child.anvil.pid()];
    assert!(pids.iter().all(|p| alive(*p)));
    drop(devnet);
    assert!(pids.iter().all(|p| !alive(*p)), "chains stopped on drop");
}

#[tokio::test]
async fn missing_anvil_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Devnet::start(DevnetOptions {
        anvil: Some(PathBuf::from("/nonexistent/anvil")),
        ..opts(&dir)
    })
    .await
    .unwrap_err();
    assert!(matches!(err, DevnetError::AnvilNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/anvil") && msg.contains("scripts/setup"),
        "{msg}"
    );
}

#[tokio::test]
async fn busy_port_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Devnet::start(DevnetOptions {
        parent_port: port,
        ..opts(&dir)
    })
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DevnetError::AnvilExited { .. }), "{msg}");
    assert!(
        msg.contains("parent chain") && msg.contains("port"),
        "{msg}"
    );
}

#[tokio::test]
async fn equal_chain_ids_and_impossible_thresholds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Devnet::start(DevnetOptions {
        child_chain_id: 31_001,
        ..opts(&dir)
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("chain ids must differ"), "{err}");
    let err = Devnet::start(DevnetOptions {
        value_transfer_threshold: 5,
        ..opts(&dir)
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("threshold 5"), "{err}");
}

#[test]
fn devnet_up_binary_runs_until_sigterm_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(dev_binary())
        .args(["devnet", "up", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let desc_path = dir.path().join("devnet.json");
    wait_until_blocking(Duration::from_secs(60), "devnet.json", || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "devnet up exited early"
        );
        desc_path.exists().then_some(())
    })
    .unwrap();
    let pids: Vec<u32> = ["parent", "child"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.path().join(format!("{n}-anvil.pid")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_until_blocking(
        Duration::from_secs(20),
        "devnet up to exit on SIGTERM",
        || child.try_wait().unwrap(),
    )
    .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "anvil processes left behind"
    );
}

#[test]
fn demo_binary_runs_four_agents_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(dev_binary())
        .env(OPERATOR_BIN_ENV, env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["demo", "--transfers", "6", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 operator keys generated inside SoftHSM"),
        "{stdout}"
    );
    assert!(stdout.contains("transfers executed: 6/6"), "{stdout}");
    assert!(
        stdout.contains("native held by both bridges (conserved)"),
        "{stdout}"
    );
    assert!(!stdout.contains("✗"), "{stdout}");
    // Nothing left running: every anvil and agent of this demo has exited.
    let pids: Vec<u32> = ["parent", "child"]
        .iter()
        .filter_map(|n| {
            std::fs::read_to_string(dir.path().join(format!("demo/chains/{n}-anvil.pid"))).ok()
        })
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| !alive(*p)), "anvil left behind");
}

#[test]
fn demo_binary_runs_on_hsm_sim_through_the_aws_kms_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(dev_binary())
        .env(OPERATOR_BIN_ENV, env!("CARGO_BIN_EXE_bridge-agent"))
        .args(["demo", "--transfers", "4", "--keystore", "hsm-sim", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("inside hsm-sim at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("transfers executed: 4/4"), "{stdout}");
    let config = std::fs::read_to_string(dir.path().join("demo/agents/op1.toml")).unwrap();
    assert!(config.contains("backend = \"aws-kms\""), "{config}");
}
