//! `bridge-agent keys …` run as the real binary against SoftHSM2, on tokens created afresh in a
//! temp dir for each run of this test binary (SOFTHSM2_CONF points at its own token dir).
//!
//! Every invocation goes through [`run`], which also checks that neither PIN ever shows up on
//! stdout or stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock, PoisonError};

use alloy::primitives::{Address, keccak256};
use bridge_devkit::softhsm::{MODULE, SoftHsmDir};
use serde_json::Value;

const PIN: &str = "cli-pin-6407381";
const WRONG_PIN: &str = "cli-wrong-5550213";
const SO_PIN: &str = "cli-so-pin-0917";
/// Token the key tests share; each test uses its own key labels.
const TOKEN: &str = "keys-cli";
/// Token only ever logged into with a wrong PIN.
const WRONG_PIN_TOKEN: &str = "keys-cli-wrongpin";

/// Secret access key given to the aws-kms runs; must never be printed either.
const AWS_SECRET: &str = "keys-cli-AWS-SECRET-5f0e2b";

struct Hsm {
    dir: PathBuf,
    conf: PathBuf,
}

/// Creates the SoftHSM2 config, token dir and tokens once per run. Panics with a clear message
/// if SoftHSM2 is missing: these tests never skip.
fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        assert!(
            Path::new(MODULE).is_file(),
            "SoftHSM2 PKCS#11 module {MODULE} is missing: install it with \
             `apt-get install -y softhsm2`"
        );
        // Kept for the whole run (a static is never dropped), so inside the build's own
        // scratch directory: removed with the build, never left in /tmp.
        let dir = tempfile::Builder::new()
            .prefix("bridge-agent-keys-cli-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir")
            .keep();
        let hsm = SoftHsmDir::create(&dir).unwrap();
        hsm.init_tokens(&[TOKEN, WRONG_PIN_TOKEN], PIN, SO_PIN)
            .unwrap();
        let conf = hsm.conf;
        Hsm { dir, conf }
    })
}

/// A complete agent config (`keys --config` reads the file the agent reads) around the given
/// `[signer]` body. The chains are never contacted by `keys`.
fn agent_config(signer: &str) -> String {
    let chain = |name: &str, id: u32| {
        format!(
            "[{name}]\nchain_id = {id}\nrpc = [\"http://127.0.0.1:854{id}\"]\n\
             bridge = \"0x00000000000000000000000000000000000000b{id}\"\n"
        )
    };
    format!(
        "[agent]\ndata_dir = \"{}\"\n\n[signer]\n{signer}\n\n{}\n{}",
        hsm().dir.join("agent-data").display(),
        chain("parent", 1),
        chain("child", 2)
    )
}

/// How the binary gets its PIN.
#[derive(Clone, Copy)]
enum PinFrom<'a> {
    Env(&'a str),
    Nowhere,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).expect("--json prints JSON")
    }

    /// Asserts exit status `code` and that stderr contains every one of `needles`.
    fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout on error: {}", self.stdout);
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
    }
}

/// Runs `bridge-agent keys ARGS` with RUST_LOG=trace (so even debug logs are checked), one run
/// at a time (one token, one process touching it).
fn run(args: &[&str], pin: PinFrom<'_>) -> Run {
    run_with(args, pin, &[])
}

/// [`run`] with extra environment variables.
fn run_with(args: &[&str], pin: PinFrom<'_>, env: &[(&str, &str)]) -> Run {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let hsm = hsm();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridge-agent"));
    cmd.arg("keys")
        .args(args)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("RUST_LOG", "trace")
        .env_remove("BRIDGE_PKCS11_PIN");
    if let PinFrom::Env(p) = pin {
        cmd.env("BRIDGE_PKCS11_PIN", p);
    }
    cmd.envs(env.iter().copied());
    let out: Output = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        cmd.output().expect("run bridge-agent")
    };
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [PIN, WRONG_PIN, SO_PIN, AWS_SECRET] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a PIN was printed by `keys {args:?}`:\nstdout: {}\nstderr: {}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// `--backend pkcs11 --module … --token-label TOKEN` plus `extra`.
fn direct<'a>(token: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--backend",
        "pkcs11",
        "--module",
        MODULE,
        "--token-label",
        token,
    ];
    v.extend_from_slice(extra);
    v
}

fn with<'a>(command: &'a str, rest: Vec<&'a str>) -> Vec<&'a str> {
    let mut v = vec![command];
    v.extend(rest);
    v
}

