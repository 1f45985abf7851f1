//! A local two-chain devnet: two anvil chains (parent and child), the bridge pair and test
//! tokens deployed and wired, ready for agents, tests and the demo.
//!
//! ```text
//!  parent anvil (lock/unlock)                      child anvil (mint/burn)
//!  ┌────────────────────────────┐                  ┌────────────────────────────┐
//!  │ Bridge(modeMintBurn=false) │ ◄─ counterparts ─► │ Bridge(modeMintBurn=true)  │
//!  │ ERC-20, ERC-721 (users)    │ ◄─ token pairs ──► │ ERC-20, ERC-721 (bridge    │
//!  │ native liquidity           │                  │ mints), native liquidity   │
//!  └────────────────────────────┘                  └────────────────────────────┘
//! ```
//!
//! Every seed on the child side is backed on the parent side (child-side tokens given to users
//! are matched by the same amount or ids locked in the parent bridge), so "locked = minted"
//! holds from the first block. Dropping a [`Devnet`] stops both chains.

mod anvil;
mod deploy;
mod description;
pub mod kaia;
pub mod stand_in;

pub(crate) use anvil::tail;
pub use anvil::{Anvil, AnvilOptions, locate_anvil};
pub use description::{ChainInfo, DevnetDescription};

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use bridge_agent::dialect::Dialect;
use std::path::PathBuf;

/// Errors of the devnet, each naming what failed and where to look.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(
        "anvil not found (looked at: {}); run ./scripts/setup to install it from npm, or set BRIDGE_ANVIL",
        searched.join(", ")
    )]
    AnvilNotFound { searched: Vec<String> },
    #[error("could not start anvil at {path}: {source}")]
    AnvilSpawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{name} chain: anvil exited ({status}); if it was starting, is the port already in use? last log lines:\n{log_tail}"
    )]
    AnvilExited {
        name: String,
        status: String,
        log_tail: String,
    },
    #[error("{name} chain: anvil did not report a listening port in time; see {log}")]
    AnvilStartTimeout { name: String, log: PathBuf },
    #[error("unexpected anvil output in {path}: {reason}")]
    AnvilOutput { path: PathBuf, reason: String },
    #[error("{path}: {1}", path = .0.display())]
    Io(PathBuf, std::io::Error),
    #[error("{chain} chain: {what} failed: {reason}")]
    Chain {
        chain: String,
        what: String,
        reason: String,
    },
    #[error("bad devnet options: {0}")]
    Options(String),
}

/// How to build the devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Folder for the chains' logs and the description JSON.
    pub dir: PathBuf,
    /// The anvil binary; `None` searches as [`locate_anvil`] does.
    pub anvil: Option<PathBuf>,
    pub parent_chain_id: u64,
    pub child_chain_id: u64,
    /// 0 picks free ports.
    pub parent_port: u16,
    pub child_port: u16,
    /// Seconds between blocks; `None` mines every transaction at once (automine).
    pub block_time: Option<u64>,
    /// Operator addresses registered on both bridges. Empty: the first `dev_operators` anvil
    /// dev accounts after the owner (throw-away keys, for tests and the interim demo).
    pub operators: Vec<Address>,
    /// How many dev accounts serve as operators when `operators` is empty (1..=4).
    pub dev_operators: usize,
    pub value_transfer_threshold: u8,
    pub configuration_threshold: u8,
    /// Which bridge contract to deploy: ours, or the Kaia-style stand-in for Kaia's deployed
    /// bridge (`contracts/src/test/kaia/`).
    pub dialect: Dialect,
    /// Kaia only: keep the seat the constructor gives the deployer (the owner), as a deployment
    /// that forgot to deregister it would. That seat never votes. Ignored for ours.
    pub keep_deployer_seat: bool,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(".devnet"),
            anvil: None,
            parent_chain_id: 31_001,
            child_chain_id: 31_002,
            parent_port: 0,
            child_port: 0,
            block_time: None,
            operators: Vec::new(),
            dev_operators: 4,
            value_transfer_threshold: 3,
            configuration_threshold: 3,
            dialect: Dialect::Ours,
            keep_deployer_seat: false,
        }
    }
}

