//! Running the real `bridge-agent run` binary in tests: one operator key in a fresh SoftHSM
//! token, a config for the devnet, the process with its log, and waiting for executions.

use alloy::primitives::{Address, Bytes, U256};
use bridge_agent::contracts::Bridge;
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};
pub use bridge_devkit::softhsm::{MODULE, SoftHsmDir};
use bridge_signer::Pin;
use bridge_signer::pkcs11::Pkcs11Token;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "agent-run";
pub const PIN: &str = "agent-run-pin-2718";

/// A SoftHSM token store in `dir` with one operator key; returns its address.
pub async fn provision_key(dir: &Path) -> Address {
    assert!(
        Path::new(MODULE).is_file(),
        "{MODULE} missing: run ./scripts/setup"
    );
    let hsm = SoftHsmDir::create(dir).unwrap();
    // SAFETY: this test binary runs one test, which calls this before anything loads SoftHSM.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &hsm.conf) };
    hsm.init_token(TOKEN, PIN, "so-2718").unwrap();
    let token = Pkcs11Token::open(MODULE, TOKEN, Pin::new(PIN))
        .await
        .unwrap();
    token.generate_key("operator", None).await.unwrap().address
}

/// A devnet whose only operator (threshold 1) is a fresh SoftHSM key under `dir/hsm`.
pub async fn one_operator_devnet(dir: &Path) -> Devnet {
    let operator = provision_key(&dir.join("hsm")).await;
    Devnet::start(DevnetOptions {
        dir: dir.join("chains"),
        operators: vec![operator],
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap()
}

/// The endpoints a config gives the agent for one chain.
pub struct Endpoints {
    pub rpc: Vec<String>,
    /// None: the agent polls for new heads.
    pub ws: Option<String>,
}

impl Endpoints {
    /// The chain's own HTTP and WebSocket endpoints.
    pub fn of(side: &Side) -> Self {
        Self {
            rpc: vec![side.rpc_url()],
            ws: Some(side.anvil.ws_url()),
        }
    }
}

/// An agent config for the devnet, with each chain's endpoints as given.
pub fn write_config(dir: &Path, d: &Devnet, parent: Endpoints, child: Endpoints) -> PathBuf {
    let chain = |name: &str, s: &Side, e: &Endpoints| {
        let rpc: Vec<String> = e.rpc.iter().map(|u| format!("\"{u}\"")).collect();
        let ws =
            e.ws.as_ref()
                .map(|u| format!("ws = \"{u}\"\n"))
                .unwrap_or_default();
        format!(
            "[{name}]\nchain_id = {}\nrpc = [{}]\n{ws}bridge = \"{}\"\ndeploy_block = {}\n\
             confirmations = 0\npoll_interval_ms = 100\nrpc_timeout_ms = 3000\nmin_balance = \"1\"\n",
            s.chain_id,
            rpc.join(", "),
            s.bridge,
            s.bridge_deploy_block
        )
    };
    let text = format!(
        "[agent]\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info\"\n\n\
         [recovery]\ninterval_secs = 2\n\n[signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\n\
         token_label = \"{TOKEN}\"\nkey_label = \"operator\"\npin = {{ env = \"BRIDGE_PKCS11_PIN\" }}\n\n{}\n{}",
        dir.join("agent").display(),
        chain("parent", &d.parent, &parent),
        chain("child", &d.child, &child),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `[agent] data_dir` of a config written here.
fn data_dir(config: &Path) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("data_dir = "))
        .expect("data_dir line");
    PathBuf::from(line.trim_start_matches("data_dir = ").trim_matches('"'))
}

/// Where the agent started on `config` serves `/metrics`, `/healthz`, `/readyz`: its `[http]
/// listen` is port 0, and the agent publishes the address it got in `<data_dir>/http.addr`
/// (removed by [`Agent::start`], so an earlier run's is never read). Waits, bounded.
pub async fn http_address(config: &Path) -> std::net::SocketAddr {
    let path = data_dir(config).join("http.addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(addr) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "the agent published no address in {} within 60 s",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    pub fn start(config: &Path, log: PathBuf) -> Self {
        let _ = std::fs::remove_file(data_dir(config).join("http.addr"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("BRIDGE_PKCS11_PIN", PIN)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// The process id (to signal it: SIGSTOP, SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file (still there after [`Agent::stop`]).
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status within a bound.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "agent ignored SIGTERM:\n{}",
                self.log()
            );
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

/// Waits until the destination bridge has executed `nonce`.
pub async fn executed(dest: &Side, nonce: u64, agent: &Agent) {
    let b = Bridge::new(dest.bridge, dest.reader());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !b.closedValueTransferVotes(nonce).call().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "nonce {nonce} not executed on chain {}:\n{}",
            dest.chain_id,
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn send(
    side: &Side,
    user: &alloy::signers::local::PrivateKeySigner,
    to: Address,
    data: Bytes,
    value: U256,
) {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_to(to)
        .with_input(data)
        .with_value(value);
    let p = side.provider_with(user.clone());
    let r = p
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

pub fn enc(c: impl alloy::sol_types::SolCall) -> Bytes {
    c.abi_encode().into()
}
