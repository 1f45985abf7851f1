//! High availability under fire (issue 5): the talk's scenarios with the real binary, real
//! anvil chains and real SoftHSM (hsm-sim where a scenario needs signer faults). N = 4, t = 3
//! unless a scenario says otherwise. Every scenario ends with the harness's invariants: each
//! request executed exactly once with no gap, balances conserved, journals consistent with the
//! votes on chain, no stuck nonce.
//!
//! CI runs bounded versions; `BRIDGE_SOAK=1` scales load and durations up.

#[path = "../support/mod.rs"]
mod support;

mod alerts;
mod capped;
mod dest_reorg;
mod forged_votes;
mod gas_table;
mod kaia_failures;
mod kaia_stuck;
mod kaia_uri;
mod kill9;
mod network;
mod node_failure;
mod normal;
mod pool;
mod rate_limited;
mod recovery;
mod reorg;
mod replicas;
mod signer_faults;
