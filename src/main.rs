//! The `bridge-agent` command line.

use anyhow::Context;
use bridge_agent::devnet::{Devnet, DevnetOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// High-availability value-transfer bridge agent for Kaia-compatible service-chain bridges.
///
/// Each operator runs one agent; a transfer executes once t of N operators voted the same
/// handle transaction. Start with `bridge-agent devnet up` for a local two-chain bridge, or
/// `bridge-agent demo` to watch one transfer each way.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local two-chain devnet (anvil) with the bridge pair and test tokens deployed.
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Interim demo: devnet up, one transfer each way, voted by a throw-away stand-in operator.
    Demo {
        /// Folder for chain logs and the devnet description.
        #[arg(long, default_value = ".devnet/demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DevnetCommand {
    /// Start two anvil chains, deploy and wire the bridges, write the description JSON, and
    /// stay up until Ctrl-C (or SIGTERM), then stop the chains.
    ///
    /// Example: bridge-agent devnet up --operator 0xA… --operator 0xB… --operator 0xC… --threshold 2
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { dir } => bridge_agent::demo::run(dir).await.context("demo failed"),
        Command::Devnet(DevnetCommand::Up {
            dir,
            parent_chain_id,
            child_chain_id,
            parent_port,
            child_port,
            block_time,
            operators,
            threshold,
            config_threshold,
        }) => {
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
            devnet_up(opts).await
        }
    }
}

async fn devnet_up(opts: DevnetOptions) -> anyhow::Result<()> {
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
