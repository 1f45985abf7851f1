//! The `bridge-dev` command line (clap).
//!
//! ```text
//!  bridge-dev ─┬─ devnet up ──> devnet.rs ──> bridge_devkit::devnet
//!              ├─ demo ───────> bridge_devkit::demo (starts `bridge-agent run` ×4)
//!              └─ rotate-crash (hidden) ──> rotate_crash.rs ──> bridge_agent::rotation
//! ```

mod devnet;
mod rotate_crash;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bridge_devkit::demo;
use clap::{Parser, Subcommand};

/// Development tools of bridge-agent: a local two-chain devnet and the demo. Not for operators:
/// it holds throw-away private keys; the agent itself is `bridge-agent`.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local two-chain devnet (anvil) with the bridge pair and test tokens deployed.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// The demo: a local bridge run by 4 agents (threshold 3) signing with SoftHSM keys;
    /// sends transfers both ways, waits for them, prints latency and reconciled balances, and
    /// stops everything it started. The agents are `bridge-agent` from beside this binary, or
    /// $BRIDGE_AGENT_BIN.
    Demo {
        /// Folder for chains, keys, agent configs and logs (wiped at start).
        #[arg(long, default_value = ".devnet/demo")]
        dir: PathBuf,
        /// Transfers to send (native, ERC-20, ERC-721, alternating directions).
        #[arg(long, default_value_t = 30)]
        transfers: usize,
        /// Leave the network and the agents up after the summary, until Ctrl-C.
        #[arg(long)]
        keep: bool,
        /// Where the 4 operator keys live: SoftHSM (PKCS#11) when installed, else hsm-sim
        /// (the AWS KMS protocol, in this process).
        #[arg(long, value_enum, default_value = "auto")]
        keystore: demo::agents::KeystoreChoice,
        /// Send each transfer only after the previous one executed, to measure the latency of
        /// one transfer with nothing else in flight (benchmark P3; see BENCHMARKS.md).
        #[arg(long)]
        one_at_a_time: bool,
    },
    /// For tests: `keys rotate` that aborts after one step took effect, before it is recorded.
    #[command(hide = true)]
    RotateCrash(rotate_crash::RotateCrashArgs),
}

/// Runs the parsed command line and returns the process's exit status.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Devnet(cmd) => {
            init_logging("info");
            devnet::run(cmd).await
        }
        Command::Demo {
            dir,
            transfers,
            keep,
            keystore,
            one_at_a_time,
        } => {
            init_logging("warn");
            let opts = demo::DemoOptions {
                dir,
                transfers,
                keep,
                keystore,
                pace: if one_at_a_time {
                    demo::Pace::OneAtATime
                } else {
                    demo::Pace::Burst
                },
            };
            demo::run(opts).await.context("demo failed")
        }
        Command::RotateCrash(args) => {
            init_logging("warn,bridge_signer::retry=off");
            rotate_crash::run(args).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides `default`; credential-printing modules are capped.
fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(bridge_agent::logging::env_filter(
            &bridge_agent::logging::directive(default),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(bridge_agent::logging::ansi_on_stderr())
        .init();
}
