//! No PIN, credential or API key ever reaches `Debug`, `Display`, an error or a log line.
//!
//! Each test plants known secrets (a PIN, AWS credentials, API keys in endpoint paths, queries
//! and user info), drives the code that handles them (config loading and validation, both
//! signer backends for real, the agent binary at trace level) and searches everything printed
//! for them. Log output of this process is captured by a global subscriber at TRACE for every
//! crate; the binary's is read from its stderr. Each test also checks that the surrounding,
//! non-secret text *is* there, so that an empty output cannot pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bridge_agent::config::{self, ConfigError};
use bridge_devkit::devnet::{Devnet, DevnetOptions};
use bridge_signer::aws_kms::{AwsKmsClient, AwsKmsConfig, AwsKmsSigner};
use bridge_signer::pkcs11::{Pkcs11Config, Pkcs11Signer, Pkcs11Token};
use bridge_signer::{Pin, PinSource, Signer};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "secrets-test";

const PIN: &str = "PIN-Zq8vR2-user";
const WRONG_PIN: &str = "PIN-Wk3mT7-wrong";
const SO_PIN: &str = "SO-PIN-Hx5nL1";
const AWS_KEY_ID: &str = "AKIASECRETSTEST7Q2Z";
const AWS_SECRET: &str = "AWS-SECRET-Jt6pW9aQ/sK";
const AWS_SESSION: &str = "AWS-SESSION-Bv4cN8";
const RPC_PATH_KEY: &str = "RPCPATHKEY-Mu2dF5";
const RPC_QUERY_KEY: &str = "RPCQUERYKEY-Ey9gH3";
const RPC_USERINFO: &str = "RPCUSERPW-Lr7sK4";
const WS_PATH_KEY: &str = "WSPATHKEY-Pa1xC6";
const WS_QUERY_KEY: &str = "WSQUERYKEY-Tb3kM8";
const KMS_QUERY_KEY: &str = "KMSQUERYKEY-Nd8bV2";
const KMS_USERINFO: &str = "KMSUSERPW-Gc5tY0";
const STORE_PASSWORD: &str = "SECRET-StorePw-Qv6";

/// Every planted secret.
const SECRETS: &[&str] = &[
    PIN,
    WRONG_PIN,
    SO_PIN,
    AWS_KEY_ID,
    AWS_SECRET,
    AWS_SESSION,
    RPC_PATH_KEY,
    RPC_QUERY_KEY,
    RPC_USERINFO,
    WS_PATH_KEY,
    WS_QUERY_KEY,
    KMS_QUERY_KEY,
    KMS_USERINFO,
    STORE_PASSWORD,
];

/// The env var an `rpc = { env = … }` source reads.
const RPC_ENV: &str = "SECRETS_TEST_CHILD_RPC";

