//! `bridge-dev devnet …`: a local two-chain bridge on anvil.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bridge_devkit::devnet::{Devnet, DevnetOptions};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DevnetCommand {
    /// Start two anvil chains, deploy and wire the bridges, write the description JSON, and
    /// stay up until Ctrl-C (or SIGTERM), then stop the chains.
    ///
    /// Example: bridge-dev devnet up --operator 0xA… --operator 0xB… --operator 0xC… --threshold 2
    Up {
        /// Folder for chain logs and `devnet.json` (chain ids, URLs, addresses).
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        #[arg(long, default_value_t = 31_001)]
        parent_chain_id: u64,
        #[arg(long, default_value_t = 31_002)]
        child_chain_id: u64,
        /// Parent chain RPC port on 127.0.0.1; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        parent_port: u16,
        /// Child chain RPC port on 127.0.0.1; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        child_port: u16,
        /// Seconds between blocks; without it every transaction is mined at once.
        #[arg(long)]
        block_time: Option<u64>,
        /// Operator address to register on both bridges (repeat). Without any, anvil dev
        /// accounts 1..=4 are the operators (throw-away keys, for experiments only).
        #[arg(long = "operator", value_name = "ADDRESS")]
        operators: Vec<alloy::primitives::Address>,
        /// Votes needed to execute a transfer.
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        /// Votes needed for a configuration change.
        #[arg(long, default_value_t = 3)]
        config_threshold: u8,
    },
}

pub async fn run(cmd: DevnetCommand) -> anyhow::Result<()> {
    match cmd {
        DevnetCommand::Up {
            dir,
            parent_chain_id,
            child_chain_id,
            parent_port,
            child_port,
            block_time,
            operators,
            threshold,
            config_threshold,
        } => {
            let opts = DevnetOptions {
                dir,
                parent_chain_id,
                child_chain_id,
                parent_port,
                child_port,
                block_time,
                operators,
                value_transfer_threshold: threshold,
                configuration_threshold: config_threshold,
                ..DevnetOptions::default()
            };
            up(opts).await
        }
    }
}

async fn up(opts: DevnetOptions) -> anyhow::Result<()> {
    let mut devnet = Devnet::start(opts)
        .await
        .context("devnet failed to start")?;
    let d = devnet.description();
    println!(
        "parent chain {} at {} (bridge {})",
        d.parent.chain_id, d.parent.rpc_url, d.parent.bridge
    );
    println!(
        "child  chain {} at {} (bridge {})",
        d.child.chain_id, d.child.rpc_url, d.child.bridge
    );
    println!(
        "operators: {:?}, threshold {}",
        d.operators, d.value_transfer_threshold
    );
    println!("description: {}", devnet.description_path().display());
    println!("devnet is up; Ctrl-C stops it");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => devnet.check_alive().context("a devnet chain stopped")?,
        }
    }
    println!("stopping the devnet");
    Ok(())
}
