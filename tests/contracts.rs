//! Contract tests: the bridge pair on a real two-chain anvil devnet, driven through the Rust
//! bindings. Each test brings up its own devnet (4 operators, threshold 3, unless it says
//! otherwise) and asserts outcomes: balances, events, storage views and revert errors.

#[path = "contracts/support.rs"]
mod support;

#[path = "contracts/admin.rs"]
mod admin;
#[path = "contracts/fees.rs"]
mod fees;
#[path = "contracts/kaia.rs"]
mod kaia;
#[path = "contracts/nonces.rs"]
mod nonces;
#[path = "contracts/reentrancy.rs"]
mod reentrancy;
#[path = "contracts/rotation.rs"]
mod rotation;
#[path = "contracts/transfers.rs"]
mod transfers;
#[path = "contracts/uri.rs"]
mod uri;
#[path = "contracts/voting.rs"]
mod voting;
