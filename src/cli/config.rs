//! `bridge-agent config check`: every problem of a config file at once, each with its path;
//! with `--online`, also the agent's start-up bridge check on both chains (`bridge_check`).

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::Address;
use bridge_agent::bridge_check::{self, Seat, Target, implications};
use bridge_agent::chain::{ChainClient, access_config};
use bridge_agent::config::{AgentConfig, Side};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem at once, each with its dotted path (and
    /// line), e.g. `parent.rpc[1] (line 12, column 7): …`. Reads the PIN and URL secrets the
    /// file names (from env or file) to check they are there, and never prints them.
    ///
    /// With --online, also runs the check the agent runs before its first vote, on both
    /// chains: each bridge address has code, answers the bridge views (requestNonce,
    /// lowerHandleNonce, getOperatorList, operatorThresholds, counterpartBridge = the other
    /// chain's configured bridge), its dialect (ours | kaia) and what that implies, and whether
    /// this operator's key (from [signer]; after a `keys rotate`, the rotated key) holds a
    /// seat. Sends nothing. Exit status 1 if any of it fails.
    ///
    /// Example: BRIDGE_PKCS11_PIN=… bridge-agent config check --config config/softhsm.toml --online
    Check {
        /// The agent's TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Also check the bridges on the chains (needs the RPC endpoints and the signer).
        #[arg(long)]
        online: bool,
    },
}

pub async fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { config, online } => match bridge_agent::config::load(&config) {
            Ok(c) => {
                println!("{}: OK", config.display());
                for side in Side::ALL {
                    let chain = c.chain(side);
                    println!(
                        "  {side}: chain {} via {} endpoint(s), bridge {}, {} confirmation(s)",
                        chain.chain_id,
                        chain.rpc.len(),
                        chain.bridge,
                        chain.confirmations
                    );
                }
                if !online {
                    return ExitCode::SUCCESS;
                }
                let problems = check_online(&c).await;
                if problems == 0 {
                    println!("online check: OK");
                    ExitCode::SUCCESS
                } else {
                    println!(
                        "online check: FAILED ({problems} problem(s)); the agent would vote nothing on the chain(s) named above"
                    );
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The operator's address on `side`: the seated key's (the one a rotation moved the seat to,
/// if the agent's store records one), read from the signer.
async fn operator(cfg: &AgentConfig, side: Side) -> Result<Address, String> {
    let databases =
        bridge_agent::store::Databases::open(cfg).map_err(|e| format!("the agent's store: {e}"))?;
    // A SQLite store that does not exist yet is not created by a check.
    let has_store = databases.store_file().is_none_or(|f| f.is_file());
    let signer_cfg = if has_store {
        let store = databases
            .open_rotations()
            .map_err(|e| format!("the agent's store: {e}"))?;
        bridge_agent::rotation::keys::seated(cfg, side, &store).map_err(|e| e.to_string())?
    } else {
        cfg.signer_for(side).clone()
    };
    let signer = signer_cfg.connect().await.map_err(|e| e.to_string())?;
    Ok(signer.address())
}

/// Prints the bridge check of both chains; returns the number of problems.
async fn check_online(cfg: &AgentConfig) -> usize {
    let mut problems = 0;
    for side in Side::ALL {
        let chain = cfg.chain(side);
        let client = match ChainClient::connect(access_config(cfg, side)).await {
            Ok(c) => c,
            Err(e) => {
                println!(
                    "  {side} bridge {}: cannot reach the chain: {e}",
                    chain.bridge
                );
                problems += 1;
                continue;
            }
        };
        let key = match operator(cfg, side).await {
            Ok(a) => Some(a),
            Err(e) => {
                println!("  {side}: cannot read this operator's key from the signer: {e}");
                problems += 1;
                None
            }
        };
        let target = Target {
            chain: side.as_str().into(),
            bridge: chain.bridge,
            counterpart: cfg.chain(side.other()).bridge,
            operator: key,
            configured: chain.dialect,
        };
        match bridge_check::check(&client, &target).await {
            Ok(r) => {
                let pinned = if chain.dialect.is_some() {
                    format!(
                        " (pinned in the config; the bridge answers as {})",
                        r.detected
                    )
                } else {
                    " (detected from the bridge)".into()
                };
                println!(
                    "  {side} bridge {}: verified, dialect {}{pinned}",
                    r.bridge, r.dialect
                );
                println!(
                    "    requestNonce {}, lowerHandleNonce {}, {} seat(s), thresholds: value transfer {}, configuration {}",
                    r.request_nonce,
                    r.lower_handle_nonce,
                    r.operators.len(),
                    r.value_threshold,
                    r.configuration_threshold
                );
                match r.seat {
                    Seat::Seated(k) => println!("    key {k}: seated"),
                    Seat::NotSeated(_) => {
                        problems += 1;
                        println!("    NOT SEATED: {}", r.seat_problem().unwrap_or_default());
                    }
                    Seat::NotChecked => println!("    seat: not checked"),
                }
                for line in implications(r.dialect) {
                    println!("    implies: {line}");
                }
                for w in &r.warnings {
                    println!("    warning: {w}");
                }
            }
            Err(e) => {
                problems += 1;
                println!("  NOT VERIFIED: {e}");
            }
        }
    }
    problems
}
