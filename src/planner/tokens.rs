//! Counterpart tokens, read from the source bridge's registry as Kaia's sub-bridge node reads
//! them, and cached.
//!
//! Each bridge maps its own token to the other chain's (`registeredTokens`). The handle's token
//! is `registeredTokens(sourceToken)` on the **source** bridge (zero: not registered; the vote
//! waits and recovery retries). A reverse lookup in the destination's registry gives the same
//! address only while both bridges register the pair symmetrically; reading it where Kaia's node
//! does keeps the calldata byte-identical to its votes either way. A hit is kept; a miss is
//! asked again next time (a token registered later).

use super::PlanError;
use crate::chain::ChainClient;
use crate::contracts::Bridge;
use alloy::primitives::Address;
use std::collections::HashMap;
use tokio::sync::Mutex;

pub struct CounterpartTokens {
    source: ChainClient,
    /// The source bridge.
    bridge: Address,
    /// Source-chain token → destination-chain token.
    map: Mutex<HashMap<Address, Address>>,
}

impl CounterpartTokens {
    pub fn new(source: ChainClient, bridge: Address) -> Self {
        Self {
            source,
            bridge,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The destination token the source bridge pairs with `source_token`, if registered.
    pub async fn counterpart(&self, source_token: Address) -> Result<Option<Address>, PlanError> {
        if let Some(t) = self.map.lock().await.get(&source_token) {
            return Ok(Some(*t));
        }
        let bridge = self.bridge;
        let dest_token = self
            .source
            .run("Bridge.registeredTokens", move |p| async move {
                Bridge::new(bridge, p)
                    .registeredTokens(source_token)
                    .call()
                    .await
            })
            .await?;
        if dest_token == Address::ZERO {
            return Ok(None);
        }
        self.map.lock().await.insert(source_token, dest_token);
        Ok(Some(dest_token))
    }
}
