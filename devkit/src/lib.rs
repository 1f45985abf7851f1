//! `bridge-devkit`: what developing bridge-agent needs and its operators must never run. The
//! `bridge-dev` binary (`devnet up`, `demo`) and the one shared test-support crate of the
//! workspace: the local two-chain [`devnet`] (anvil launcher, deploy), the [`demo`] and its
//! traffic, [`softhsm`] token folders (PINs through PKCS#11, never on a command line), a throw-away
//! PostgreSQL server ([`postgres`]), bounded
//! waits ([`wait`]) and where the two binaries are ([`bins`]).
//!
//! The operator's `bridge-agent` does not depend on this crate (tests/operator_binary.rs checks
//! its dependency graph); the root package uses it as a dev-dependency only.
// Denied, not forbidden: `softhsm::set_conf` alone sets SoftHSM's environment variable.
#![deny(unsafe_code)]

pub mod bins;
pub mod demo;
pub mod devnet;
pub mod postgres;
pub mod softhsm;
pub mod wait;
