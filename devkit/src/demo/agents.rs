//! The demo's operators: keys generated inside a SoftHSM token through `bridge-agent keys
//! generate`, one config file each, and one `bridge-agent run` process each.

use super::{DemoError, step};
use crate::devnet::{Devnet, Side};
use crate::softhsm::{MODULE, SoftHsmDir};
use alloy::primitives::Address;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bridge-demo";
/// The throw-away demo token's PIN. A real operator keeps the PIN in a file or a secret store.
const DEMO_PIN: &str = "demo-only-pin-4321";
const OPERATORS: usize = 4;

/// Where the demo's operator keys live.
pub enum Keystore {
    /// A SoftHSM token in the demo folder (PKCS#11 backend).
    SoftHsm,
    /// hsm-sim in this process, speaking the AWS KMS protocol (aws-kms backend); the flag
    /// says whether it was asked for (rather than chosen because SoftHSM is missing).
    HsmSim(hsm_sim::HsmSim, bool),
}

/// Which key store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeystoreChoice {
    /// SoftHSM when installed, else hsm-sim.
    Auto,
    Softhsm,
    HsmSim,
}

impl Keystore {
    pub fn describe(&self) -> String {
        match self {
            Keystore::SoftHsm => "inside SoftHSM (PKCS#11, non-extractable)".into(),
            Keystore::HsmSim(sim, asked) => format!(
                "inside hsm-sim at {} (AWS KMS protocol; {})",
                sim.endpoint(),
                if *asked {
                    "--keystore hsm-sim"
                } else {
                    "SoftHSM is not installed"
                }
            ),
        }
    }

    /// Environment every key-using child gets: the demo's token store and PIN, or test
    /// credentials for the KMS simulator (which accepts any).
    fn env(&self, dir: &Path, cmd: &mut Command) {
        match self {
            Keystore::SoftHsm => {
                cmd.env("SOFTHSM2_CONF", softhsm_conf(dir))
                    .env("BRIDGE_PKCS11_PIN", DEMO_PIN);
            }
            Keystore::HsmSim(..) => {
                cmd.env("AWS_ACCESS_KEY_ID", "demo-hsm-sim")
                    .env("AWS_SECRET_ACCESS_KEY", "demo-hsm-sim-not-a-secret")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_CONFIG_FILE", "/nonexistent")
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
            }
        }
    }

    /// The `[signer]` table for operator `i`.
    fn signer_section(&self, i: usize) -> String {
        match self {
            Keystore::SoftHsm => format!(
                "[signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\nkey_label = \"operator-{i}\"\n\
                 pin = {{ env = \"BRIDGE_PKCS11_PIN\" }}\n"
            ),
            Keystore::HsmSim(sim, _) => format!(
                "[signer]\nbackend = \"aws-kms\"\nkey_id = \"alias/operator-{i}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
                sim.endpoint()
            ),
        }
    }
}

/// The SoftHSM config of the demo in `dir`.
fn softhsm_conf(dir: &Path) -> PathBuf {
    dir.join("softhsm").join("softhsm2.conf")
}

/// Creates the demo's key store and four keys in it; returns it and their addresses.
pub async fn provision_keys(
    dir: &Path,
    choice: KeystoreChoice,
) -> Result<(Keystore, Vec<Address>), DemoError> {
    let softhsm = Path::new(MODULE).is_file();
    let store = match choice {
        KeystoreChoice::Softhsm if !softhsm => {
            return Err(DemoError::Keys(format!(
                "SoftHSM is not installed ({MODULE} missing): run ./scripts/setup, or apt-get install softhsm2"
            )));
        }
        KeystoreChoice::Softhsm => Keystore::SoftHsm,
        KeystoreChoice::Auto if softhsm => Keystore::SoftHsm,
        KeystoreChoice::Auto | KeystoreChoice::HsmSim => Keystore::HsmSim(
            hsm_sim::HsmSim::start(hsm_sim::Config::default())
                .await
                .map_err(|e| DemoError::Keys(format!("start hsm-sim: {e}")))?,
            choice == KeystoreChoice::HsmSim,
        ),
    };
    let keys = match &store {
        Keystore::SoftHsm => softhsm_keys(dir, &store)?,
        Keystore::HsmSim(sim, _) => generate_keys(
            dir,
            &store,
            &[
                "--backend",
                "aws-kms",
                "--region",
                "us-east-1",
                "--endpoint",
                &sim.endpoint(),
            ],
        )?,
    };
    Ok((store, keys))
}

fn softhsm_keys(dir: &Path, store: &Keystore) -> Result<Vec<Address>, DemoError> {
    let hsm = SoftHsmDir::create(&dir.join("softhsm"))
        .map_err(|e| step("create the SoftHSM token folder", e))?;
    hsm.init_token(TOKEN, DEMO_PIN, "demo-so-pin")
        .map_err(|e| DemoError::Keys(e.to_string()))?;
    generate_keys(
        dir,
        store,
        &[
            "--backend",
            "pkcs11",
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
        ],
    )
}