/// anvil dev accounts: 0 is the owner and deployer, 1..=4 the default operators, 5.. users.
pub const DEV_ACCOUNTS: u32 = 10;
/// Seats a Kaia-style bridge holds at most, the deployer's included while it keeps it.
pub const KAIA_MAX_OPERATORS: usize = 12;
const MAX_DEV_OPERATORS: usize = 4;
const FIRST_USER: usize = 5;

/// Seeded amounts, in wei of the native coin or the token's smallest unit.
pub mod seed {
    use alloy::primitives::U256;
    /// `n` whole coins (18 decimals).
    pub fn coins(n: u64) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
    }
    /// Native payout liquidity put into each bridge.
    pub fn bridge_liquidity() -> U256 {
        coins(1_000)
    }
    /// ERC-20 each user holds on each chain.
    pub fn user_erc20() -> U256 {
        coins(1_000_000)
    }
    /// Gas money each operator is given on each chain if it has less.
    pub fn operator_gas() -> U256 {
        coins(100)
    }
    /// NFT ids per user per chain: parent ids `100*u + 1..=3`, child ids `100*u + 51..=53`.
    pub const NFTS_PER_USER: u64 = 3;
    pub fn parent_nft_ids(user: usize) -> impl Iterator<Item = U256> {
        (1..=NFTS_PER_USER).map(move |k| U256::from(100 * user as u64 + k))
    }
    pub fn child_nft_ids(user: usize) -> impl Iterator<Item = U256> {
        (51..51 + NFTS_PER_USER).map(move |k| U256::from(100 * user as u64 + k))
    }
    pub fn nft_uri(id: U256) -> String {
        format!("devnet://nft/{id}")
    }
}

/// One chain of the devnet with its deployed contracts.
#[derive(Debug)]
pub struct Side {
    pub anvil: Anvil,
    pub chain_id: u64,
    pub bridge: Address,
    pub bridge_deploy_block: u64,
    pub mode_mint_burn: bool,
    pub erc20: Address,
    pub erc721: Address,
}

impl Side {
    pub fn rpc_url(&self) -> String {
        self.anvil.rpc_url()
    }

    /// A provider that signs with `signer` (nonce, gas and chain id filled in).
    pub fn provider_with(&self, signer: PrivateKeySigner) -> DynProvider {
        let url = self.rpc_url().parse().expect("loopback URL is valid");
        ProviderBuilder::new()
            .wallet(signer)
            .connect_http(url)
            .erased()
    }

    /// A read-only provider.
    pub fn reader(&self) -> DynProvider {
        let url = self.rpc_url().parse().expect("loopback URL is valid");
        ProviderBuilder::new().connect_http(url).erased()
    }
}

/// A running devnet. Dropping it stops both chains.
#[derive(Debug)]
pub struct Devnet {
    pub parent: Side,
    pub child: Side,
    /// Which bridge contract both sides run.
    pub dialect: Dialect,
    /// The operators registered by the devnet (without a kept Kaia deployer seat).
    pub operators: Vec<Address>,
    /// Kaia only: the deployer (owner) still holds the seat its constructor gave it.
    pub deployer_seat_kept: bool,
    pub value_transfer_threshold: u8,
    pub configuration_threshold: u8,
    pub dir: PathBuf,
}

impl Devnet {
    /// Starts both chains, deploys and wires everything, and writes `devnet.json` in `opts.dir`.
    pub async fn start(opts: DevnetOptions) -> Result<Self, DevnetError> {
        let anvil_path = match &opts.anvil {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(DevnetError::AnvilNotFound {
                    searched: vec![p.display().to_string()],
                });
            }
            None => locate_anvil()?,
        };
        if opts.parent_chain_id == opts.child_chain_id {
            return Err(DevnetError::Options(format!(
                "parent and child chain ids must differ (both are {})",
                opts.parent_chain_id
            )));
        }
        let spawn = |name: &str, chain_id, port| {
            Anvil::spawn(
                &anvil_path,
                &opts.dir,
                &AnvilOptions {
                    name: name.into(),
                    chain_id,
                    port,
                    block_time: opts.block_time,
                    accounts: DEV_ACCOUNTS,
                },
            )
        };
        let parent = spawn("parent", opts.parent_chain_id, opts.parent_port)?;
        let child = spawn("child", opts.child_chain_id, opts.child_port)?;