/// The value after `name:` on its own line of the text output.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
}

fn address_of_public_key(hex_key: &str) -> Address {
    let key = hex::decode(hex_key).expect("public key is hex");
    assert_eq!(key.len(), 65, "uncompressed public key");
    assert_eq!(key[0], 4, "uncompressed SEC1 prefix");
    Address::from_slice(&keccak256(&key[1..])[12..])
}

fn pin_file(name: &str, pin: &str) -> PathBuf {
    let path = hsm().dir.join(name);
    std::fs::write(&path, format!("{pin}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

#[test]
fn generate_then_list_then_show_agree_and_the_key_is_non_extractable() {
    let gen_out = run(
        &with("generate", direct(TOKEN, &["--label", "round-trip"])),
        PinFrom::Env(PIN),
    );
    let text = gen_out.ok();
    assert!(
        text.contains("generated a new secp256k1 key pair"),
        "{text}"
    );
    let address: Address = field(text, "address").parse().expect("address");
    let public_key = field(text, "public key");
    let id = field(text, "id").to_owned();
    assert_eq!(
        address_of_public_key(public_key),
        address,
        "address is the key's"
    );
    assert_eq!(field(text, "address"), address.to_checksum(None), "EIP-55");

    // list, text: a row with label, id and the same address.
    let listed = run(&with("list", direct(TOKEN, &[])), PinFrom::Env(PIN));
    let row = listed
        .ok()
        .lines()
        .find(|l| l.starts_with("round-trip "))
        .unwrap_or_else(|| panic!("no row for the key:\n{}", listed.stdout));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        ["round-trip", id.as_str(), &address.to_checksum(None)]
    );

    // list, JSON.
    let listed = run(&with("list", direct(TOKEN, &["--json"])), PinFrom::Env(PIN)).json();
    let key = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "round-trip")
        .expect("key listed");
    assert_eq!(key["id"], id.as_str());
    assert_eq!(key["address"], address.to_checksum(None));
    assert_eq!(key["public_key"], public_key);

    // show, JSON, selected by label and by id: the attributes that prove non-extractability.
    for select in [["--label", "round-trip"], ["--id", id.as_str()]] {
        let mut extra = select.to_vec();
        extra.push("--json");
        let shown = run(&with("show", direct(TOKEN, &extra)), PinFrom::Env(PIN)).json();
        assert_eq!(shown["label"], "round-trip");
        assert_eq!(shown["address"], address.to_checksum(None));
        assert_eq!(shown["public_key"], public_key);
        let a = &shown["attributes"];
        assert_eq!(a["CKA_SENSITIVE"], true, "{shown}");
        assert_eq!(a["CKA_ALWAYS_SENSITIVE"], true, "{shown}");
        assert_eq!(a["CKA_EXTRACTABLE"], false, "{shown}");
        assert_eq!(a["CKA_NEVER_EXTRACTABLE"], true, "{shown}");
        assert_eq!(a["CKA_TOKEN"], true, "{shown}");
        assert_eq!(a["CKA_PRIVATE"], true, "{shown}");
        assert_eq!(shown["protected"], true, "{shown}");
    }

    // show, text.
    let shown = run(
        &with("show", direct(TOKEN, &["--label", "round-trip"])),
        PinFrom::Env(PIN),
    );
    let text = shown.ok();
    assert_eq!(field(text, "address"), address.to_checksum(None));
    let attr = |name: &str| {
        text.lines()
            .map(str::split_whitespace)
            .find_map(|mut w| (w.next() == Some(name)).then(|| w.next()))
            .flatten()
            .unwrap_or_else(|| panic!("no {name} line:\n{text}"))
    };
    assert_eq!(attr("CKA_SENSITIVE"), "true");
    assert_eq!(attr("CKA_EXTRACTABLE"), "false");
    assert_eq!(attr("CKA_NEVER_EXTRACTABLE"), "true");
    assert!(field(text, "protected").starts_with("yes"), "{text}");

    // The same label again is refused; the first key is untouched.
    run(
        &with("generate", direct(TOKEN, &["--label", "round-trip"])),
        PinFrom::Env(PIN),
    )
    .fails(1, &["already exists", "round-trip"]);
}

#[test]
fn config_file_gives_the_same_as_direct_flags() {
    let generated = run(
        &with(
            "generate",
            direct(
                TOKEN,
                &["--label", "from-config", "--id", "0xC0FFEE01", "--json"],
            ),
        ),
        PinFrom::Env(PIN),
    )
    .json();
    assert_eq!(generated["id"], "c0ffee01");

    // The agent's whole config file (checked by the agent's loader); the PIN comes from the
    // file named in [signer], so no env var is set for these runs.
    let pin_path = pin_file("config-pin", PIN);
    let config = hsm().dir.join("agent.toml");
    std::fs::write(
        &config,
        agent_config(&format!(
            "backend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\n\
             key_label = \"from-config\"\npin = {{ file = \"{}\" }}\nsessions = 1",
            pin_path.display()
        )),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    let by_config = run(&["show", "--config", cfg, "--json"], PinFrom::Nowhere).json();
    let by_flags = run(
        &with("show", direct(TOKEN, &["--label", "from-config", "--json"])),
        PinFrom::Env(PIN),
    )
    .json();
    assert_eq!(by_config, by_flags);
    assert_eq!(by_config["address"], generated["address"]);
    assert_eq!(by_config["attributes"], generated["attributes"]);

    // Text output is the same too.
    let text_config = run(&["show", "--config", cfg], PinFrom::Nowhere);
    let text_flags = run(
        &with("show", direct(TOKEN, &["--label", "from-config"])),
        PinFrom::Env(PIN),
    );
    assert_eq!(text_config.ok(), text_flags.ok());

    // Other tests add keys to the same token concurrently: compare this test's key only.
    let mine = |mut v: serde_json::Value| {
        v["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k["label"] == "from-config");
        v
    };
    let list_config = mine(run(&["list", "--config", cfg, "--json"], PinFrom::Nowhere).json());
    let list_flags = mine(run(&with("list", direct(TOKEN, &["--json"])), PinFrom::Env(PIN)).json());
    assert_eq!(list_config["keys"].as_array().unwrap().len(), 1);
    assert_eq!(list_config, list_flags);

    // --id overrides the file's key selection (here: the same key, by its id).
    let by_id = run(
        &["show", "--config", cfg, "--id", "c0ffee01", "--json"],
        PinFrom::Nowhere,
    )
    .json();
    assert_eq!(by_id, by_config);

    // `keys generate --config` creates the key the [signer] table names; --pin-file overrides
    // the file's PIN source.
    let config2 = hsm().dir.join("agent2.toml");
    std::fs::write(
        &config2,
        agent_config(&format!(
            "backend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\n\
             key_label = \"made-by-config\"\npin = {{ env = \"SOME_UNSET_PIN_VAR_4711\" }}"
        )),
    )
    .unwrap();
    let cfg2 = config2.to_str().unwrap();
    let pin_arg = pin_path.to_str().unwrap();
    let made = run(
        &[
            "generate",
            "--config",
            cfg2,
            "--pin-file",
            pin_arg,
            "--json",
        ],
        PinFrom::Nowhere,
    )
    .json();
    let shown = run(
        &with(
            "show",
            direct(TOKEN, &["--label", "made-by-config", "--json"]),
        ),
        PinFrom::Env(PIN),
    )
    .json();
    assert_eq!(made, shown);
    // Without --pin-file, the env var the file names is used, and its absence is explained.
    run(&["show", "--config", cfg2], PinFrom::Env(PIN))
        .fails(1, &["SOME_UNSET_PIN_VAR_4711 is not set", "--pin-file"]);
}

#[test]
fn wrong_pin_is_a_clear_error_from_env_and_from_file() {
    run(
        &with("list", direct(WRONG_PIN_TOKEN, &[])),
        PinFrom::Env(WRONG_PIN),
    )
    .fails(
        1,
        &[
            "wrong PIN",
            WRONG_PIN_TOKEN,
            "BRIDGE_PKCS11_PIN",
            "--pin-file",
        ],
    );
    let path = pin_file("wrong-pin", WRONG_PIN);
    let file = path.to_str().unwrap();
    run(
        &with(
            "show",
            direct(WRONG_PIN_TOKEN, &["--pin-file", file, "--label", "x"]),
        ),
        PinFrom::Env(PIN),
    )
    .fails(1, &["wrong PIN", WRONG_PIN_TOKEN]);
}

#[test]
fn missing_token_is_a_clear_error() {
    run(
        &with("list", direct("no-such-token", &[])),
        PinFrom::Env(PIN),
    )
    .fails(
        1,
        &[
            "no token labelled \"no-such-token\"",
            TOKEN,
            "--token-label",
        ],
    );
}

#[test]
fn missing_module_is_a_clear_error() {
    let missing = hsm().dir.join("no-such-pkcs11-module.so");
    let module = missing.to_str().unwrap();
    run(
        &[
            "list",
            "--backend",
            "pkcs11",
            "--module",
            module,
            "--token-label",
            TOKEN,
        ],
        PinFrom::Env(PIN),
    )
    .fails(1, &["cannot be loaded", module, "--module"]);
}

#[test]
fn unknown_key_is_a_clear_error() {
    run(
        &with("show", direct(TOKEN, &["--label", "never-generated"])),
        PinFrom::Env(PIN),
    )
    .fails(
        1,
        &[
            "no private key matching label \"never-generated\"",
            "keys list",
        ],
    );
    run(
        &with("show", direct(TOKEN, &["--id", "deadbeef"])),
        PinFrom::Env(PIN),
    )
    .fails(1, &["no private key matching id deadbeef"]);
}

#[test]
fn bad_flags_are_usage_errors_that_say_what_to_do() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "show",
                "--backend",
                "pkcs11",
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--id",
                "xyz",
            ],
            &["--id \"xyz\" is not hex", "keys list"],
        ),
        (
            &["list"],
            &["choose the signer", "--config FILE", "--backend pkcs11"],
        ),
        (
            &["list", "--backend", "pkcs11", "--token-label", TOKEN],
            &["--backend pkcs11 needs --module PATH"],
        ),
        (
            &["list", "--backend", "pkcs11", "--module", MODULE],
            &["--backend pkcs11 needs --token-label LABEL"],
        ),
        (
            &["list", "--config", "agent.toml", "--module", MODULE],
            &["--module cannot be used with --config FILE"],
        ),
        (
            &["list", "--config", "agent.toml", "--backend", "pkcs11"],
            &["--config FILE and --backend both choose the signer"],
        ),
        (
            &[
                "list",
                "--backend",
                "pkcs11",
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--region",
                "x",
            ],
            &["--region belong to --backend aws-kms"],
        ),
        (
            &[
                "show",
                "--backend",
                "aws-kms",
                "--module",
                MODULE,
                "--key-id",
                "k",
            ],
            &["--module belong to --backend pkcs11"],
        ),
        (
            &[
                "show",
                "--backend",
                "pkcs11",
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
            ],
            &["keys show needs --label NAME or --id HEX"],
        ),
        (
            &[
                "generate",
                "--backend",
                "pkcs11",
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
            ],
            &["keys generate needs --label NAME"],
        ),
    ];
    for (args, needles) in cases {
        run(args, PinFrom::Env(PIN)).fails(2, needles);
    }
}

