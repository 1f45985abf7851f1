//! `hsm-sim`: run the KMS-protocol HSM simulator until SIGINT or SIGTERM.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use hsm_sim::{Config, ErrorCode, FaultConfig, HsmSim, Operation, WrongSignature};

const AFTER_HELP: &str = "\
STDOUT
  Line 1 is the endpoint URL (e.g. http://127.0.0.1:41234): give it to aws-sdk-kms as
  endpoint_url, with any static credentials and any region. Then one line per --key:
  `key <KeyId> <alias>`. Logs go to stderr (RUST_LOG=debug for every call).

ADMIN ENDPOINT (same port, plain JSON)
  GET  /admin/faults         faults in force, throttle burst left, outage seconds left
  POST /admin/faults         replace them; fields as the flags, in snake_case, e.g.
                             {\"throttle_burst\":3}  {\"outage_secs\":10}  {\"error_rate\":0.2,
                             \"error_codes\":[\"KMSInternalException\"],\"seed\":7}  {} = no faults
  GET  /admin/stats          calls per operation, errors per code, faults per kind
  POST /admin/stats/reset    zero the counters
  POST /admin/keys           {\"alias\":\"alias/x\"}: create a key out of band

EXAMPLES
  hsm-sim --key alias/bridge
  hsm-sim --listen 127.0.0.1:4599 --latency-ms 50 --jitter-ms 20 --error-rate 0.1 --seed 1
  hsm-sim --throttle-burst 5 --operations Sign
  hsm-sim --wrong-signature other-key
  curl -s -XPOST localhost:4599/admin/faults -d '{\"outage_secs\":30}'";

/// A simulated HSM behind the AWS KMS JSON protocol (secp256k1 keys, ECDSA_SHA_256 over
/// digests), with fault injection for tests and demos. Keys live in memory only.
#[derive(Debug, Parser)]
#[command(name = "hsm-sim", version, after_long_help = AFTER_HELP, after_help = "See --help for the admin endpoint and examples.")]
struct Cli {
    /// Address to listen on; loopback only. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Create a key with this alias at start (repeatable), e.g. alias/bridge.
    #[arg(long = "key", value_name = "ALIAS")]
    keys: Vec<String>,

    /// Region written into ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Account id written into ARNs.
    #[arg(long, default_value = "111122223333")]
    account_id: String,

    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    latency_ms: u64,

    /// Plus a uniform random 0..=JITTER milliseconds.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    jitter_ms: u64,

    /// Probability in [0, 1] that a call fails with one of --error-codes.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    error_rate: f64,

    /// KMS error codes --error-rate draws from (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ThrottlingException,KMSInternalException,DependencyTimeoutException",
        help_heading = "Faults"
    )]
    error_codes: Vec<ErrorCode>,

    /// The first N calls fail with ThrottlingException.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    throttle_burst: u32,

    /// Every call fails with --outage-code for the first SECS seconds.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "SECS",
        help_heading = "Faults"
    )]
    outage_secs: f64,

    /// The error code an outage answers with.
    #[arg(
        long,
        default_value = "DependencyTimeoutException",
        help_heading = "Faults"
    )]
    outage_code: ErrorCode,

    /// Sign returns a valid signature over another digest (other-digest) or by another key
    /// (other-key) instead of the one asked for.
    #[arg(
        long,
        default_value = "off",
        value_name = "off|other-digest|other-key",
        help_heading = "Faults"
    )]
    wrong_signature: WrongSignature,

    /// Probability in [0, 1] of a high-s signature, as real KMS gives about half the time.
    #[arg(long, default_value_t = 0.5, help_heading = "Faults")]
    high_s_rate: f64,

    /// Operations the faults apply to (comma-separated); all if omitted.
    #[arg(long, value_delimiter = ',', help_heading = "Faults")]
    operations: Vec<Operation>,

    /// Seed of the fault randomness, for reproducible runs.
    #[arg(long, help_heading = "Faults")]
    seed: Option<u64>,
}

impl Cli {
    fn faults(&self) -> FaultConfig {
        FaultConfig {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            error_rate: self.error_rate,
            error_codes: self.error_codes.clone(),
            throttle_burst: self.throttle_burst,
            outage_secs: self.outage_secs,
            outage_code: self.outage_code,
            wrong_signature: self.wrong_signature,
            high_s_rate: self.high_s_rate,
            operations: self.operations.clone(),
            seed: self.seed,
        }
    }
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("cannot listen for SIGINT")?; Ok("SIGINT") }
        _ = term.recv() => Ok("SIGTERM"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config {
        listen: cli.listen,
        faults: cli.faults(),
        region: cli.region.clone(),
        account_id: cli.account_id.clone(),
    };
    let sim = HsmSim::start(config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", sim.endpoint())?;
    for alias in &cli.keys {
        let id = sim
            .create_key(Some(alias))
            .with_context(|| format!("cannot create a key with alias {alias}"))?;
        writeln!(out, "key {id} {alias}")?;
    }
    out.flush()?;
    drop(out);
    let signal = shutdown_signal().await?;
    tracing::info!(signal, stats = ?sim.stats(), "shutting down");
    sim.shutdown().await;
    Ok(())
}
