//! One anvil process: found, started on a free loopback port, and killed when dropped.
//!
//! anvil's stdout (it logs every RPC call) goes to a log file rather than a pipe, so a reader
//! that stops reading can never block the chain; the "Listening on" line and the
//! `--config-out` JSON (dev account keys) are read back from files.

use super::DevnetError;
use alloy::signers::local::PrivateKeySigner;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(20);
/// States anvil keeps (in memory) for calls at past blocks; see `Anvil::spawn`.
const HISTORY_STATES: u32 = 256;

/// Where anvil is looked for, in order: `$BRIDGE_ANVIL`, the project's npm install
/// (`node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`, from the current directory and from
/// the source tree this binary was built from), then `anvil` on `$PATH`.
pub fn locate_anvil() -> Result<PathBuf, DevnetError> {
    let mut searched = Vec::new();
    if let Some(p) = std::env::var_os("BRIDGE_ANVIL") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        searched.push(format!("$BRIDGE_ANVIL={}", p.display()));
    }
    let rel = Path::new("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    for base in [
        std::env::current_dir().ok(),
        // The workspace root: this crate sits in devkit/.
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf),
    ]
    .into_iter()
    .flatten()
    {
        let p = base.join(rel);
        if p.is_file() {
            return Ok(p);
        }
        searched.push(p.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("anvil");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    searched.push("anvil on $PATH".into());
    Err(DevnetError::AnvilNotFound { searched })
}

/// A running anvil chain. Dropping it kills the process.
pub struct Anvil {
    name: String,
    child: Child,
    port: u16,
    log_path: PathBuf,
    dev_accounts: Vec<PrivateKeySigner>,
}

impl std::fmt::Debug for Anvil {
    // Hand-written so the dev keys are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anvil")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("log", &self.log_path)
            .finish_non_exhaustive()
    }
}

/// How to start one chain.
#[derive(Debug, Clone)]
pub struct AnvilOptions {
    pub name: String,
    pub chain_id: u64,
    /// 0 picks a free port.
    pub port: u16,
    /// Seconds between blocks; `None` mines on every transaction.
    pub block_time: Option<u64>,
    pub accounts: u32,
}

impl Anvil {
    pub fn spawn(anvil: &Path, dir: &Path, opts: &AnvilOptions) -> Result<Self, DevnetError> {
        fs::create_dir_all(dir).map_err(|e| DevnetError::Io(dir.to_owned(), e))?;
        let log_path = dir.join(format!("{}-anvil.log", opts.name));
        let config_path = dir.join(format!("{}-anvil-accounts.json", opts.name));
        let _ = fs::remove_file(&config_path);
        let log = fs::File::create(&log_path).map_err(|e| DevnetError::Io(log_path.clone(), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| DevnetError::Io(log_path.clone(), e))?;
        let mut cmd = Command::new(anvil);
        cmd.arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(opts.port.to_string())
            .arg("--chain-id")
            .arg(opts.chain_id.to_string())
            .arg("--accounts")
            .arg(opts.accounts.to_string())
            .arg("--config-out")
            .arg(&config_path)
            // By default anvil writes every old block's state to disk (into ~/.foundry/anvil/tmp,
            // which a killed anvil never cleans: it reached 63 GB here), and the writes grow
            // with the state, so a long run slowed down ~3× per 1,000 transfers. Only the
            // latest HISTORY_STATES states are kept, in memory; nothing here reads older state
            // (the agent replays a reverted vote at its block right after the receipt).
            .arg("--prune-history")
            .arg(HISTORY_STATES.to_string())
            // Should anything still spill, it goes with the devnet folder.
            .arg("--cache-path")
            .arg(dir.join(format!("{}-anvil-states", opts.name)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(bt) = opts.block_time {
            cmd.arg("--block-time").arg(bt.to_string());
        }
        let child = cmd.spawn().map_err(|source| DevnetError::AnvilSpawn {
            path: anvil.to_owned(),
            source,
        })?;
        // A pid file lets scripts clean up a chain whose parent was killed with SIGKILL.
        let pid_path = dir.join(format!("{}-anvil.pid", opts.name));
        fs::write(&pid_path, child.id().to_string()).map_err(|e| DevnetError::Io(pid_path, e))?;
        let mut this = Anvil {
            name: opts.name.clone(),
            child,
            port: 0,
            log_path,
            dev_accounts: Vec::new(),
        };
        this.port = this.wait_listening()?;
        this.dev_accounts = read_dev_accounts(&config_path)?;
        Ok(this)
    }

    fn wait_listening(&mut self) -> Result<u16, DevnetError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = fs::read_to_string(&self.log_path).unwrap_or_default();
            if let Some(port) = log.lines().find_map(parse_listening_line) {
                return Ok(port);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DevnetError::AnvilExited {
                    name: self.name.clone(),
                    status: status.to_string(),
                    log_tail: tail(&log, 15),
                });
            }
            if Instant::now() > deadline {
                return Err(DevnetError::AnvilStartTimeout {
                    name: self.name.clone(),
                    log: self.log_path.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// anvil's funded dev accounts (its public test mnemonic); index 0 deploys.
    pub fn dev_accounts(&self) -> &[PrivateKeySigner] {
        &self.dev_accounts
    }
    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), DevnetError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(DevnetError::AnvilExited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: tail(&fs::read_to_string(&self.log_path).unwrap_or_default(), 15),
            }),
            Err(e) => Err(DevnetError::Io(self.log_path.clone(), e)),
        }
    }

    /// The process id, for tests that must kill a chain from outside.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_listening_line(line: &str) -> Option<u16> {
    let addr = line.trim().strip_prefix("Listening on ")?;
    addr.rsplit(':').next()?.parse().ok()
}

fn read_dev_accounts(path: &Path) -> Result<Vec<PrivateKeySigner>, DevnetError> {
    #[derive(serde::Deserialize)]
    struct ConfigOut {
        private_keys: Vec<String>,
    }
    // anvil writes the file at start-up; it is there once "Listening on" was printed.
    let text = fs::read_to_string(path).map_err(|e| DevnetError::Io(path.to_owned(), e))?;
    let parsed: ConfigOut = serde_json::from_str(&text).map_err(|e| DevnetError::AnvilOutput {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let keys = parsed
        .private_keys
        .iter()
        .map(|k| k.parse::<PrivateKeySigner>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DevnetError::AnvilOutput {
            path: path.to_owned(),
            reason: format!("bad dev key: {e}"),
        });
    // The file holds private keys of well-known test accounts only; remove it anyway.
    let _ = fs::remove_file(path);
    keys
}

pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(
            parse_listening_line("Listening on 127.0.0.1:46573"),
            Some(46573)
        );
        assert_eq!(
            parse_listening_line("  Listening on 127.0.0.1:8545  "),
            Some(8545)
        );
        assert_eq!(parse_listening_line("Listening nowhere"), None);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
