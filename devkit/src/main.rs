//! `bridge-dev`: the development binary (devnet, demo). Operators install `bridge-agent`, which
//! carries none of this. Parsing and dispatch live in [`cli`]; this file starts the runtime.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // Before the runtime starts any thread: the demo makes its SoftHSM token inside this
    // process, and SoftHSM finds its folder through this variable.
    if let Some(conf) = cli.softhsm_conf() {
        // SAFETY: single-threaded here; nothing has read the environment concurrently yet.
        unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(cli::run(cli))
}
