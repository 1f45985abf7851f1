//! The devnet description: one JSON file telling agents, scripts and people where everything is.

use super::{Devnet, DevnetError, Side};
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetDescription {
    pub parent: ChainInfo,
    pub child: ChainInfo,
    /// Owner of both bridges and of the test tokens (anvil dev account 0).
    pub owner: Address,
    pub operators: Vec<Address>,
    pub value_transfer_threshold: u8,
    pub configuration_threshold: u8,
    /// Dev accounts holding seeded tokens on both chains.
    pub users: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainInfo {
    pub chain_id: u64,
    pub rpc_url: String,
    pub ws_url: String,
    pub bridge: Address,
    /// Block the bridge was deployed in: where a watcher starts.
    pub bridge_deploy_block: u64,
    pub mode_mint_burn: bool,
    pub erc20: Address,
    pub erc721: Address,
    pub anvil_log: PathBuf,
}

impl ChainInfo {
    fn of(side: &Side) -> Self {
        Self {
            chain_id: side.chain_id,
            rpc_url: side.anvil.rpc_url(),
            ws_url: side.anvil.ws_url(),
            bridge: side.bridge,
            bridge_deploy_block: side.bridge_deploy_block,
            mode_mint_burn: side.mode_mint_burn,
            erc20: side.erc20,
            erc721: side.erc721,
            anvil_log: side.anvil.log_path().to_owned(),
        }
    }
}

impl DevnetDescription {
    pub(super) fn of(d: &Devnet) -> Self {
        Self {
            parent: ChainInfo::of(&d.parent),
            child: ChainInfo::of(&d.child),
            owner: d.owner().address(),
            operators: d.operators.clone(),
            value_transfer_threshold: d.value_transfer_threshold,
            configuration_threshold: d.configuration_threshold,
            users: d.users().iter().map(|u| u.address()).collect(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), DevnetError> {
        let text = serde_json::to_string_pretty(self).expect("description serialises");
        std::fs::write(path, text + "\n").map_err(|e| DevnetError::Io(path.to_owned(), e))
    }

    pub fn read(path: &Path) -> Result<Self, DevnetError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| DevnetError::Io(path.to_owned(), e))?;
        serde_json::from_str(&text)
            .map_err(|e| DevnetError::Options(format!("{}: {e}", path.display())))
    }
}
