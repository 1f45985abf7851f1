//! `bridge-agent run --config FILE`: the agent itself, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use bridge_agent::config::{self, LogFormat};
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct RunArgs {
    /// The agent's TOML config file (check it first with `bridge-agent config check`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub async fn run(args: RunArgs) -> ExitCode {
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter =
        bridge_agent::logging::env_filter(&bridge_agent::logging::directive(&cfg.log.level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(bridge_agent::logging::ansi_on_stderr());
    match cfg.log.format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: stopping");
        on_signal.cancel();
    });
    match bridge_agent::agent::run(cfg, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "agent failed to start");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
