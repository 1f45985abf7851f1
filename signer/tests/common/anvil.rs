//! One anvil for a signer test: loopback, a free port chosen by anvil itself, no state written
//! outside its own temp dir (old states kept in memory only), killed and removed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const ANVIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
);

pub struct Anvil {
    child: Child,
    pub port: u16,
    // Removed after the process is gone (field order: dropped after `Drop::drop` ran).
    _dir: tempfile::TempDir,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts anvil with chain id 31337 and waits for its port.
pub fn start_anvil() -> Anvil {
    assert!(
        std::path::Path::new(ANVIL).is_file(),
        "anvil binary {ANVIL} is missing: run ./scripts/setup in the repository root"
    );
    let dir = tempfile::tempdir().expect("temp dir for anvil");
    let mut child = Command::new(ANVIL)
        .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"])
        // Without these, anvil writes every old state to ~/.foundry/anvil/tmp.
        .args(["--prune-history", "64", "--cache-path"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start anvil");
    let stdout = child.stdout.take().expect("anvil stdout");
    let mut anvil = Anvil {
        child,
        port: 0,
        _dir: dir,
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("anvil output");
        if let Some(rest) = line.split("Listening on 127.0.0.1:").nth(1) {
            anvil.port = rest.trim().parse().expect("anvil's port");
            return anvil;
        }
    }
    panic!("anvil exited without printing its port");
}