#[test]
fn the_pin_is_never_a_command_line_value_and_a_missing_pin_is_explained() {
    // Refused, and the value given is not echoed (run() checks the PIN is not printed).
    for pin_arg in [&["--pin", PIN][..], &[&format!("--pin={PIN}")]] {
        let mut args = direct(TOKEN, &[]);
        args.extend_from_slice(pin_arg);
        run(&with("list", args), PinFrom::Nowhere)
            .fails(2, &["--pin is refused", "BRIDGE_PKCS11_PIN", "--pin-file"]);
    }
    run(&with("list", direct(TOKEN, &[])), PinFrom::Nowhere)
        .fails(1, &["BRIDGE_PKCS11_PIN is not set", "--pin-file"]);
    let missing = hsm().dir.join("no-such-pin-file");
    run(
        &with(
            "list",
            direct(TOKEN, &["--pin-file", missing.to_str().unwrap()]),
        ),
        PinFrom::Nowhere,
    )
    .fails(1, &["cannot read PIN file", "no-such-pin-file"]);
    // A PIN file works without the env var.
    let path = pin_file("good-pin", PIN);
    let listed = run(
        &with(
            "list",
            direct(TOKEN, &["--pin-file", path.to_str().unwrap(), "--json"]),
        ),
        PinFrom::Nowhere,
    )
    .json();
    assert!(listed["keys"].is_array(), "{listed}");
}

