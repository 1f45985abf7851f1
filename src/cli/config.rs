//! `bridge-agent config check`: every problem of a config file at once, each with its path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem at once, each with its dotted path (and
    /// line), e.g. `parent.rpc[1] (line 12, column 7): …`. Reads the PIN and URL secrets the
    /// file names (from env or file) to check they are there, and never prints them.
    ///
    /// Example: BRIDGE_PKCS11_PIN=… bridge-agent config check --config config/softhsm.toml
    Check {
        /// The agent's TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { config } => match bridge_agent::config::load(&config) {
            Ok(c) => {
                println!("{}: OK", config.display());
                for side in bridge_agent::config::Side::ALL {
                    let chain = c.chain(side);
                    println!(
                        "  {side}: chain {} via {} endpoint(s), bridge {}, {} confirmation(s)",
                        chain.chain_id,
                        chain.rpc.len(),
                        chain.bridge,
                        chain.confirmations
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
