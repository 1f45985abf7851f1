//! The backend arguments every `keys` command shares, and how they become a [`Target`]: either
//! `--config FILE` (the agent's config, read and checked by the one config loader, which never
//! echoes a secret; its chains' signer is used) or `--backend` with that backend's flags. `--label`/`--id` and `--pin-file` may override what the file says.
//!
//! The PIN is never a command-line value: it comes from `BRIDGE_PKCS11_PIN` or `--pin-file`
//! (or the `pin` source named in the config file).

use std::path::{Path, PathBuf};

use bridge_agent::config::{self as agent_config, Secrets, Side};
use bridge_signer::aws_kms::AwsKmsKeyStore;
use bridge_signer::pkcs11::Pkcs11Config;
use bridge_signer::{
    Backend, ConfigError, ConfigProblem, KeyOp, KeyRef, KeyStore, PinSource, SignerConfig,
};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use super::error::KeysError;

/// Environment variable the PIN is read from when no `--pin-file` is given.
pub const PIN_ENV: &str = "BRIDGE_PKCS11_PIN";

/// Where the keys are: `--config FILE`, or `--backend` with its flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Signer (either --config FILE, or --backend with its flags)")]
pub struct SignerArgs {
    /// Agent config file (TOML), checked as a whole like `config check` does; its [signer]
    /// table names backend, token and key.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Backend to use when no --config is given: pkcs11 (a PKCS#11 HSM: SoftHSM2, YubiHSM,
    /// Thales, CloudHSM…) or aws-kms (AWS KMS, or a KMS-protocol server such as hsm-sim).
    #[arg(long, value_name = "BACKEND", value_parser = backend_parser())]
    pub backend: Option<Backend>,
    /// pkcs11: path of the PKCS#11 module (shared library).
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// pkcs11: label of the token (slot ids change between runs; labels do not).
    #[arg(long, value_name = "LABEL")]
    pub token_label: Option<String>,
    /// pkcs11: file holding the user PIN (one line, chmod 600). Without it the PIN is read
    /// from the environment variable BRIDGE_PKCS11_PIN (or the `pin` source in --config).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// aws-kms: key id, ARN, or alias (alias/NAME).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// aws-kms: AWS region (default: from the standard AWS configuration).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// aws-kms: endpoint URL override, e.g. http://127.0.0.1:4599 for hsm-sim or moto.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Refused: a PIN on the command line would land in shell history and `ps`.
    #[arg(long = "pin", hide = true, num_args = 0..=1, value_name = "PIN",
          value_parser = discard_pin)]
    pub pin_on_command_line: Option<Option<PinGiven>>,
}

/// `--backend`: the signer crate's backend names, listed in `--help`.
fn backend_parser() -> impl TypedValueParser<Value = Backend> {
    PossibleValuesParser::new(Backend::ALL.iter().map(|b| b.as_str()))
        .try_map(|name: String| name.parse::<Backend>())
}

/// Marks that `--pin` was given. The value itself is dropped by the parser, never stored.
#[derive(Debug, Clone, Copy)]
pub struct PinGiven;

fn discard_pin(_value: &str) -> Result<PinGiven, String> {
    Ok(PinGiven)
}

/// The `--label`/`--id` a command was given (the key to create or to select).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyFlags<'a> {
    pub label: Option<&'a str>,
    pub id: Option<&'a str>,
}

/// A resolved backend with everything the key commands need, secrets still unread.
#[derive(Debug)]
pub enum Target {
    /// A PKCS#11 token; `key_label`/`key_id` carry the key selection (may both be empty).
    Pkcs11(Pkcs11Config),
    /// An AWS KMS account/region.
    AwsKms(AwsKmsTarget),
}

