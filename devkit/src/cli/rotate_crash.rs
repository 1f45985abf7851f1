//! `bridge-dev rotate-crash` (hidden, for tests): `keys rotate --config FILE` that aborts right
//! after one step took effect and before it is recorded, the worst moment for a crash, to prove
//! that running `bridge-agent keys rotate` again resumes. The operator's binary has no such hook.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bridge_agent::rotation::{self, RotateOptions, Ui};
use clap::Args;

/// What an abort prints on stderr; tests look for it to tell this abort from a failure.
pub const ABORT_MARK: &str = "aborting (test hook)";

#[derive(Debug, Args)]
pub struct RotateCrashArgs {
    /// The agent's config file, as for `bridge-agent keys rotate --config`.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The step to abort after, as the rotation store names it: key, fund:<side>,
    /// propose:<side>, accept:<side>, sweep:<side>, retire.
    #[arg(long, value_name = "STEP")]
    after: String,
}

/// Prints progress like the operator's terminal, never confirms, aborts at the chosen step.
struct AbortAt(String);

impl Ui for AbortAt {
    fn say(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn confirm(&self, _question: &str) -> bool {
        false
    }

    fn took_effect(&self, step: &str) {
        if step == self.0 {
            eprintln!("{step} took effect, not recorded: {ABORT_MARK}");
            std::process::abort();
        }
    }
}

pub async fn run(args: RotateCrashArgs) -> anyhow::Result<()> {
    let config = bridge_agent::config::load(&args.config)
        .with_context(|| format!("config {}", args.config.display()))?;
    bridge_agent::bridge_check::require_key_rotation(&config, "keys rotate").await?;
    let opts = RotateOptions {
        config,
        new_key: None,
        dry_run: false,
        destroy_old: false,
        yes: false,
        fund: None,
        switch_timeout: Duration::from_secs(60),
    };
    rotation::rotate(opts, &AbortAt(args.after.clone())).await?;
    // Reaching the end means the step never happened: a misspelt name, or already recorded.
    bail!(
        "the rotation finished without reaching step {:?}: nothing aborted",
        args.after
    )
}
