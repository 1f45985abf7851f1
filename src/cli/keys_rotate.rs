//! `bridge-agent keys rotate`: moves this operator's seat on both bridges to a new key with no
//! downtime (the engine is `bridge_agent::rotation`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bridge_agent::rotation::{self, NewKey, RotateOptions, Ui};
use clap::Args;

pub const ROTATE_HELP: &str = "\
Steps (each checked on chain first, then done, then recorded in the agent's store):
  1 key      create the new key in the same backend (or use --new-key-label / --new-kms-key)
  2 fund     old key sends gas to the new address, on both chains
  3 propose  old key: proposeOperatorKey(new) on both bridges
  4 accept   new key: acceptOperatorKey(old): the seat moves in this one transaction
  5 switch   the running agent sees the seat moved and signs with the new key, no restart
  6 sweep    old key sends its leftover gas to the new address
  7 retire   old key marked retired; --destroy-old then destroys it (asks first, --yes skips)

Interrupted (Ctrl-C, kill -9, a node down)? Run the same command again: it resumes where it
stopped. At every moment the old or the new address holds the seat on each chain.
The signing guard allows exactly these calls for this seat, and only to this command.

Examples:
  BRIDGE_PKCS11_PIN=… bridge-agent keys rotate --config op1.toml --dry-run
  BRIDGE_PKCS11_PIN=… bridge-agent keys rotate --config op1.toml
  bridge-agent keys rotate --config op2.toml --new-kms-key alias/operator-2-2025
  bridge-agent keys rotate --config op1.toml --destroy-old --yes";

/// Rotate this operator's key on both bridges, with no downtime and resumable.
#[derive(Debug, Args)]
#[command(after_long_help = ROTATE_HELP)]
pub struct RotateArgs {
    /// The agent's config file: chains, bridges, [signer] (the key being rotated), data_dir
    /// (where each step is recorded) and [http] listen (to find the running agent).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// pkcs11: rotate to this existing key (CKA_LABEL) on the same token. Default: create
    /// `<old label>-r<N>`.
    #[arg(long, value_name = "LABEL", conflicts_with = "new_kms_key")]
    new_key_label: Option<String>,
    /// aws-kms: rotate to this existing key (id, ARN or alias/NAME) in the same account and
    /// region. Default: create one with alias `<old alias>-r<N>`.
    #[arg(long, value_name = "ID")]
    new_kms_key: Option<String>,
    /// Print the plan and every transaction (from, to, value, calldata); create, sign, send
    /// and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// After the rotation, destroy the old key (pkcs11: deleted from the token; aws-kms:
    /// deletion scheduled in 7 days). Asks for confirmation unless --yes.
    #[arg(long)]
    destroy_old: bool,
    /// Answer yes to the confirmation of --destroy-old (for scripts).
    #[arg(long)]
    yes: bool,
    /// Gas to send to the new address on each chain, in whole coins (decimal, e.g. "1.5").
    /// Default: half the old account's balance.
    #[arg(long, value_name = "COINS")]
    fund: Option<String>,
    /// Seconds to wait for the running agent to switch to the new key.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    switch_timeout: u64,
}

struct Terminal;

impl Ui for Terminal {
    fn say(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn confirm(&self, question: &str) -> bool {
        if !std::io::stdin().is_terminal() {
            eprintln!("{question}\nno terminal to ask on: pass --yes to confirm");
            return false;
        }
        eprint!("{question} Type yes to confirm: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        answer.trim() == "yes"
    }
}

pub async fn run(args: RotateArgs) -> ExitCode {
    match rotate(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn rotate(args: RotateArgs) -> Result<(), (u8, String)> {
    let config = bridge_agent::config::load(&args.config).map_err(|e| (2, e.to_string()))?;
    let fund = args
        .fund
        .as_deref()
        .map(|c| {
            alloy::primitives::utils::parse_ether(c)
                .map_err(|e| (2, format!("--fund {c:?} is not an amount of coins: {e}")))
        })
        .transpose()?;
    let new_key = match (args.new_key_label, args.new_kms_key) {
        (Some(l), _) if l.is_empty() => {
            return Err((2, "--new-key-label must not be empty".into()));
        }
        (Some(key_label), _) => Some(NewKey::Pkcs11 { key_label }),
        (None, Some(k)) if k.trim().is_empty() => {
            return Err((2, "--new-kms-key must not be empty".into()));
        }
        (None, Some(key_id)) => Some(NewKey::AwsKms { key_id }),
        (None, None) => None,
    };
    if args.yes && !args.destroy_old {
        return Err((2, "--yes only confirms --destroy-old; leave it out".into()));
    }
    // Kaia's bridge has no rotation functions: say so before any key is made or gas moved.
    bridge_agent::bridge_check::require_key_rotation(&config, "keys rotate")
        .await
        .map_err(|e| (if e.is_verdict() { 2 } else { 1 }, e.to_string()))?;
    let opts = RotateOptions {
        config,
        new_key,
        dry_run: args.dry_run,
        destroy_old: args.destroy_old,
        yes: args.yes,
        fund,
        switch_timeout: Duration::from_secs(args.switch_timeout),
    };
    let summary = rotation::rotate(opts, &Terminal).await.map_err(|e| {
        let code = if matches!(e, rotation::RotationError::Usage(_)) {
            2
        } else {
            1
        };
        let hint = if code == 1 {
            "\nhint: fix the cause and run the same command again: the rotation resumes"
        } else {
            ""
        };
        (code, format!("{e}{hint}"))
    })?;
    if !summary.dry_run
        && let Some(new) = summary.new
    {
        Terminal.say(&format!(
            "rotated: {} → {new}. The agent's store records the new key; `bridge-agent run` \
             uses it from now on (update [signer] in the config file when convenient).",
            summary.old
        ));
    }
    Ok(())
}
