//! The demo (`./scripts/demo`): a local bridge run by four operators, each its own
//! `bridge-agent run` process signing with its own key in SoftHSM (or in hsm-sim when SoftHSM
//! is not installed, through the aws-kms backend), threshold 3.
//!
//! ```text
//! SoftHSM token (demo dir), or hsm-sim without SoftHSM ─ keys generate ×4 ─> operator addresses
//! devnet (2 anvil chains, bridges, tokens) with those 4 operators, t = 3
//! 4 × `bridge-agent run --config opN.toml`  (logs in <dir>/agents/opN.log)
//! N transfers, native / ERC-20 / ERC-721, alternating directions ─> wait for HandleValueTransfer
//! summary: done, latency p50/p99, balances reconciled on both chains ─> stop everything
//! ```

pub mod agents;
mod load;
pub mod traffic;

pub use load::Pace;

use crate::devnet::{Devnet, DevnetError, DevnetOptions};
use std::path::PathBuf;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Folder for chains, keys, agent configs and logs (wiped at start).
    pub dir: PathBuf,
    /// Transfers to send, alternating directions.
    pub transfers: usize,
    /// Leave the network and agents up after the summary, until Ctrl-C.
    pub keep: bool,
    /// Where the operator keys live.
    pub keystore: agents::KeystoreChoice,
    /// Burst (all transfers at once) or one at a time (unloaded latency, benchmark P3).
    pub pace: Pace,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error("{0}")]
    Keys(String),
    #[error("{what}: {reason}")]
    Step { what: String, reason: String },
    #[error("{0} transfer(s) did not execute within {1:?}; see the agent logs in {2}")]
    Timeout(usize, Duration, String),
    #[error("balances do not reconcile: {0}")]
    Reconcile(String),
}

pub(crate) fn step(what: &str, reason: impl ToString) -> DemoError {
    DemoError::Step {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// What a demo folder holds; a folder with anything else in it is not wiped.
const DEMO_ENTRIES: [&str; 3] = ["softhsm", "chains", "agents"];

/// Empties the demo folder of an earlier run, refusing to touch a folder that holds other files.
fn clear_demo_dir(dir: &std::path::Path) -> Result<(), DemoError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !DEMO_ENTRIES.iter().any(|e| name == *e) {
                return Err(step(
                    "prepare the demo folder",
                    format!(
                        "{} holds {:?}, which the demo did not make; pick another --dir",
                        dir.display(),
                        name
                    ),
                ));
            }
        }
        for e in DEMO_ENTRIES {
            let _ = std::fs::remove_dir_all(dir.join(e));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| step("create the demo folder", e))
}

/// Runs the demo, printing progress and a summary.
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    clear_demo_dir(&opts.dir)?;
    println!("== bridge-agent demo: 4 operators, threshold 3 ==");
    let (store, keys) = agents::provision_keys(&opts.dir, opts.keystore).await?;
    println!(
        "[1/5] {} operator keys generated {}:",
        keys.len(),
        store.describe()
    );
    for (i, k) in keys.iter().enumerate() {
        println!("      operator-{} {k}", i + 1);
    }
    let devnet = Devnet::start(DevnetOptions {
        dir: opts.dir.join("chains"),
        operators: keys.clone(),
        value_transfer_threshold: 3,
        configuration_threshold: 3,
        ..DevnetOptions::default()
    })
    .await?;
    println!(
        "[2/5] devnet up: parent chain {} at {}, child chain {} at {}",
        devnet.parent.chain_id,
        devnet.parent.rpc_url(),
        devnet.child.chain_id,
        devnet.child.rpc_url()
    );
    let running = agents::start(&opts.dir, &devnet, keys.len(), &store)?;
    println!(
        "[3/5] 4 agents running (metrics: {}); logs in {}",
        running.metrics_urls().join(", "),
        opts.dir.join("agents").display()
    );
    let outcome = load::run(&devnet, opts.transfers, opts.pace, &running).await;
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            running.stop();
            return Err(e);
        }
    };
    report.print();
    if opts.keep {
        println!("\n--keep: the network and the agents stay up; Ctrl-C stops them.");
        println!(
            "      devnet description: {}",
            devnet.description_path().display()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("[5/5] stopping the agents and the chains");
    let clean = running.stop();
    if !clean {
        return Err(step(
            "stop the agents",
            "an agent did not exit cleanly; see its log",
        ));
    }
    Ok(())
}
