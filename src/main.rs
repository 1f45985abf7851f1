//! The `bridge-agent` command line. Parsing and dispatch live in [`cli`]; this file only starts
//! the runtime and turns the outcome into the process's exit status.

#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse()).await
}
