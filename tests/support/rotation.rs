//! Fixtures of the rotation and admin tests: a SoftHSM token store per test with operator keys
//! made by `bridge-agent keys generate`, agent configs, `bridge-agent run` processes, native
//! transfers, and `bridge-agent keys rotate` runs — all through the real binary.
#![allow(dead_code)]

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, Side};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use bridge_devkit::softhsm::MODULE;
pub const TOKEN: &str = "rotation-test";
pub const PIN: &str = "rotation-test-pin-5813";
pub const BIN: &str = env!("CARGO_BIN_EXE_bridge-agent");

/// Where keys live for one test: a SoftHSM token (own directory), or a KMS endpoint.
#[derive(Clone)]
pub enum Keys {
    SoftHsm { conf: PathBuf },
    Kms { endpoint: String },
}

impl Keys {
    /// A fresh SoftHSM token store in `dir`.
    pub fn softhsm(dir: &Path) -> Self {
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} missing: run ./scripts/setup"
        );
        // Initialised through PKCS#11 in this process: no PIN on a command line.
        let hsm = bridge_devkit::softhsm::SoftHsmDir::create(dir).unwrap();
        hsm.init_token(TOKEN, PIN, "so-5813").unwrap();
        let conf = hsm.conf;
        Keys::SoftHsm { conf }
    }

    /// The environment a child process needs to reach the keys (never the machine's own).
    pub fn env(&self, cmd: &mut Command) {
        match self {
            Keys::SoftHsm { conf } => {
                cmd.env("SOFTHSM2_CONF", conf).env("BRIDGE_PKCS11_PIN", PIN);
            }
            Keys::Kms { .. } => {
                cmd.env("AWS_ACCESS_KEY_ID", "AKIAROTATIONTEST0001")
                    .env("AWS_SECRET_ACCESS_KEY", "rotation-test-not-a-secret")
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_CONFIG_FILE", "/nonexistent")
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
            }
        }
    }

    fn backend_flags(&self) -> Vec<String> {
        match self {
            Keys::SoftHsm { .. } => vec![
                "--backend".into(),
                "pkcs11".into(),
                "--module".into(),
                MODULE.into(),
                "--token-label".into(),
                TOKEN.into(),
            ],
            Keys::Kms { endpoint } => vec![
                "--backend".into(),
                "aws-kms".into(),
                "--region".into(),
                "us-east-1".into(),
                "--endpoint".into(),
                endpoint.clone(),
            ],
        }
    }

    /// `bridge-agent keys generate --label NAME`; the new key's address.
    pub fn generate(&self, label: &str) -> Address {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd);
        let out = cmd
            .args(["keys", "generate"])
            .args(self.backend_flags())
            .args(["--label", label, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keys generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["address"].as_str().unwrap().parse().unwrap()
    }

    /// The `[signer]` table for key `label`.
    pub fn signer_section(&self, label: &str) -> String {
        match self {
            Keys::SoftHsm { .. } => format!(
                "[signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\n\
                 key_label = \"{label}\"\npin = {{ env = \"BRIDGE_PKCS11_PIN\" }}\n"
            ),
            Keys::Kms { endpoint } => format!(
                "[signer]\nbackend = \"aws-kms\"\nkey_id = \"alias/{label}\"\nregion = \"us-east-1\"\n\
                 endpoint = \"{endpoint}\"\ncall_timeout_ms = 5000\n"
            ),
        }
    }
}

/// Writes `<dir>/<name>.toml` for an operator signing with `signer_section`.
pub fn write_config(dir: &Path, name: &str, d: &Devnet, signer_section: &str) -> PathBuf {
    let chain = |table: &str, s: &Side| {
        format!(
            "[{table}]\nchain_id = {}\nrpc = [\"{}\"]\nws = \"{}\"\nbridge = \"{}\"\ndeploy_block = {}\n\
             confirmations = 0\npoll_interval_ms = 100\nrpc_timeout_ms = 3000\nmin_balance = \"1\"\n\n\
             [{table}.fees]\nbump_after_secs = 10\n",
            s.chain_id,
            s.rpc_url(),
            s.anvil.ws_url(),
            s.bridge,
            s.bridge_deploy_block
        )
    };
    let text = format!(
        "[agent]\ndata_dir = \"{}\"\nname = \"{name}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [log]\nlevel = \"info\"\n\n[recovery]\ninterval_secs = 2\n\n{signer_section}\n{}\n{}",
        dir.join(name).display(),
        chain("parent", &d.parent),
        chain("child", &d.child),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One `bridge-agent run` process, killed on drop.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
}

impl Agent {
    /// Starts the agent and waits for "agent running" (one at a time: SoftHSM logins racing
    /// across processes can fail).
    pub fn start(config: &Path, keys: &Keys, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(BIN);
        keys.env(&mut cmd);
        let child = cmd
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut agent = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !agent.log_text().contains("agent running") {
            if let Ok(Some(s)) = agent.child.try_wait() {
                panic!("agent exited ({s}):\n{}", agent.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "agent did not start:\n{}",
                agent.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (bounded).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "agent ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bridge-agent <args>` with the keys' environment and `extra` env vars.
pub fn cli(keys: &Keys, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    keys.env(&mut cmd);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

/// Runs the development binary `bridge-dev <args>` with the keys' environment.
pub fn dev_cli(keys: &Keys, args: &[&str]) -> Output {
    let mut cmd = Command::new(bridge_devkit::bins::dev_binary());
    keys.env(&mut cmd);
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends a native transfer request of `value` wei to `to` on `side`'s bridge.
pub async fn request_native(
    side: &Side,
    user: &alloy::signers::local::PrivateKeySigner,
    to: Address,
    value: U256,
) {
    use alloy::network::TransactionBuilder;
    let data: Bytes = Bridge::requestKLAYTransferCall {
        to,
        value,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into();
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_to(side.bridge)
        .with_input(data)
        .with_value(value);
    let r = side
        .provider_with(user.clone())
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

pub async fn is_operator(side: &Side, who: Address) -> bool {
    Bridge::new(side.bridge, side.reader())
        .operators(who)
        .call()
        .await
        .unwrap()
}

pub async fn nonce_of(side: &Side, who: Address) -> u64 {
    side.reader().get_transaction_count(who).await.unwrap()
}