impl Target {
    /// The key store the target names and the key the command is about, checked to say
    /// enough for `op` (when given) before the secrets (PIN, AWS credentials) are read.
    pub async fn open(self, op: Option<KeyOp>) -> Result<(Box<dyn KeyStore>, KeyRef), KeysError> {
        let check = |backend: Backend, key: &KeyRef| match op {
            Some(op) => backend.check(op, key),
            None => Ok(()),
        };
        match self {
            Target::Pkcs11(config) => {
                let signer = SignerConfig::Pkcs11(config);
                let key = signer.key_ref();
                check(signer.backend(), &key)?;
                Ok((signer.key_store().await?, key))
            }
            Target::AwsKms(t) => {
                let key = KeyRef {
                    label: t.label,
                    id: t.key_id,
                };
                check(Backend::AwsKms, &key)?;
                let store =
                    AwsKmsKeyStore::connect(t.region.as_deref(), t.endpoint.as_deref()).await?;
                Ok((Box::new(store), key))
            }
        }
    }
}

/// What the aws-kms branch of a key command is given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsKmsTarget {
    /// `--key-id`: the key to show (`keys show`); not needed by `list` and `generate`.
    pub key_id: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--label`: for `keys generate`, the alias to give the new key (without `alias/`).
    pub label: Option<String>,
}

impl std::fmt::Debug for AwsKmsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An endpoint URL may carry credentials or tokens; it is not echoed.
        f.debug_struct("AwsKmsTarget")
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_ref().map(|_| "<set>"))
            .field("label", &self.label)
            .finish()
    }
}

impl SignerArgs {
    /// Checks the flags (reporting every problem at once) and builds the target.
    pub fn resolve(&self, key: KeyFlags<'_>) -> Result<Target, KeysError> {
        if self.pin_on_command_line.is_some() {
            return Err(KeysError::usage(format!(
                "--pin is refused: a PIN on the command line ends up in shell history and `ps`. \
                 Set the environment variable {PIN_ENV} or pass --pin-file FILE"
            )));
        }
        let mut problems = Vec::new();
        let key_id = match key.id.map(parse_hex_id).transpose() {
            Ok(id) => id,
            Err(p) => {
                problems.push(p);
                None
            }
        };
        if key.label == Some("") {
            problems.push("--label must not be empty".to_owned());
        }
        let target = match (&self.config, self.backend) {
            (Some(path), backend) => {
                if backend.is_some() {
                    problems.push(
                        "--config FILE and --backend both choose the signer; use one of them"
                            .into(),
                    );
                }
                let set = self.set_flags(&[
                    "--module",
                    "--token-label",
                    "--key-id",
                    "--region",
                    "--endpoint",
                ]);
                if !set.is_empty() {
                    problems.push(format!(
                        "{} cannot be used with --config FILE: its [signer] table names them \
                         (only --label, --id and --pin-file may override it)",
                        set.join(", ")
                    ));
                }
                if !problems.is_empty() {
                    return Err(KeysError::Usage(problems));
                }
                self.read_config_file(path, key, key_id)?
            }
            (None, None) => {
                problems.push(
                    "choose the signer: --config FILE (its [signer] table), or \
                     --backend pkcs11 --module PATH --token-label LABEL, or \
                     --backend aws-kms [--key-id ID] [--region R] [--endpoint URL]"
                        .into(),
                );
                return Err(KeysError::Usage(problems));
            }
            (None, Some(Backend::Pkcs11)) => {
                if self.module.is_none() {
                    problems.push(
                        "--backend pkcs11 needs --module PATH (the PKCS#11 library, e.g. \
                         /usr/lib/softhsm/libsofthsm2.so)"
                            .into(),
                    );
                }
                if self.token_label.is_none() {
                    problems.push("--backend pkcs11 needs --token-label LABEL".into());
                }
                let set = self.set_flags(&["--key-id", "--region", "--endpoint"]);
                if !set.is_empty() {
                    problems.push(format!(
                        "{} belong to --backend aws-kms; a PKCS#11 key is selected with \
                         --label NAME or --id HEX",
                        set.join(", ")
                    ));
                }
                let (Some(module), Some(token_label), true) =
                    (&self.module, &self.token_label, problems.is_empty())
                else {
                    return Err(KeysError::Usage(problems));
                };
                let mut config =
                    Pkcs11Config::new(module.clone(), token_label.clone(), self.pin_source());
                config.key_label = key.label.map(str::to_owned);
                config.key_id = key_id;
                Target::Pkcs11(config)
            }
            (None, Some(Backend::AwsKms)) => {
                let mut set = self.set_flags(&["--module", "--token-label", "--pin-file"]);
                if key.id.is_some() {
                    set.push("--id");
                }
                if !set.is_empty() {
                    problems.push(format!(
                        "{} belong to --backend pkcs11; an AWS KMS key is selected with --key-id ID",
                        set.join(", ")
                    ));
                }
                if !problems.is_empty() {
                    return Err(KeysError::Usage(problems));
                }
                Target::AwsKms(AwsKmsTarget {
                    key_id: self.key_id.clone(),
                    region: self.region.clone(),
                    endpoint: self.endpoint.clone(),
                    label: key.label.map(str::to_owned),
                })
            }
        };
        if let Target::Pkcs11(config) = &target {
            validate_pkcs11(config)?;
        }
        Ok(target)
    }

    /// The names of the given flags among `names` that are set.
    fn set_flags(&self, names: &[&'static str]) -> Vec<&'static str> {
        names
            .iter()
            .copied()
            .filter(|name| match *name {
                "--module" => self.module.is_some(),
                "--token-label" => self.token_label.is_some(),
                "--pin-file" => self.pin_file.is_some(),
                "--key-id" => self.key_id.is_some(),
                "--region" => self.region.is_some(),
                "--endpoint" => self.endpoint.is_some(),
                _ => false,
            })
            .collect()
    }

    fn pin_source(&self) -> PinSource {
        match &self.pin_file {
            Some(path) => PinSource::File(path.clone()),
            None => PinSource::Env(PIN_ENV.into()),
        }
    }

    fn read_config_file(
        &self,
        path: &Path,
        key: KeyFlags<'_>,
        key_id: Option<String>,
    ) -> Result<Target, KeysError> {
        let file_error = |reason: String| KeysError::ConfigFile {
            path: path.to_owned(),
            reason,
        };
        // The one loader: a problem anywhere in the file is reported with its path and line,
        // and no secret is echoed. The PIN is not read here: --pin-file may replace its source.
        let config = agent_config::load_with(path, Secrets::Skip)?;
        let signer = config.signer_for(Side::Parent).clone();
        if &signer != config.signer_for(Side::Child) {
            return Err(file_error(
                "its [parent] and [child] tables use different signers; `keys` acts on one: \
                 give it with --backend and its flags"
                    .into(),
            ));
        }
        match signer {
            SignerConfig::Pkcs11(mut config) => {
                if key.label.is_some() || key.id.is_some() {
                    config.key_label = key.label.map(str::to_owned);
                    config.key_id = key_id;
                }
                if self.pin_file.is_some() {
                    config.pin = self.pin_source();
                }
                Ok(Target::Pkcs11(config))
            }
            SignerConfig::AwsKms(config) => {
                let mut problems = Vec::new();
                if key.id.is_some() {
                    problems.push(
                        "--id selects a PKCS#11 key; the [signer] table's key_id names the KMS key"
                            .to_owned(),
                    );
                }
                if self.pin_file.is_some() {
                    problems.push("--pin-file is for the pkcs11 backend; KMS needs no PIN".into());
                }
                if !problems.is_empty() {
                    return Err(KeysError::Usage(problems));
                }
                config_problems(config.problems("signer"))?;
                Ok(Target::AwsKms(AwsKmsTarget {
                    key_id: Some(config.key_id.clone()),
                    region: config.region.clone(),
                    endpoint: config.endpoint.clone(),
                    label: key.label.map(str::to_owned),
                }))
            }
        }
    }
}

/// The config's problems, except a missing key selection: `list` needs none, and `generate`
/// and `show` say themselves which flag is missing.
fn validate_pkcs11(config: &Pkcs11Config) -> Result<(), KeysError> {
    let no_key = config.key_label.is_none() && config.key_id.is_none();
    let mut problems = config.problems("signer");
    problems.retain(|(path, _)| !(no_key && path == "signer.key_label"));
    config_problems(problems)
}

/// `(path, message)` pairs as one error listing them all.
fn config_problems(problems: Vec<(String, String)>) -> Result<(), KeysError> {
    if problems.is_empty() {
        return Ok(());
    }
    let problems = problems
        .into_iter()
        .map(|(path, message)| ConfigProblem { path, message })
        .collect();
    Err(ConfigError { problems }.into())
}

/// `--id` as given: hex digits, an optional `0x`, even length, not empty. Returns it normalised
/// (lower case, no prefix) or the problem.
pub fn parse_hex_id(id: &str) -> Result<String, String> {
    let digits = id.strip_prefix("0x").unwrap_or(id);
    match hex::decode(digits) {
        Ok(bytes) if !bytes.is_empty() => Ok(hex::encode(bytes)),
        Ok(_) => Err("--id must not be empty; give the key's CKA_ID as hex digits".into()),
        Err(e) => Err(format!(
            "--id {id:?} is not hex ({e}); give the key's CKA_ID as hex digits, e.g. --id 0a1b2c3d \
             (`bridge-agent keys list` shows each key's id)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        signer: SignerArgs,
    }

    fn args(argv: &[&str]) -> SignerArgs {
        T::try_parse_from(std::iter::once("t").chain(argv.iter().copied()))
            .unwrap()
            .signer
    }

    fn usage(argv: &[&str], key: KeyFlags<'_>) -> Vec<String> {
        match args(argv).resolve(key) {
            Err(KeysError::Usage(p)) => p,
            other => panic!("expected a usage error for {argv:?}, got {other:?}"),
        }
    }

    #[test]
    fn hex_ids() {
        assert_eq!(parse_hex_id("0A1b").unwrap(), "0a1b");
        assert_eq!(parse_hex_id("0x0a1b").unwrap(), "0a1b");
        for bad in ["", "0x", "abc", "zz", "0a 1b"] {
            assert!(parse_hex_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flag_problems_are_all_reported() {
        let none = KeyFlags::default();
        let p = usage(&[], none);
        assert!(p[0].contains("choose the signer"), "{p:?}");
        let p = usage(&["--backend", "pkcs11", "--region", "x"], none);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("--module PATH") && p[1].contains("--token-label"));
        assert!(
            p[2].contains("--region belong to --backend aws-kms"),
            "{p:?}"
        );
        let p = usage(
            &["--config", "f.toml", "--backend", "pkcs11", "--module", "m"],
            none,
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[1].contains("--module cannot be used with --config"),
            "{p:?}"
        );
        let p = usage(
            &["--backend", "aws-kms", "--module", "m"],
            KeyFlags {
                label: None,
                id: Some("0a"),
            },
        );
        assert!(
            p[0].contains("--module, --id belong to --backend pkcs11"),
            "{p:?}"
        );
        let p = usage(
            &["--backend", "pkcs11", "--module", "m", "--token-label", "t"],
            KeyFlags {
                label: Some(""),
                id: Some("xyz"),
            },
        );
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn pin_on_command_line_is_refused_without_echoing_it() {
        for argv in [
            &["--pin", "s3cret-77"][..],
            &["--pin=s3cret-77"],
            &["--pin"],
        ] {
            let p = usage(argv, KeyFlags::default());
            assert!(p[0].contains("--pin is refused"), "{p:?}");
            assert!(!format!("{p:?} {:?}", args(argv)).contains("s3cret"));
        }
    }

    #[test]
    fn direct_pkcs11_flags_build_the_config() {
        let a = args(&[
            "--backend",
            "pkcs11",
            "--module",
            "/m.so",
            "--token-label",
            "t",
            "--pin-file",
            "/p",
        ]);
        let Target::Pkcs11(c) = a
            .resolve(KeyFlags {
                label: Some("k"),
                id: Some("0xAB"),
            })
            .unwrap()
        else {
            panic!("not pkcs11");
        };
        assert_eq!(c.module, Path::new("/m.so"));
        assert_eq!(c.token_label, "t");
        assert_eq!(c.key_label.as_deref(), Some("k"));
        assert_eq!(c.key_id.as_deref(), Some("ab"));
        assert_eq!(c.pin, PinSource::File("/p".into()));
        let a = args(&[
            "--backend",
            "pkcs11",
            "--module",
            "/m.so",
            "--token-label",
            "t",
        ]);
        let Target::Pkcs11(c) = a.resolve(KeyFlags::default()).unwrap() else {
            panic!("not pkcs11");
        };
        assert_eq!(c.pin, PinSource::Env(PIN_ENV.into()));
    }

    /// A complete agent config around the given `[signer]` body.
    fn agent_config(signer: &str) -> String {
        let chain = |name: &str, id: u32| {
            format!(
                "[{name}]\nchain_id = {id}\nrpc = [\"http://127.0.0.1:854{id}\"]\n\
                 bridge = \"0x00000000000000000000000000000000000000b{id}\"\n"
            )
        };
        format!(
            "[agent]\ndata_dir = \"/tmp/unused\"\n\n[signer]\n{signer}\n\n{}\n{}",
            chain("parent", 1),
            chain("child", 2)
        )
    }

    #[test]
    fn config_file_goes_through_the_agent_config_loader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            agent_config(
                "backend = \"pkcs11\"\nmodule = \"/m.so\"\ntoken_label = \"t\"\n\
                 key_label = \"k\"\npin = { env = \"MY_PIN\" }",
            ),
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let Target::Pkcs11(c) = args(&["--config", p]).resolve(KeyFlags::default()).unwrap() else {
            panic!("not pkcs11");
        };
        assert_eq!(c.key_label.as_deref(), Some("k"));
        assert_eq!(c.pin, PinSource::Env("MY_PIN".into()));
        // --id replaces the file's key selection; --pin-file its PIN source.
        let Target::Pkcs11(c) = args(&["--config", p, "--pin-file", "/p"])
            .resolve(KeyFlags {
                label: None,
                id: Some("01"),
            })
            .unwrap()
        else {
            panic!("not pkcs11");
        };
        assert_eq!((c.key_label, c.key_id.as_deref()), (None, Some("01")));
        assert_eq!(c.pin, PinSource::File("/p".into()));

        // Every problem of the [signer] table, with its path, from the loader.
        std::fs::write(
            &path,
            agent_config(
                "backend = \"pkcs11\"\nmodule = \"\"\ntoken_label = \"t\"\n\
                 key_id = \"zz\"\npin = { env = \"X\" }\nsessions = 0",
            ),
        )
        .unwrap();
        match args(&["--config", p]).resolve(KeyFlags::default()) {
            Err(KeysError::AgentConfig(e)) => {
                assert_eq!(e.problems.len(), 3, "{e}");
                assert!(e.paths().iter().all(|p| p.starts_with("signer.")), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // A table the agent does not know is a problem here too (the file is one config).
        std::fs::write(&path, "[other]\nx = 1\n").unwrap();
        let err = args(&["--config", p])
            .resolve(KeyFlags::default())
            .unwrap_err();
        assert!(err.to_string().contains("unknown top-level table"), "{err}");
        std::fs::write(&path, agent_config("backend = \"pkcs11\"\nmodul = \"x\"")).unwrap();
        let err = args(&["--config", p])
            .resolve(KeyFlags::default())
            .unwrap_err();
        assert!(err.to_string().contains("signer.modul"), "{err}");
    }
}