fn assert_hidden(what: &str, text: &str) {
    let leaks: Vec<String> = text
        .lines()
        .filter(|l| SECRETS.iter().any(|s| l.contains(s)))
        .map(|l| {
            let names: Vec<&&str> = SECRETS.iter().filter(|s| l.contains(**s)).collect();
            format!("{names:?} in: {}", l.chars().take(400).collect::<String>())
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{what} prints secrets:\n{}",
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------- log capture

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Once per process: TRACE for every crate into [`LOGS`], and the environment the tests need.
fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // What the agent binary installs for `level = "trace"`.
        tracing_subscriber::fmt()
            .with_env_filter(bridge_agent::logging::env_filter("trace"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .init();
        // SAFETY: set once, under the OnceLock, before any test body reads them; nothing else
        // in this process writes the environment.
        unsafe {
            std::env::set_var(
                RPC_ENV,
                format!("https://operator:{RPC_USERINFO}@node2.example:8443/"),
            );
            std::env::set_var("AWS_ACCESS_KEY_ID", AWS_KEY_ID);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", AWS_SECRET);
            std::env::set_var("AWS_SESSION_TOKEN", AWS_SESSION);
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        }
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------- config

fn pin_file(dir: &Path) -> PathBuf {
    let path = dir.join("pin");
    std::fs::write(&path, format!("{PIN}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A valid config whose endpoints and signer carry every kind of secret the file may hold.
fn secret_laden_config(dir: &Path) -> String {
    format!(
        r#"
[agent]
data_dir = "{dir}/data"

[signer]
backend = "pkcs11"
module = "{MODULE}"
token_label = "{TOKEN}"
key_label = "operator"
pin = {{ file = "{pin}" }}

[parent]
chain_id = 1001
rpc = ["https://node.example/v3/{RPC_PATH_KEY}", "https://node.example:8545/?apikey={RPC_QUERY_KEY}"]
ws = "wss://node.example/ws/{WS_PATH_KEY}"
bridge = "0x00000000000000000000000000000000000000b1"

[child]
chain_id = 1002
rpc = [{{ env = "{RPC_ENV}" }}]
bridge = "0x00000000000000000000000000000000000000b2"
signer = {{ backend = "aws-kms", key_id = "alias/op", region = "us-east-1", endpoint = "https://kms.example:4443/" }}
"#,
        dir = dir.display(),
        pin = pin_file(dir).display(),
    )
}

#[test]
fn loaded_config_prints_no_secret() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let text = secret_laden_config(dir.path());
    let cfg = config::load_str(&text, Path::new("op.toml")).unwrap_or_else(|e| panic!("{e}"));
    // Secrets are really in there (the child RPC came from the environment)...
    assert!(cfg.parent.rpc[0].expose().path().contains(RPC_PATH_KEY));
    assert_eq!(cfg.child.rpc[0].expose().password(), Some(RPC_USERINFO));
    // ...and no printed form shows them.
    for (what, printed) in [
        ("AgentConfig {:?}", format!("{cfg:?}")),
        ("AgentConfig {:#?}", format!("{cfg:#?}")),
        (
            "Endpoint Display",
            cfg.parent
                .rpc
                .iter()
                .chain(&cfg.child.rpc)
                .chain(&cfg.parent.ws)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "parent signer",
            format!("{:?}", cfg.signer_for(config::Side::Parent)),
        ),
        (
            "child signer",
            format!("{:?}", cfg.signer_for(config::Side::Child)),
        ),
    ] {
        assert_hidden(what, &printed);
        assert!(
            printed.contains("node") || printed.contains("Pkcs11") || printed.contains("Kms"),
            "{what}: {printed}"
        );
    }
    assert!(format!("{cfg:?}").contains("node.example"));
    assert_hidden("logs", &logs());
}

/// Every way a secret can be written wrongly into the file is reported without echoing it.
/// Each case replaces one table of the valid file, so its own problem is what gets reported.
#[test]
fn config_errors_print_no_secret() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let pkcs11 = format!(
        "backend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"t\"\nkey_label = \"k\""
    );
    let parent = |line: &str| {
        format!(
            "chain_id = 1001\nbridge = \"0x00000000000000000000000000000000000000b1\"\n\
             rpc = [\"http://127.0.0.1:8545\"]\n{line}"
        )
    };
    let cases: Vec<(&str, &str, String)> = vec![
        ("inline PIN", "signer", format!("{pkcs11}\npin = \"{PIN}\"")),
        (
            "PIN under an unknown source key",
            "signer",
            format!("{pkcs11}\npin = {{ value = \"{PIN}\" }}"),
        ),
        (
            "PIN as an array",
            "signer",
            format!("{pkcs11}\npin = [\"{PIN}\"]"),
        ),
        (
            "inline PIN in a chain's signer",
            "parent",
            parent(&format!(
                "signer = {{ backend = \"pkcs11\", module = \"m\", token_label = \"t\", key_label = \"k\", pin = \"{PIN}\" }}"
            )),
        ),
        (
            "credentials inline in an RPC URL",
            "child",
            format!(
                "chain_id = 1002\nbridge = \"0x00000000000000000000000000000000000000b2\"\n\
                 rpc = [\"https://user:{RPC_USERINFO}@node.example/v3/{RPC_PATH_KEY}\"]"
            ),
        ),
        (
            "RPC URL with the wrong scheme",
            "child",
            format!(
                "chain_id = 1002\nbridge = \"0x00000000000000000000000000000000000000b2\"\n\
                 rpc = [\"ftp://node.example/{RPC_PATH_KEY}?k={RPC_QUERY_KEY}\"]"
            ),
        ),
        (
            "RPC URL that does not parse",
            "child",
            format!(
                "chain_id = 1002\nbridge = \"0x00000000000000000000000000000000000000b2\"\n\
                 rpc = [\"https://node.example:99999/{RPC_PATH_KEY}\"]"
            ),
        ),
        (
            "RPC URL given as a string, not a list",
            "child",
            format!(
                "chain_id = 1002\nbridge = \"0x00000000000000000000000000000000000000b2\"\n\
                 rpc = \"https://node.example/{RPC_PATH_KEY}\""
            ),
        ),
        (
            "WebSocket URL with the wrong scheme",
            "parent",
            parent(&format!("ws = \"https://node.example/ws/{WS_PATH_KEY}\"")),
        ),
        (
            "KMS endpoint with credentials",
            "signer",
            format!(
                "backend = \"aws-kms\"\nkey_id = \"k\"\n\
                 endpoint = \"https://AKID:{KMS_USERINFO}@kms.example/?t={KMS_QUERY_KEY}\""
            ),
        ),
        (
            "KMS endpoint with a query string",
            "signer",
            format!(
                "backend = \"aws-kms\"\nkey_id = \"k\"\nendpoint = \"https://kms.example/?token={KMS_QUERY_KEY}\""
            ),
        ),
        (
            "KMS endpoint without a scheme",
            "signer",
            format!(
                "backend = \"aws-kms\"\nkey_id = \"k\"\nendpoint = \"kms.example/{KMS_QUERY_KEY}\""
            ),
        ),
        (
            "AWS secret written as an unknown key",
            "signer",
            format!("backend = \"aws-kms\"\nkey_id = \"k\"\nsecret_access_key = \"{AWS_SECRET}\""),
        ),
        (
            "database URL written inline",
            "store",
            format!(
                "backend = \"postgres\"\nurl = \"postgres://u:{STORE_PASSWORD}@db.example/bridge\""
            ),
        ),
        (
            "database URL inline, beside a bad key",
            "store",
            format!(
                "backend = \"postgres\"\nurl = \"postgres://u:{STORE_PASSWORD}@db.example/bridge\"\n\
                 tls = \"prefer\""
            ),
        ),
        (
            "database URL under an unknown source key",
            "store",
            format!(
                "backend = \"postgres\"\nurl = {{ value = \"postgres://u:{STORE_PASSWORD}@h/db\" }}"
            ),
        ),
        (
            "database URL with the sqlite backend",
            "store",
            format!("url = \"postgres://u:{STORE_PASSWORD}@db.example/bridge\""),
        ),
    ];
    let base = secret_laden_config(dir.path());
    for (what, table, body) in cases {
        let text = replace_table(&base, table, &body);
        let err: ConfigError = match config::load_str(&text, Path::new("op.toml")) {
            Ok(_) => panic!("{what}: accepted:\n{text}"),
            Err(e) => e,
        };
        let display = err.to_string();
        assert_hidden(what, &display);
        assert_hidden(what, &format!("{err:?}"));
        // The problem is reported where it is, not somewhere else.
        assert!(
            err.problems.iter().any(|p| p.path.starts_with(table)),
            "{what}: {display}"
        );
    }
    assert_hidden("logs", &logs());
}

/// `text` with table `[name]` (up to the next table header) replaced by `[name]` + `body`;
/// an optional table the base config leaves out (`[store]`) is added at the end.
fn replace_table(text: &str, name: &str, body: &str) -> String {
    let header = format!("[{name}]\n");
    let Some(start) = text.find(&header) else {
        return format!("{text}\n{header}{body}\n");
    };
    let rest = &text[start + header.len()..];
    let end = rest
        .find("\n[")
        .map_or(text.len(), |i| start + header.len() + i + 1);
    format!("{}{header}{body}\n{}", &text[..start], &text[end..])
}

#[test]
fn pin_types_print_no_pin() {
    init();
    let pin = Pin::new(PIN);
    assert_eq!(format!("{pin:?}"), "Pin(REDACTED)");
    let dir = tempfile::tempdir().unwrap();
    let path = pin_file(dir.path());
    let source = PinSource::File(path.clone());
    assert_hidden("PinSource", &format!("{source:?}"));
    assert_eq!(source.load().unwrap().expose(), PIN);
    std::fs::write(&path, "").unwrap();
    let err = source.load().unwrap_err();
    assert_hidden("PinError", &format!("{err} {err:?}"));
}

// ---------------------------------------------------------------- signers, for real

#[tokio::test]
async fn aws_kms_signer_prints_no_credentials() {
    init();
    let sim = hsm_sim::HsmSim::start(hsm_sim::Config::default())
        .await
        .unwrap();
    let mut cfg = AwsKmsConfig::new("alias/secrets-test");
    cfg.region = Some("us-east-1".into());
    // A query string is refused (the SDK would ignore it, and log it).
    cfg.endpoint = Some(format!(
        "{}/?X-Amz-Security-Token={KMS_QUERY_KEY}",
        sim.endpoint()
    ));
    let err = AwsKmsSigner::connect(&cfg).await.unwrap_err();
    assert!(err.to_string().contains("query string"), "{err}");
    assert_hidden(
        "AwsKmsSigner::connect error (query)",
        &format!("{err} {err:?}"),
    );
    cfg.endpoint = Some(sim.endpoint());
    cfg.retry.max_attempts = 1;

    // No such key yet: the error names the key, not the credentials.
    let err = AwsKmsSigner::connect(&cfg).await.unwrap_err();
    let printed = format!("{err} {err:?}");
    assert!(printed.contains("secrets-test"), "{printed}");
    assert_hidden("AwsKmsSigner::connect error", &printed);

    let client = AwsKmsClient::from_config(&cfg).await.unwrap();
    client.create_key(Some("secrets-test"), None).await.unwrap();
    let signer = AwsKmsSigner::connect(&cfg).await.unwrap();
    signer
        .sign_hash(&alloy::primitives::B256::repeat_byte(7))
        .await
        .unwrap();
    let printed = format!(
        "{signer:?} {cfg:?} {:?}",
        bridge_signer::SignerConfig::AwsKms(cfg.clone())
    );
    assert!(printed.contains("alias/secrets-test"), "{printed}");
    assert_hidden("AwsKmsSigner / AwsKmsConfig Debug", &printed);
    let logs = logs();
    assert!(
        logs.contains("aws-kms signer ready"),
        "logs not captured:\n{logs}"
    );
    assert_hidden("logs", &logs);
}

/// SoftHSM with the right and the wrong PIN, then the agent binary at trace level with an API
/// key in its RPC URL. One test: SOFTHSM2_CONF is process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_signer_and_agent_binary_print_no_secret() {
    init();
    assert!(
        Path::new(MODULE).is_file(),
        "{MODULE} missing: run ./scripts/setup"
    );
    let dir = tempfile::tempdir().unwrap();
    // The token is made through PKCS#11 (devkit): neither PIN on a command line.
    let hsm = bridge_devkit::softhsm::SoftHsmDir::create(dir.path()).unwrap();
    hsm.init_token(TOKEN, PIN, SO_PIN).unwrap();
    // SAFETY: the only test in this binary that loads SoftHSM, and it sets this first; the
    // variable is read by SoftHSM when the module is initialised, below.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &hsm.conf) };

    // Wrong PIN: a clear error, without either PIN.
    // (Opening does not log in; the first use does.)
    let wrong = Pkcs11Token::open(MODULE, TOKEN, Pin::new(WRONG_PIN))
        .await
        .unwrap();
    let err = wrong.list_keys().await.map(|_| ()).unwrap_err();
    drop(wrong);
    let printed = format!("{err} {err:?}");
    assert!(printed.to_lowercase().contains("pin"), "{printed}");
    assert_hidden("wrong-PIN error", &printed);

    // The signer with a PIN file holding the wrong PIN (before anything logs in: PKCS#11
    // login state is per process, and a second login counts as success).
    let wrong_pin = dir.path().join("wrong-pin");
    std::fs::write(&wrong_pin, WRONG_PIN).unwrap();
    let mut wrong = Pkcs11Config::new(MODULE, TOKEN, PinSource::File(wrong_pin));
    wrong.key_label = Some("operator".into());
    let err = Pkcs11Signer::connect(&wrong).await.unwrap_err();
    assert_hidden("Pkcs11Signer::connect error", &format!("{err} {err:?}"));

    let token = Pkcs11Token::open(MODULE, TOKEN, Pin::new(PIN))
        .await
        .unwrap();
    token.generate_key("operator", None).await.unwrap();
    let pin = pin_file(dir.path());
    let mut cfg = Pkcs11Config::new(MODULE, TOKEN, PinSource::File(pin.clone()));
    cfg.key_label = Some("operator".into());
    let signer = Pkcs11Signer::connect(&cfg).await.unwrap();
    signer
        .sign_hash(&alloy::primitives::B256::repeat_byte(9))
        .await
        .unwrap();
    assert_hidden(
        "Pkcs11Signer / Pkcs11Config Debug",
        &format!("{signer:?} {cfg:?}"),
    );
    drop(signer);
    drop(token);
    assert_hidden("logs", &logs());

    agent_binary_at_trace_level(dir.path(), &pin).await;
}

/// `bridge-agent config check` and `run` (log level trace, JSON lines) on a devnet whose RPC
/// URLs carry an API key in the query: nothing secret on stdout or stderr.
async fn agent_binary_at_trace_level(dir: &Path, pin: &Path) {
    let d = Devnet::start(DevnetOptions {
        dir: dir.join("devnet"),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let chain = |name: &str, s: &bridge_devkit::devnet::Side| {
        format!(
            "[{name}]\nchain_id = {}\nrpc = [\"{url}/?apikey={RPC_QUERY_KEY}\"]\n\
             ws = \"{ws}/?apikey={WS_QUERY_KEY}\"\nbridge = \"{}\"\n\
             deploy_block = {}\npoll_interval_ms = 100\nrpc_timeout_ms = 2000\nmin_balance = \"0\"\n",
            s.chain_id,
            s.bridge,
            s.bridge_deploy_block,
            url = s.rpc_url().trim_end_matches('/'),
            ws = s.anvil.ws_url().trim_end_matches('/'),
        )
    };
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndata_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [log]\nformat = \"json\"\nlevel = \"trace\"\n\
             [signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\n\
             key_label = \"operator\"\npin = {{ file = \"{}\" }}\n{}\n{}",
            dir.join("agent").display(),
            pin.display(),
            chain("parent", &d.parent),
            chain("child", &d.child),
        ),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_bridge-agent");

    let check = Command::new(exe)
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{printed}");
    assert_hidden("config check", &printed);

    let log = dir.join("agent.log");
    let mut agent = Command::new(exe)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Until the agent is running (it logs so once both directions started), bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("agent running")
    {
        if let Some(status) = agent.try_wait().unwrap() {
            panic!(
                "agent exited early ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "agent did not start in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Port 0: the agent published the address the system gave it, and serves there.
    let published = std::fs::read_to_string(dir.join("agent").join("http.addr")).unwrap();
    let addr: std::net::SocketAddr = published.trim().parse().unwrap();
    assert!(addr.port() != 0, "{published}");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
    // `status` finds the agent through the published address too.
    let status = Command::new(exe)
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let status_out = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status_out.contains(&format!("agent at http://{addr}")),
        "{status_out}"
    );
    assert_hidden("status", &status_out);
    // A few polling rounds at trace level.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "agent ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    // Trace really was on, and the endpoints were logged (redacted).
    assert!(
        text.contains("TRACE") || text.contains("\"level\":\"TRACE\""),
        "{text}"
    );
    assert!(text.contains("127.0.0.1"), "{text}");
    // SIGTERM ends the PKCS#11 module cleanly: the signer's sessions closed and the module
    // finalized before the process exits (nothing left for SoftHSM's exit to race with).
    assert!(
        text.contains("PKCS#11 module finalized"),
        "no finalize on SIGTERM:\n{text}"
    );
    assert!(agent.wait().unwrap().success());
    assert_hidden("agent run log (trace)", &text);
}

// ---------------------------------------------------------------- every subcommand

/// `admin --config {config} --chain parent --owner-key-label owner <the rest>`.
macro_rules! admin {
    ($($arg:expr),*) => {
        ["admin", "--config", "{config}", "--chain", "parent", "--owner-key-label", "owner", $($arg),*]
    };
}

/// How each subcommand that reads the config is run (`{config}`: the file). The test checks
/// this list against the command tree the binary's `--help` shows, so a new subcommand that
/// takes `--config` fails here until it is added.
const CONFIG_COMMANDS: &[(&str, &[&str])] = &[
    ("run", &["run", "--config", "{config}"]),
    ("status", &["status", "--config", "{config}"]),
    ("config check", &["config", "check", "--config", "{config}"]),
    (
        "keys generate",
        &["keys", "generate", "--config", "{config}"],
    ),
    ("keys list", &["keys", "list", "--config", "{config}"]),
    ("keys show", &["keys", "show", "--config", "{config}"]),
    (
        "keys rotate",
        &["keys", "rotate", "--config", "{config}", "--yes"],
    ),
    ("admin accept-ownership", &admin!["accept-ownership"]),
    (
        "admin register-operator",
        &admin!["register-operator", ADDR],
    ),
    (
        "admin deregister-operator",
        &admin!["deregister-operator", ADDR],
    ),
    (
        "admin set-threshold",
        &admin!["set-threshold", "--vote-type", "value", "1"],
    ),
    (
        "admin register-token",
        &admin!["register-token", ADDR, ADDR2],
    ),
    ("admin deregister-token", &admin!["deregister-token", ADDR]),
    ("admin pause", &admin!["pause"]),
    ("admin resume", &admin!["resume"]),
    ("admin set-fee-receiver", &admin!["set-fee-receiver", ADDR]),
    (
        "admin vote set-klay-fee",
        &admin!["vote", "set-klay-fee", "1"],
    ),
    (
        "admin vote set-erc20-fee",
        &admin!["vote", "set-erc20-fee", ADDR, "1"],
    ),
    (
        "admin vote replace-operator",
        &admin!["vote", "replace-operator", ADDR, ADDR2],
    ),
];

const ADDR: &str = "0x00000000000000000000000000000000000000a1";
const ADDR2: &str = "0x00000000000000000000000000000000000000a2";

/// Every subcommand path of the binary (`["keys", "list"]`…), from `--help`, with whether it
/// or a command above it takes `--config`.
fn command_tree(exe: &str, path: &mut Vec<String>, above: bool, out: &mut Vec<(String, bool)>) {
    let help = Command::new(exe)
        .args(&*path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success(), "{path:?} --help failed");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let takes_config = above
        || text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("--config <") || l.starts_with("-c, --config <")
        });
    let mut subcommands = Vec::new();
    let mut in_commands = false;
    for line in text.lines() {
        if line == "Commands:" {
            in_commands = true;
        } else if in_commands && !line.starts_with("  ") {
            break;
        } else if in_commands && !line.starts_with("   ") {
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                subcommands.push(name.to_owned());
            }
        }
    }
    if subcommands.is_empty() {
        out.push((path.join(" "), takes_config));
    }
    for name in subcommands {
        path.push(name);
        command_tree(exe, path, takes_config, out);
        path.pop();
    }
}

/// Runs the binary with `args`, bounded in time; stdout + stderr and the exit code.
fn run_bounded(args: &[String]) -> (Option<i32>, String) {
    let exe = env!("CARGO_BIN_EXE_bridge-agent");
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(exe)
        .args(args)
        .env_remove("BRIDGE_PKCS11_PIN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{args:?} still running after 30 s with a broken config");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let printed = format!(
        "{}{}",
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&err).unwrap()
    );
    (status.code(), printed)
}

/// Every subcommand that reads the config, given a config with a secret written where it must
/// not be (an inline PIN), a syntax error on a line holding an API key, and a bad RPC URL
/// holding a key: each fails, names the file, the line and the field, and prints no secret.
#[test]
fn every_config_subcommand_fails_clearly_without_echoing_a_secret() {
    init();
    let exe = env!("CARGO_BIN_EXE_bridge-agent");
    let mut tree = Vec::new();
    command_tree(exe, &mut Vec::new(), false, &mut tree);
    let mut with_config: Vec<&str> = tree
        .iter()
        .filter(|(_, c)| *c)
        .map(|(p, _)| p.as_str())
        .collect();
    let mut listed: Vec<&str> = CONFIG_COMMANDS.iter().map(|(name, _)| *name).collect();
    with_config.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        with_config, listed,
        "the subcommands taking --config (left, from --help) and the ones this test runs (right) differ"
    );
    // The walk went three levels deep, and the operator's binary has no development commands
    // (`devnet`, `demo` are `bridge-dev`'s).
    assert!(
        tree.iter().any(|(p, _)| p == "admin vote replace-operator"),
        "{tree:?}"
    );
    assert!(
        !tree
            .iter()
            .any(|(p, _)| p.starts_with("devnet") || p.starts_with("demo")),
        "{tree:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let base = secret_laden_config(dir.path());
    let parent = |rpc_line: &str| {
        format!(
            "chain_id = 1001\n{rpc_line}\nbridge = \"0x00000000000000000000000000000000000000b1\""
        )
    };
    let pkcs11 = format!(
        "backend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{TOKEN}\"\nkey_label = \"k\""
    );
    // (case, table replaced, its new body, the line holding the secret, what must be named)
    let cases = [
        (
            "inline PIN",
            "signer",
            format!("{pkcs11}\npin = \"{PIN}\""),
            format!("pin = \"{PIN}\""),
            "signer.pin",
        ),
        (
            "unterminated string holding an API key",
            "parent",
            parent(&format!("rpc = [\"https://node.example/v3/{RPC_PATH_KEY}")),
            format!("rpc = [\"https://node.example/v3/{RPC_PATH_KEY}"),
            "TOML syntax",
        ),
        (
            "syntax error on the line of an API key",
            "parent",
            parent(&format!(
                "rpc = [\"https://node.example/?apikey={RPC_QUERY_KEY}\"] {RPC_PATH_KEY}"
            )),
            format!("rpc = [\"https://node.example/?apikey={RPC_QUERY_KEY}\"] {RPC_PATH_KEY}"),
            "TOML syntax",
        ),
        (
            "RPC URL that does not parse, holding a key",
            "parent",
            parent(&format!(
                "rpc = [\"https://node.example:99999/v3/{RPC_PATH_KEY}\"]"
            )),
            format!("rpc = [\"https://node.example:99999/v3/{RPC_PATH_KEY}\"]"),
            "parent.rpc[0]",
        ),
        (
            "database URL written inline",
            "store",
            format!(
                "backend = \"postgres\"\nurl = \"postgres://u:{STORE_PASSWORD}@db.example/bridge\""
            ),
            format!("url = \"postgres://u:{STORE_PASSWORD}@db.example/bridge\""),
            "store.url",
        ),
    ];
    for (case, table, body, secret_line, field) in &cases {
        let text = replace_table(&base, table, body);
        let line = 1 + text
            .lines()
            .position(|l| l == secret_line)
            .unwrap_or_else(|| panic!("{case}: line not in the file"));
        let config = dir.path().join("op.toml");
        std::fs::write(&config, &text).unwrap();
        let config = config.to_str().unwrap();
        for (name, template) in CONFIG_COMMANDS {
            let args: Vec<String> = template
                .iter()
                .map(|a| a.replace("{config}", config))
                .collect();
            let (code, printed) = run_bounded(&args);
            let what = format!("{name} with {case}");
            assert_hidden(&what, &printed);
            assert!(
                matches!(code, Some(c) if c != 0),
                "{what}: exit {code:?}:\n{printed}"
            );
            for needle in [config, &format!("line {line},"), field] {
                assert!(
                    printed.contains(needle),
                    "{what}: does not name {needle:?}:\n{printed}"
                );
            }
        }
    }
}