#[test]
fn help_teaches_with_examples() {
    let help = run(&["--help"], PinFrom::Nowhere);
    let text = help.ok();
    for needle in [
        "Examples",
        "keys generate --backend pkcs11",
        "BRIDGE_PKCS11_PIN",
        "--pin-file",
        "[signer]",
        "--config",
    ] {
        assert!(
            text.contains(needle),
            "keys --help lacks {needle:?}:\n{text}"
        );
    }
    for command in ["generate", "list", "show"] {
        let help = run(&[command, "--help"], PinFrom::Nowhere);
        let text = help.ok();
        assert!(text.contains("Examples"), "{text}");
        assert!(
            text.contains(&format!("bridge-agent keys {command}")),
            "{text}"
        );
        for flag in [
            "--config",
            "--backend",
            "--module",
            "--token-label",
            "--key-id",
            "--json",
        ] {
            assert!(
                text.contains(flag),
                "keys {command} --help lacks {flag}:\n{text}"
            );
        }
        assert!(
            !text.contains("--pin "),
            "the refused --pin flag is not advertised"
        );
    }
}

/// hsm-sim (the KMS protocol) on a free loopback port, on its own runtime for the whole run.
fn kms_endpoint() -> &'static str {
    static SIM: OnceLock<(tokio::runtime::Runtime, hsm_sim::HsmSim, String)> = OnceLock::new();
    &SIM.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        let sim = rt
            .block_on(hsm_sim::HsmSim::start(hsm_sim::Config::default()))
            .expect("start hsm-sim");
        let endpoint = sim.endpoint();
        (rt, sim, endpoint)
    })
    .2
}

