//! The `bridge-agent` command line (clap): the command tree, logging set-up, and how an error
//! becomes a message and an exit status.
//!
//! ```text
//!  bridge-agent ─┬─ run ──────────> run.rs ──> bridge_agent::agent
//!                ├─ status ───────> status.rs (the agent's /readyz + /metrics, or the chains)
//!                ├─ config check ──> config.rs ──> bridge_agent::config
//!                ├─ admin … ──────> admin/ (owner calls, configuration votes)
//!                └─ keys generate|list|show ──> keys.rs · keys rotate ──> keys_rotate.rs
//!                        signer_args.rs: --config FILE | --backend … ──> Target
//!                        bridge_signer::KeyStore (one per backend) ──> report.rs (text or --json)
//! ```

mod admin;
mod config;
mod error;
mod keys;
mod keys_rotate;
mod report;
mod run;
mod signer_args;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// High-availability value-transfer bridge agent for Kaia-compatible service-chain bridges.
///
/// Each operator runs one agent; a transfer executes once t of N operators voted the same
/// handle transaction. The agent holds no private key: it signs through a PKCS#11 HSM or
/// AWS KMS (`bridge-agent keys --help`). A local two-chain bridge and the demo are in the
/// development binary, `bridge-dev` (`./scripts/demo`).
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: watch both bridges, vote on every request through the guarded signer,
    /// keep each vote moving until executed, and recover what was missed. Until SIGINT/SIGTERM.
    ///
    /// Example: BRIDGE_PKCS11_PIN=… bridge-agent run --config config/softhsm.toml
    Run(run::RunArgs),
    /// The agent's state at a glance: readiness and the key metrics from its /readyz and
    /// /metrics, or the bridges' progress read from the chains when it is not running.
    /// Exit status 0 ready, 3 not ready or not running, 1 error.
    Status(status::StatusArgs),
    /// Operator signing keys in an HSM (PKCS#11) or AWS KMS: generate, list, show, rotate.
    Keys(keys::KeysArgs),
    /// Bridge administration: owner calls (operators, thresholds, tokens, pause/resume, fee
    /// receiver) signed by the owner key in an HSM/KMS, and this operator's configuration votes.
    Admin(admin::AdminArgs),
    /// The agent's config file: `config check` reports every problem at once.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

/// Runs the parsed command line and returns the process's exit status.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Status(args) => {
            init_logging("warn");
            status::run(args).await
        }
        Command::Admin(args) => {
            init_logging("warn,bridge_signer::retry=off");
            admin::run(args).await
        }
        Command::Config(cmd) => {
            init_logging("warn");
            config::run(cmd).await
        }
        Command::Keys(args) => {
            let args = match args.dispatch() {
                keys::Dispatch::Rotate(_, true) => {
                    eprintln!(
                        "error: keys rotate prints its progress as text; --json is not supported there"
                    );
                    return ExitCode::from(2);
                }
                keys::Dispatch::Rotate(rotate, false) => {
                    init_logging("warn,bridge_signer::retry=off");
                    return keys_rotate::run(rotate).await;
                }
                keys::Dispatch::Keys(args) => args,
            };
            // Key commands print their result on stdout and their error on stderr; only
            // warnings go to the log (not the retry layer's, which would repeat the error).
            init_logging("warn,bridge_signer::retry=off");
            match keys::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    if let Some(hint) = e.hint() {
                        eprintln!("hint: {hint}");
                    }
                    ExitCode::from(e.exit_code())
                }
            }
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