/// `bridge-agent keys generate` once per operator, with the backend flags given.
fn generate_keys(
    dir: &Path,
    store: &Keystore,
    backend: &[&str],
) -> Result<Vec<Address>, DemoError> {
    let exe = crate::bins::operator_binary().map_err(|e| step("find the operator binary", e))?;
    let mut keys = Vec::new();
    for i in 1..=OPERATORS {
        let mut generate = Command::new(&exe);
        store.env(dir, &mut generate);
        let out = generate
            .args(["keys", "generate"])
            .args(backend)
            .args(["--label", &format!("operator-{i}"), "--json"])
            .output()
            .map_err(|e| step("run keys generate", e))?;
        if !out.status.success() {
            return Err(DemoError::Keys(format!(
                "keys generate operator-{i}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| step("parse keys generate output", e))?;
        let address = json["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| step("parse keys generate output", "no address"))?;
        keys.push(address);
    }
    Ok(keys)
}

fn chain_section(name: &str, s: &Side) -> String {
    format!(
        "[{name}]\nchain_id = {}\nrpc = [\"{}\"]\nws = \"{}\"\nbridge = \"{}\"\ndeploy_block = {}\n\
         confirmations = 0\npoll_interval_ms = 100\nrpc_timeout_ms = 3000\nmin_balance = \"1\"\n\n\
         [{name}.fees]\nbump_after_secs = 10\n",
        s.chain_id,
        s.rpc_url(),
        s.anvil.ws_url(),
        s.bridge,
        s.bridge_deploy_block
    )
}

pub struct Running {
    agents: Vec<(Child, PathBuf)>,
    metrics: Vec<String>,
}

impl Running {
    pub fn metrics_urls(&self) -> Vec<String> {
        self.metrics.clone()
    }

    /// The last lines of every agent's log, for error reports.
    pub fn log_tails(&self) -> String {
        self.agents
            .iter()
            .map(|(_, log)| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                format!(
                    "--- {} ---\n{}",
                    log.display(),
                    crate::devnet::tail(&text, 12)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM to every agent, then waits; true when all exited cleanly.
    pub fn stop(mut self) -> bool {
        for (child, _) in &self.agents {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut clean = true;
        for (child, log) in &mut self.agents {
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        if !s.success() {
                            eprintln!("agent {} exited with {s}", log.display());
                            clean = false;
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        clean = false;
                        break;
                    }
                }
            }
        }
        self.agents.clear();
        clean
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (child, _) in &mut self.agents {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes one config per operator and starts `bridge-agent run` for each.
pub fn start(
    dir: &Path,
    devnet: &Devnet,
    n: usize,
    store: &Keystore,
) -> Result<Running, DemoError> {
    let agents_dir = dir.join("agents");
    std::fs::create_dir_all(&agents_dir).map_err(|e| step("create the agents folder", e))?;
    let exe = crate::bins::operator_binary().map_err(|e| step("find the operator binary", e))?;
    let mut running = Running {
        agents: Vec::new(),
        metrics: Vec::new(),
    };
    for i in 1..=n {
        let data_dir = agents_dir.join(format!("op{i}"));
        let config = format!(
            "# Demo operator {i}: written by `bridge-dev demo`.\n[agent]\ndata_dir = \"{}\"\nname = \"demo-op{i}\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info\"\n\n[recovery]\ninterval_secs = 5\n\n\
             {}\n{}\n{}",
            data_dir.display(),
            store.signer_section(i),
            chain_section("parent", &devnet.parent),
            chain_section("child", &devnet.child),
        );
        let config_path = agents_dir.join(format!("op{i}.toml"));
        std::fs::write(&config_path, config).map_err(|e| step("write an agent config", e))?;
        let log = agents_dir.join(format!("op{i}.log"));
        let file = std::fs::File::create(&log).map_err(|e| step("create an agent log", e))?;
        let mut cmd = Command::new(&exe);
        store.env(dir, &mut cmd);
        let child = cmd
            .args(["run", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| step("start an agent", e))?;
        running.agents.push((child, log.clone()));
        // One at a time: SoftHSM's file-backed token answers a login racing another
        // process's login with CKR_GENERAL_ERROR.
        wait_started(running.agents.last_mut().expect("just pushed"), &log)?;
        // Port 0 in the config: a running agent has published the address it got.
        let addr = std::fs::read_to_string(data_dir.join("http.addr"))
            .map_err(|e| step("read an agent's published http address", e))?;
        running
            .metrics
            .push(format!("http://{}/metrics", addr.trim()));
    }
    Ok(running)
}

/// Waits until an agent logs that it runs; fails with its log if it exits first.
fn wait_started(agent: &mut (Child, PathBuf), log: &Path) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("agent running") {
            return Ok(());
        }
        if let Ok(Some(status)) = agent.0.try_wait() {
            return Err(step(
                "start an agent",
                format!(
                    "{} exited ({status}):\n{}",
                    log.display(),
                    crate::devnet::tail(&text, 12)
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err(step(
                "start an agent",
                format!("no \"agent running\" in {} after 60 s", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
