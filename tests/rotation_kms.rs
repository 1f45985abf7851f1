//! Key rotation with the aws-kms backend against moto (a real AWS-KMS-protocol server from the
//! pinned venv, started through `signer/tests/support/moto_kms_server.py`, which corrects moto's
//! `Sign(MessageType=DIGEST)`): a one-operator bridge (t = 1) whose running agent switches to a
//! KMS key that `keys rotate` creates, keeps carrying transfers with it, and the old KMS key is
//! scheduled for deletion.

#[path = "support/rotation.rs"]
mod support;

use alloy::primitives::{Address, U256, keccak256};
use alloy::providers::Provider;
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv");
const LAUNCHER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/signer/tests/support/moto_kms_server.py"
);

/// moto on 127.0.0.1, stopped on drop (and by itself when our stdin pipe closes, or after
/// 10 minutes).
struct Moto {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Moto {
    fn start() -> Self {
        let python = format!("{VENV}/bin/python");
        assert!(
            std::path::Path::new(&python).is_file(),
            "{python} missing: run ./scripts/setup (it installs moto into .venv)"
        );
        // Port 0: moto binds a free port and prints it (" * Running on http://127.0.0.1:PORT").
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&python)
            .args([LAUNCHER, "0", "600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut moto = Moto {
            child,
            _stdin: stdin,
            port: 0,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = moto.child.try_wait() {
                break;
            }
            if moto.port == 0 {
                moto.port = moto
                    .log()
                    .lines()
                    .find_map(|l| {
                        l.split("Running on http://127.0.0.1:")
                            .nth(1)?
                            .trim()
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0);
            }
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, moto.port));
            if moto.port != 0
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not start on 127.0.0.1; its log:\n{}", moto.log());
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        let mut s = String::new();
        let _ = self.log.reopen().and_then(|mut f| f.read_to_string(&mut s));
        s
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn transfer_lands(
    from: &Side,
    to: &Side,
    user: &alloy::signers::local::PrivateKeySigner,
    tag: &str,
    agent: &Agent,
) {
    let recipient = Address::from_word(keccak256(tag));
    request_native(from, user, recipient, U256::from(4242)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while to.reader().get_balance(recipient).await.unwrap() != U256::from(4242) {
        assert!(
            Instant::now() < deadline,
            "{tag} not delivered:\n{}",
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_kms_rotation_switches_the_running_agent() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::Kms {
        endpoint: moto.endpoint(),
    };
    let old = keys.generate("operator-1");
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: vec![old],
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let config = write_config(dir.path(), "op1", &d, &keys.signer_section("operator-1"));
    let agent = Agent::start(&config, &keys, dir.path().join("op1.log"));
    let users = d.users();
    transfer_lands(&d.parent, &d.child, &users[0], "before p→c", &agent).await;

    let out = cli(
        &keys,
        &[
            "keys",
            "rotate",
            "--config",
            config.to_str().unwrap(),
            "--destroy-old",
            "--yes",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}\nmoto:\n{}",
        text(&out),
        moto.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("alias/operator-1-r1"), "{stdout}");
    assert!(stdout.contains("scheduled for deletion"), "{stdout}");
    let new: Address = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("[1/7] key")
                .and_then(|r| r.rsplit(' ').next())
        })
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no new address in:\n{stdout}"));

    // The agent switched without a restart: with t = 1 only its new key can execute these.
    transfer_lands(&d.parent, &d.child, &users[0], "after p→c", &agent).await;
    transfer_lands(&d.child, &d.parent, &users[1], "after c→p", &agent).await;
    for side in [&d.parent, &d.child] {
        let b = Bridge::new(side.bridge, side.reader());
        assert!(b.operators(new).call().await.unwrap());
        assert!(!b.operators(old).call().await.unwrap());
    }
    let log = agent.log_text();
    assert_eq!(log.matches("key switched").count(), 2, "{log}");

    // The old KMS key can no longer be used.
    let show = cli(
        &keys,
        &[
            "keys",
            "show",
            "--backend",
            "aws-kms",
            "--region",
            "us-east-1",
            "--endpoint",
            &moto.endpoint(),
            "--key-id",
            "alias/operator-1",
            "--json",
        ],
        &[],
    );
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("PendingDeletion"), "{}", text(&show));
    assert!(agent.stop().success());
}
