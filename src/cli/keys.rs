//! `bridge-agent keys generate|list|show` (and `rotate`, in `keys_rotate.rs`): the operator's signing keys, which never leave the
//! HSM or KMS. Each command resolves its [`SignerArgs`] to a backend's
//! [`bridge_signer::KeyStore`] and a key; the result is printed by `report`.

use std::io::Write as _;

use bridge_signer::KeyOp;
use clap::{Args, Subcommand};

use super::error::KeysError;
use super::report::{KeyList, Report};
use super::signer_args::{KeyFlags, SignerArgs};

const KEYS_EXAMPLES: &str = "\
Examples (SoftHSM2; the PIN is read from BRIDGE_PKCS11_PIN or --pin-file, never from a flag):
  read -rs BRIDGE_PKCS11_PIN && export BRIDGE_PKCS11_PIN
  bridge-agent keys generate --backend pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\
      --token-label bridge-op --label operator-1
  bridge-agent keys list --backend pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\
      --token-label bridge-op
  bridge-agent keys show --config agent.toml
  bridge-agent keys show --config agent.toml --id 0a1b2c3d4e5f6071 --json
  bridge-agent keys generate --backend aws-kms --region eu-central-1 --label operator-1

The [signer] table of --config FILE (the whole file is checked, as `config check` does):
  [signer]
  backend = \"pkcs11\"
  module = \"/usr/lib/softhsm/libsofthsm2.so\"
  token_label = \"bridge-op\"
  key_label = \"operator-1\"             # or key_id = \"0a1b2c…\" (hex)
  pin = { env = \"BRIDGE_PKCS11_PIN\" }   # or pin = { file = \"/run/secrets/pkcs11-pin\" }

Errors go to stderr with a hint; the exit status is 2 for a bad command line, 1 otherwise.";

/// Operator signing keys in an HSM (PKCS#11) or AWS KMS.
///
/// Keys are generated inside the HSM as sensitive and non-extractable; there is deliberately
/// no way to import a raw private key. Every command takes the signer either from an agent
/// config file (--config FILE, its [signer] table) or from --backend and that backend's flags.
#[derive(Debug, Args)]
#[command(after_long_help = KEYS_EXAMPLES)]
pub struct KeysArgs {
    /// Print the result as JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a secp256k1 key pair inside the HSM/KMS; print its address and public key.
    ///
    /// pkcs11: the key is created with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not
    /// CKA_EXTRACTABLE, checked afterwards (a token that ignores that gets the key destroyed).
    /// A label already in use is refused.
    #[command(after_long_help = "\
Examples:
  bridge-agent keys generate --backend pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\
      --token-label bridge-op --label operator-1
  bridge-agent keys generate --config agent.toml          # key_label/key_id from [signer]
  bridge-agent keys generate --backend aws-kms --region eu-central-1 --label operator-1")]
    Generate(GenerateArgs),
    /// List the secp256k1 keys: label, id and address of each.
    #[command(after_long_help = "\
Examples:
  bridge-agent keys list --backend pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\
      --token-label bridge-op
  bridge-agent keys list --config agent.toml --json")]
    List(ListArgs),
    /// Show one key: address, public key, and the attributes that prove it cannot leave the
    /// HSM (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE…).
    #[command(after_long_help = "\
Examples:
  bridge-agent keys show --config agent.toml               # the key the agent signs with
  bridge-agent keys show --backend pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\
      --token-label bridge-op --id 0a1b2c3d4e5f6071
  bridge-agent keys show --backend aws-kms --key-id alias/operator-1 --json")]
    Show(ShowArgs),
    /// Rotate this operator's key on both bridges: new key, gas, propose, accept, live switch
    /// of the running agent, sweep, retire. Resumable; --dry-run shows the transactions.
    Rotate(super::keys_rotate::RotateArgs),
}

/// `keys rotate` has its own output and errors; the other commands go through [`run`].
pub enum Dispatch {
    /// The rotation's arguments, and whether `--json` was given (not supported there).
    Rotate(super::keys_rotate::RotateArgs, bool),
    Keys(KeysArgs),
}

impl KeysArgs {
    /// Which runner takes this command.
    pub fn dispatch(self) -> Dispatch {
        match self.command {
            KeysCommand::Rotate(r) => Dispatch::Rotate(r, self.json),
            command => Dispatch::Keys(Self { command, ..self }),
        }
    }
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Label of the new key (pkcs11: CKA_LABEL; aws-kms: alias). Default with --config: the
    /// [signer] table's key_label.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// pkcs11: CKA_ID of the new key in hex (default: 8 random bytes from the token).
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    #[command(flatten)]
    signer: SignerArgs,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    signer: SignerArgs,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// pkcs11: CKA_LABEL of the key. Default with --config: the [signer] table's key.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// pkcs11: CKA_ID of the key in hex (as `keys list` prints it).
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    #[command(flatten)]
    signer: SignerArgs,
}

/// Runs one `keys` command and prints its result on stdout.
pub async fn run(args: KeysArgs) -> Result<(), KeysError> {
    let report = match &args.command {
        KeysCommand::Generate(a) => {
            let flags = KeyFlags {
                label: a.label.as_deref(),
                id: a.id.as_deref(),
            };
            let (store, key) = a.signer.resolve(flags)?.open(Some(KeyOp::Generate)).await?;
            Report::Generated(store.generate(&key).await?)
        }
        KeysCommand::List(a) => {
            let (store, _) = a.signer.resolve(KeyFlags::default())?.open(None).await?;
            Report::Listed(KeyList {
                backend: store.backend().as_str(),
                location: store.location(),
                keys: store.list().await?,
            })
        }
        KeysCommand::Rotate(_) => unreachable!("keys rotate is dispatched by cli::run"),
        KeysCommand::Show(a) => {
            let flags = KeyFlags {
                label: a.label.as_deref(),
                id: a.id.as_deref(),
            };
            let (store, key) = a.signer.resolve(flags)?.open(Some(KeyOp::Show)).await?;
            Report::Shown(store.show(&key).await?)
        }
    };
    let text = if args.json {
        let mut json = report
            .json()
            .map_err(|e| KeysError::Output(e.to_string()))?;
        json.push('\n');
        json
    } else {
        report.text()
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| KeysError::Output(e.to_string()))
}
