//! `bridge-agent`: the agent that carries value transfers between a parent chain and its service
//! chain, one vote per operator, through a guarded HSM/KMS signer.
//!
//! Today the crate holds the contract bindings ([`contracts`]), the local two-chain devnet
//! ([`devnet`]) that tests and the demo run on, and the interim demo ([`demo`]). The watcher,
//! vote planner, tx manager, recovery, store and HTTP endpoints arrive with issue #4.
#![forbid(unsafe_code)]

pub mod agent;
pub mod chain;
pub mod config;
pub mod contracts;
pub mod demo;
pub mod devnet;
pub mod direction;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod planner;
pub mod recovery;
pub mod store;
pub mod txmgr;
pub mod votes;
pub mod watcher;
