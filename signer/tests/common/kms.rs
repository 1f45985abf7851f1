//! Fixtures of the aws-kms tests: AWS credentials in the environment (the backend reads only the
//! standard chain), hsm-sim in process, and a moto server started from the pinned venv with its
//! `Sign(MessageType=DIGEST)` corrected.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bridge_signer::RetryPolicy;
use bridge_signer::aws_kms::AwsKmsConfig;
use hsm_sim::{Config, FaultConfig, HsmSim};

/// Access key id the tests put in the environment.
pub const ACCESS_KEY_ID: &str = "AKIABRIDGETESTKEY0001";
/// Secret the tests put in `AWS_SECRET_ACCESS_KEY`: it must never show in Debug or logs.
pub const SECRET_ACCESS_KEY: &str = "bridge-test-SECRET-7fa1c0de-never-print-me";
/// Region every test client uses.
pub const REGION: &str = "us-east-1";

const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv");
const LAUNCHER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/moto_kms_server.py"
);
/// A moto server lives at most this long, even if the test process is killed hard.
const MOTO_LIFETIME_SECS: u32 = 600;

static AWS_ENV: OnceLock<()> = OnceLock::new();

/// Puts static test credentials where the AWS default chain finds them first (the environment),
/// and keeps the chain away from any profile or instance metadata of the machine. Runs once per
/// test binary, before any client is built.
pub fn aws_env() {
    AWS_ENV.get_or_init(|| {
        // SAFETY (test only): runs once inside the OnceLock initialiser; every aws-kms test
        // calls it before building a client, i.e. before the SDK reads the environment.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/bridge-signer-test");
            std::env::set_var(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/bridge-signer-test",
            );
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

/// Runs a test body, failing it if it takes longer than `secs`.
pub async fn bounded<F: std::future::Future<Output = T>, T>(secs: u64, body: F) -> T {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .expect("test exceeded its time bound")
}

/// Retries fast enough for tests: `attempts` in total, 5 ms doubling up to 40 ms.
pub fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        initial_backoff_ms: 5,
        max_backoff_ms: 40,
    }
}

/// An aws-kms config for `key_id` on a KMS-protocol server at `endpoint`.
pub fn kms_config(endpoint: &str, key_id: &str) -> AwsKmsConfig {
    aws_env();
    let mut c = AwsKmsConfig::new(key_id);
    c.region = Some(REGION.into());
    c.endpoint = Some(endpoint.into());
    c.call_timeout_ms = 5_000;
    c.retry = fast_retry(5);
    c
}

/// hsm-sim on 127.0.0.1 with a free port, seeded, with `faults` in force from the start.
pub async fn sim(faults: FaultConfig) -> HsmSim {
    aws_env();
    HsmSim::start(Config {
        faults: FaultConfig {
            seed: Some(faults.seed.unwrap_or(11)),
            ..faults
        },
        ..Config::default()
    })
    .await
    .expect("start hsm-sim")
}

/// A moto server (AWS KMS protocol) on 127.0.0.1, killed on drop.
///
/// moto ≤ 5.2.5 hashes the digest again despite `MessageType=DIGEST` (upstream PR #10202). The
/// server is therefore started through `tests/support/moto_kms_server.py`, which replaces moto's
/// Sign handler for `MessageType=DIGEST` with one that signs the 32 bytes as given, as real KMS
/// does. That launcher also exits when its stdin closes (this process died) or after
/// `MOTO_LIFETIME_SECS`.
pub struct Moto {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts moto from `.venv`; panics with what to do if the venv is missing. Never skips.
    pub fn start() -> Self {
        aws_env();
        let moto_server = format!("{VENV}/bin/moto_server");
        let python = format!("{VENV}/bin/python");
        assert!(
            Path::new(&moto_server).is_file() && Path::new(&python).is_file(),
            "{moto_server} is missing: run ./scripts/setup in the repository root (it installs \
             moto[server]==5.2.5 from scripts/requirements-kms.txt into .venv)"
        );
        // Port 0: moto binds a free port and prints it (" * Running on http://127.0.0.1:PORT").
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let mut child = Command::new(&python)
            .arg(LAUNCHER)
            .arg("0")
            .arg(MOTO_LIFETIME_SECS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("moto log"))
            .spawn()
            .expect("start the moto launcher with .venv/bin/python");
        let stdin = child.stdin.take().expect("moto stdin");
        let mut moto = Moto {
            child,
            _stdin: stdin,
            port: 0,
            log,
        };
        if moto.wait_ready(Duration::from_secs(30)) {
            return moto;
        }
        panic!(
            "moto server did not start on 127.0.0.1; its log:\n{}",
            moto.log()
        );
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What moto wrote to stderr so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        let _ = self.log.reopen().and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// Waits for the port moto printed, then for it to accept a connection.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.port == 0 {
                self.port = self
                    .log()
                    .lines()
                    .find_map(|l| {
                        l.split("Running on http://127.0.0.1:")
                            .nth(1)?
                            .trim()
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0);
            }
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            if self.port != 0
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a key of `spec` directly in a KMS-protocol server (for the wrong-spec tests: the
/// backend itself only ever creates secp256k1 keys).
pub async fn create_raw_key(endpoint: &str, spec: aws_sdk_kms::types::KeySpec) -> String {
    aws_env();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .load()
        .await;
    let kms = aws_sdk_kms::Client::new(&config);
    kms.create_key()
        .key_spec(spec)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .expect("CreateKey")
        .key_metadata()
        .expect("KeyMetadata")
        .key_id()
        .to_owned()
}
