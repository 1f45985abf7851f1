//! `hsm-sim`: a simulator of an HSM behind the AWS KMS wire protocol, with fault injection.
//!
//! It serves the part of AWS KMS that a secp256k1 signer uses (`CreateKey`, `GetPublicKey`,
//! `Sign` over a digest, `DescribeKey`, `ListKeys`, `CreateAlias`, `ListAliases`) over loopback
//! HTTP, so the agent's aws-kms backend (aws-sdk-kms underneath) talks to it unchanged. On demand
//! it makes the faults a real server will not: added latency, injected error codes, throttling
//! bursts, outage windows and wrong signatures, all counted and all driven by a seedable random
//! generator. Keys live in memory only and are wiped on drop.
//!
//! ```text
//!  aws-sdk-kms ──POST / (X-Amz-Target: TrentService.Sign)──► server ─► faults ─► keystore
//!  test / operator ──GET|POST /admin/{faults,stats}────────► admin      (decide)   (k256)
//! ```
//!
//! In a test:
//!
//! ```no_run
//! # async fn demo() -> Result<(), hsm_sim::Error> {
//! let sim = hsm_sim::HsmSim::start(hsm_sim::Config::default()).await?;
//! let key_id = sim.create_key(Some("alias/bridge"))?;
//! // point aws-sdk-kms at sim.endpoint() with any static credentials …
//! sim.set_faults(hsm_sim::FaultConfig { throttle_burst: 2, ..Default::default() })?;
//! assert_eq!(sim.stats().calls_of("Sign"), 0);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod admin;
mod der;
pub mod faults;
pub mod keystore;
pub mod protocol;
mod server;
mod stats;

use std::net::SocketAddr;

pub use faults::{FaultConfig, FaultStatus, WrongSignature};
pub use protocol::{ErrorCode, Operation};
pub use server::HsmSim;
pub use stats::Stats;

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen; must be a loopback address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The faults in force from the start.
    pub faults: FaultConfig,
    /// The region written into ARNs (any region the client asks for is served).
    pub region: String,
    /// The account id written into ARNs.
    pub account_id: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: FaultConfig::default(),
            region: "us-east-1".to_owned(),
            account_id: "111122223333".to_owned(),
        }
    }
}

/// Why the simulator could not start or take a setting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "refusing to listen on {0}: hsm-sim serves loopback only; use 127.0.0.1:PORT (or [::1]:PORT)"
    )]
    NonLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid fault configuration: {}", .0.join("; "))]
    InvalidFaults(Vec<String>),
    #[error("{0}")]
    Kms(#[from] protocol::KmsError),
}
