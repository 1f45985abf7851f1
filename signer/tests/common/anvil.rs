//! One anvil for a signer test, through the workspace's launcher (`bridge_devkit::devnet::Anvil`:
//! loopback, free port, history pruned, state and log in its own temp dir, killed on drop).

use bridge_devkit::devnet::{AnvilOptions, locate_anvil};

pub struct Anvil {
    pub port: u16,
    // Field order: the process is killed before its folder is removed.
    _anvil: bridge_devkit::devnet::Anvil,
    _dir: tempfile::TempDir,
}

/// Starts anvil with chain id 31337 and waits for its port.
pub fn start_anvil() -> Anvil {
    let bin = locate_anvil().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir for anvil");
    let opts = AnvilOptions {
        name: "signer-test".into(),
        chain_id: 31337,
        port: 0,
        block_time: None,
        accounts: 2,
    };
    let anvil = bridge_devkit::devnet::Anvil::spawn(&bin, dir.path(), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    Anvil {
        port: anvil.port(),
        _anvil: anvil,
        _dir: dir,
    }
}
