//! `bridge-agent`: the agent that carries value transfers between a parent chain and its service
//! chain, one vote per operator, through a guarded HSM/KMS signer.
//!
//! Per direction: [`watcher`] → [`planner`] → [`txmgr`] (→ the guarded signer), with [`recovery`]
//! re-feeding what was missed and [`auditor`] watching the other operators' votes; [`agent`]
//! wires them, [`store`] persists them, [`metrics`] and [`http`] expose them. The devnet and the
//! demo that run all of it locally are in `devkit/` (`bridge-dev`); ARCHITECTURE.md has the map.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_tx;
pub mod agent;
pub mod auditor;
pub mod bridge_check;
pub mod chain;
pub mod config;
pub mod contracts;
pub mod dialect;
pub mod direction;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod planner;
pub mod recovery;
pub mod rotation;
pub mod seats;
pub mod store;
pub mod txmgr;
pub mod votes;
pub mod watcher;
