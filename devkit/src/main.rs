//! `bridge-dev`: the development binary (devnet, demo). Operators install `bridge-agent`, which
//! carries none of this. Parsing and dispatch live in [`cli`]; this file starts the runtime.

#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse()).await
}