        if opts.operators.is_empty() && !(1..=MAX_DEV_OPERATORS).contains(&opts.dev_operators) {
            return Err(DevnetError::Options(format!(
                "dev_operators must be between 1 and {MAX_DEV_OPERATORS}, not {}",
                opts.dev_operators
            )));
        }
        let operators = if opts.operators.is_empty() {
            (1..=opts.dev_operators)
                .map(|i| parent.dev_accounts()[i].address())
                .collect()
        } else {
            opts.operators.clone()
        };
        for (what, t) in [
            ("value-transfer", opts.value_transfer_threshold),
            ("configuration", opts.configuration_threshold),
        ] {
            if t == 0 || t as usize > operators.len() {
                return Err(DevnetError::Options(format!(
                    "{what} threshold {t} must be between 1 and the operator count {}",
                    operators.len()
                )));
            }
        }
        let owner = parent.dev_accounts()[0].address();
        let keep_deployer_seat = opts.dialect == Dialect::Kaia && opts.keep_deployer_seat;
        let seats =
            operators.len() + usize::from(keep_deployer_seat && !operators.contains(&owner));
        if opts.dialect == Dialect::Kaia && seats > KAIA_MAX_OPERATORS {
            return Err(DevnetError::Options(format!(
                "a Kaia-style bridge holds at most {KAIA_MAX_OPERATORS} operators, not {seats}{}",
                if keep_deployer_seat {
                    " (the kept deployer seat included)"
                } else {
                    ""
                }
            )));
        }
        let plan = deploy::Plan {
            dialect: opts.dialect,
            keep_deployer_seat,
            operators: operators.clone(),
            value_transfer_threshold: opts.value_transfer_threshold,
            configuration_threshold: opts.configuration_threshold,
            users: FIRST_USER..DEV_ACCOUNTS as usize,
        };
        let (parent, child) = deploy::deploy_pair(parent, child, &plan).await?;
        let devnet = Devnet {
            parent,
            child,
            dialect: opts.dialect,
            operators,
            deployer_seat_kept: keep_deployer_seat,
            value_transfer_threshold: opts.value_transfer_threshold,
            configuration_threshold: opts.configuration_threshold,
            dir: opts.dir,
        };
        devnet.description().write(&devnet.description_path())?;
        Ok(devnet)
    }

    /// The owner of both bridges and all test tokens (anvil dev account 0).
    pub fn owner(&self) -> PrivateKeySigner {
        self.parent.anvil.dev_accounts()[0].clone()
    }

    /// Funded dev accounts that hold seeded tokens on both chains; index `u` in this slice is
    /// the `user` argument of [`seed::parent_nft_ids`] and [`seed::child_nft_ids`].
    pub fn users(&self) -> Vec<PrivateKeySigner> {
        self.parent.anvil.dev_accounts()[FIRST_USER..].to_vec()
    }

    /// The keys of operators that are anvil dev accounts (all of them when the devnet chose its
    /// operators): throw-away keys for tests and the interim demo only. Real operators sign
    /// through an HSM or KMS.
    pub fn dev_operator_keys(&self) -> Vec<PrivateKeySigner> {
        self.parent.anvil.dev_accounts()[1..=MAX_DEV_OPERATORS]
            .iter()
            .filter(|k| self.operators.contains(&k.address()))
            .cloned()
            .collect()
    }

    pub fn description_path(&self) -> PathBuf {
        self.dir.join("devnet.json")
    }

    pub fn description(&self) -> DevnetDescription {
        DevnetDescription::of(self)
    }

    /// Fails if either chain's process has exited.
    pub fn check_alive(&mut self) -> Result<(), DevnetError> {
        self.parent.anvil.check_alive()?;
        self.child.anvil.check_alive()
    }
}