/// Static credentials in the environment (the first link of the AWS chain), and nothing of the
/// machine's own AWS set-up.
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAKEYSCLITEST0001"),
    ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
    ("AWS_PROFILE", ""),
    ("AWS_SESSION_TOKEN", ""),
    ("AWS_REGION", "us-east-1"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn kms(command: &str, extra: &[&str]) -> Run {
    let endpoint = kms_endpoint();
    let mut args = vec![command, "--backend", "aws-kms", "--region", "us-east-1"];
    args.extend_from_slice(&["--endpoint", endpoint]);
    args.extend_from_slice(extra);
    run_with(&args, PinFrom::Nowhere, AWS_ENV)
}

#[test]
fn aws_kms_generate_then_list_then_show_agree_and_config_gives_the_same() {
    let generated = kms("generate", &["--label", "keys-cli-op", "--json"]).json();
    let address = generated["address"].as_str().expect("address").to_owned();
    let public_key = generated["public_key"].as_str().expect("public key");
    assert_eq!(
        address_of_public_key(public_key).to_checksum(None),
        address,
        "address is the key's"
    );
    assert_eq!(generated["label"], "alias/keys-cli-op");
    assert_eq!(generated["attributes"]["KeySpec"], "ECC_SECG_P256K1");
    assert_eq!(generated["attributes"]["KeyUsage"], "SIGN_VERIFY");
    assert_eq!(generated["protected"], true);

    let listed = kms("list", &["--json"]).json();
    let key = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "alias/keys-cli-op")
        .unwrap_or_else(|| panic!("key not listed: {listed}"));
    assert_eq!(key["address"], address.as_str());
    assert_eq!(key["id"], generated["id"]);

    let by_alias = kms("show", &["--key-id", "alias/keys-cli-op", "--json"]).json();
    assert_eq!(by_alias, generated);
    let id = generated["id"].as_str().unwrap();
    assert_eq!(kms("show", &["--key-id", id, "--json"]).json(), generated);

    let config = hsm().dir.join("agent-kms.toml");
    std::fs::write(
        &config,
        agent_config(&format!(
            "backend = \"aws-kms\"\nkey_id = \"alias/keys-cli-op\"\n\
             region = \"us-east-1\"\nendpoint = \"{}\"",
            kms_endpoint()
        )),
    )
    .unwrap();
    let by_config = run_with(
        &["show", "--config", config.to_str().unwrap(), "--json"],
        PinFrom::Nowhere,
        AWS_ENV,
    )
    .json();
    assert_eq!(by_config, generated);
}

#[test]
fn aws_kms_unknown_key_and_missing_key_id_are_clear_errors() {
    kms("show", &["--key-id", "alias/never-created"]).fails(
        1,
        &[
            "\"alias/never-created\" not found",
            "keys list --backend aws-kms",
        ],
    );
    kms("show", &[]).fails(2, &["needs --key-id ID"]);
    kms("show", &["--label", "keys-cli-op"]).fails(2, &["select a KMS key with --key-id"]);
}
