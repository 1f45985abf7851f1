//! Counterpart tokens from the destination bridge's registry, cached.
//!
//! The destination maps its own token → the source-chain token (`registeredTokens`), so the
//! handle's token is found by the reverse lookup over `getRegisteredTokenList()`. The map is
//! read once and re-read on a miss (a token registered later).

use super::PlanError;
use crate::chain::ChainClient;
use crate::contracts::Bridge;
use alloy::primitives::Address;
use std::collections::HashMap;
use tokio::sync::Mutex;

pub struct CounterpartTokens {
    dest: ChainClient,
    bridge: Address,
    /// Source-chain token → destination-chain token.
    map: Mutex<HashMap<Address, Address>>,
}

impl CounterpartTokens {
    pub fn new(dest: ChainClient, bridge: Address) -> Self {
        Self {
            dest,
            bridge,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The destination token whose counterpart is `source_token`, if registered.
    pub async fn counterpart(&self, source_token: Address) -> Result<Option<Address>, PlanError> {
        let mut map = self.map.lock().await;
        if let Some(t) = map.get(&source_token) {
            return Ok(Some(*t));
        }
        *map = self.read_registry().await?;
        Ok(map.get(&source_token).copied())
    }

    async fn read_registry(&self) -> Result<HashMap<Address, Address>, PlanError> {
        let bridge = self.bridge;
        let list = self
            .dest
            .run("Bridge.getRegisteredTokenList", move |p| async move {
                Bridge::new(bridge, p).getRegisteredTokenList().call().await
            })
            .await?;
        let mut map = HashMap::with_capacity(list.len());
        for dest_token in list {
            let source_token = self
                .dest
                .run("Bridge.registeredTokens", move |p| async move {
                    Bridge::new(bridge, p)
                        .registeredTokens(dest_token)
                        .call()
                        .await
                })
                .await?;
            if source_token != Address::ZERO {
                map.insert(source_token, dest_token);
            }
        }
        Ok(map)
    }
}
