//! `bridge-agent admin …`: owner calls and configuration votes (the logic is
//! `bridge_agent::admin`).

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::{Address, U256};
use bridge_agent::admin::{self, AdminCall, AdminOptions, VoteType};
use bridge_agent::config::Side;
use bridge_agent::rotation::NewKey;
use clap::{Args, Subcommand, ValueEnum};

const ADMIN_HELP: &str = "\
Owner commands are signed by the bridge owner's key, which lives in an HSM or KMS like the
operator keys (a raw private key is never accepted): --owner-key-label selects it on the PKCS#11
token of the config's [signer], --owner-kms-key in the same KMS account and region.

Configuration votes (`admin vote …`) are signed by this operator's own key through its guard
and vote journal; every operator runs the same command with its own config, and the change
applies once the configuration threshold of identical votes is reached.

Every command checks its input against the bridge first (an unknown address, a threshold above
the operator count, a token that is not registered… is refused before anything is sent), then
prints the transaction, waits for the receipt and prints the resulting on-chain value.

Examples:
  bridge-agent admin --config op1.toml --chain both --owner-key-label owner register-operator 0xAb…
  bridge-agent admin --config op1.toml --chain both --owner-key-label owner set-threshold --vote-type value 3
  bridge-agent admin --config op1.toml --chain parent --owner-key-label owner register-token 0xT… 0xC…
  bridge-agent admin --config op1.toml --chain both --owner-kms-key alias/bridge-owner pause
  bridge-agent admin --config op1.toml --chain child vote set-klay-fee 1000000000000000";

/// Bridge administration: owner calls (operators, thresholds, tokens, pause, fees) and
/// operators' configuration votes.
#[derive(Debug, Args)]
#[command(after_long_help = ADMIN_HELP)]
pub struct AdminArgs {
    /// The agent's config file: chains, bridges, [signer] (the backend the owner key is in; for
    /// votes, this operator's key) and data_dir (the vote journal).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Which bridge(s) to act on.
    #[arg(long, value_enum)]
    chain: ChainArg,
    /// pkcs11: CKA_LABEL of the owner key on the token of [signer].
    #[arg(long, value_name = "LABEL", conflicts_with = "owner_kms_key")]
    owner_key_label: Option<String>,
    /// aws-kms: the owner key (id, ARN or alias/NAME) in the account and region of [signer].
    #[arg(long, value_name = "ID")]
    owner_kms_key: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChainArg {
    Parent,
    Child,
    Both,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Become the owner after the current owner called transferOwnership(<owner key>).
    AcceptOwnership,
    /// Give ADDRESS an operator seat.
    RegisterOperator { address: Address },
    /// Remove the operator ADDRESS (refused if a threshold would exceed the operators left).
    DeregisterOperator { address: Address },
    /// Set the votes needed for value transfers or configuration changes (1..=operators).
    SetThreshold {
        #[arg(long, value_enum)]
        vote_type: VoteType,
        threshold: u8,
    },
    /// Register TOKEN on this chain with its COUNTERPART on the other chain.
    RegisterToken {
        token: Address,
        counterpart: Address,
    },
    /// Deregister TOKEN.
    DeregisterToken { token: Address },
    /// Stop new requests (handles of earlier requests go on).
    Pause,
    /// Accept requests again.
    Resume,
    /// Where request fees go (the zero address turns fees off).
    SetFeeReceiver { address: Address },
    /// Configuration votes, signed by this operator's own key.
    #[command(subcommand)]
    Vote(VoteCommand),
}

#[derive(Debug, Subcommand)]
enum VoteCommand {
    /// Vote the native-coin fee per request, in wei.
    SetKlayFee { fee: U256 },
    /// Vote the fee per request of TOKEN, in its smallest unit.
    SetErc20Fee { token: Address, fee: U256 },
    /// Vote to move the seat of OLD to NEW.
    ReplaceOperator { old: Address, new: Address },
}

pub async fn run(args: AdminArgs) -> ExitCode {
    let config = match bridge_agent::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let call = match args.command {
        AdminCommand::AcceptOwnership => AdminCall::AcceptOwnership,
        AdminCommand::RegisterOperator { address } => AdminCall::RegisterOperator(address),
        AdminCommand::DeregisterOperator { address } => AdminCall::DeregisterOperator(address),
        AdminCommand::SetThreshold {
            vote_type,
            threshold,
        } => AdminCall::SetThreshold {
            vote_type,
            threshold,
        },
        AdminCommand::RegisterToken { token, counterpart } => {
            AdminCall::RegisterToken { token, counterpart }
        }
        AdminCommand::DeregisterToken { token } => AdminCall::DeregisterToken(token),
        AdminCommand::Pause => AdminCall::Pause,
        AdminCommand::Resume => AdminCall::Resume,
        AdminCommand::SetFeeReceiver { address } => AdminCall::SetFeeReceiver(address),
        AdminCommand::Vote(VoteCommand::SetKlayFee { fee }) => AdminCall::VoteKlayFee(fee),
        AdminCommand::Vote(VoteCommand::SetErc20Fee { token, fee }) => {
            AdminCall::VoteErc20Fee { token, fee }
        }
        AdminCommand::Vote(VoteCommand::ReplaceOperator { old, new }) => {
            AdminCall::VoteReplaceOperator { old, new }
        }
    };
    let owner_key = match (args.owner_key_label, args.owner_kms_key) {
        (Some(key_label), _) => Some(NewKey::Pkcs11 { key_label }),
        (None, Some(key_id)) => Some(NewKey::AwsKms { key_id }),
        (None, None) => None,
    };
    if call.is_vote() && owner_key.is_some() {
        eprintln!(
            "error: configuration votes are signed by this operator's own key; leave out --owner-key-label/--owner-kms-key"
        );
        return ExitCode::from(2);
    }
    let sides = match args.chain {
        ChainArg::Parent => vec![Side::Parent],
        ChainArg::Child => vec![Side::Child],
        ChainArg::Both => Side::ALL.to_vec(),
    };
    if sides.len() > 1
        && matches!(
            call,
            AdminCall::RegisterToken { .. }
                | AdminCall::DeregisterToken(_)
                | AdminCall::VoteErc20Fee { .. }
        )
    {
        eprintln!(
            "error: a token address belongs to one chain: use --chain parent or --chain child"
        );
        return ExitCode::from(2);
    }
    let opts = AdminOptions {
        config,
        sides,
        owner_key,
        call,
    };
    match admin::run(opts, &|line| println!("{line}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                admin::AdminError::Usage(_) | admin::AdminError::Invalid { .. } => 2,
                _ => 1,
            })
        }
    }
}
