//! Deploys and wires the bridge pair and the test tokens on the two devnet chains.

use super::kaia::KaiaStyleBridge;
use super::{Anvil, DevnetError, Side, seed};
use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use bridge_agent::contracts::{
    Bridge, ServiceChainNFT, ServiceChainToken, VOTE_TYPE_CONFIGURATION, VOTE_TYPE_VALUE_TRANSFER,
};
use bridge_agent::dialect::Dialect;
use std::ops::Range;

pub(super) struct Plan {
    pub dialect: Dialect,
    /// Kaia: leave the deployer the seat its constructor registered.
    pub keep_deployer_seat: bool,
    pub operators: Vec<Address>,
    pub value_transfer_threshold: u8,
    pub configuration_threshold: u8,
    /// Indexes into anvil's dev accounts.
    pub users: Range<usize>,
}

/// Sends owner transactions on one chain and turns every failure into a [`DevnetError`]
/// that names the chain and the step.
struct Deployer {
    chain: &'static str,
    owner: Address,
    provider: DynProvider,
}

impl Deployer {
    fn new(chain: &'static str, anvil: &Anvil) -> Self {
        let owner = anvil.dev_accounts()[0].clone();
        let url = anvil.rpc_url().parse().expect("loopback URL is valid");
        let address = owner.address();
        let provider = ProviderBuilder::new()
            .wallet(owner)
            .connect_http(url)
            .erased();
        Self {
            chain,
            owner: address,
            provider,
        }
    }

    fn err(&self, what: &str, reason: impl ToString) -> DevnetError {
        DevnetError::Chain {
            chain: self.chain.into(),
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    async fn send(
        &self,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<TransactionReceipt, DevnetError> {
        let pending = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(|e| self.err(what, e))?;
        let receipt = pending.get_receipt().await.map_err(|e| self.err(what, e))?;
        if !receipt.status() {
            return Err(self.err(
                what,
                format!("transaction {} reverted", receipt.transaction_hash),
            ));
        }
        Ok(receipt)
    }

    async fn deploy(
        &self,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<(Address, u64), DevnetError> {
        let receipt = self.send(&format!("deploy {what}"), tx).await?;
        let address = receipt.contract_address.ok_or_else(|| {
            self.err(&format!("deploy {what}"), "receipt has no contract address")
        })?;
        let block = receipt.block_number.unwrap_or_default();
        Ok((address, block))
    }
}

/// What one side has after its own deployment, before the pair is wired together.
struct Deployed {
    deployer: Deployer,
    bridge: Address,
    deploy_block: u64,
    erc20: Address,
    erc721: Address,
}

async fn deploy_side(
    deployer: Deployer,
    mint_burn: bool,
    plan: &Plan,
) -> Result<Deployed, DevnetError> {
    let p = &deployer.provider;
    let label = if mint_burn { "Child" } else { "Parent" };
    let (bridge, deploy_block) = match plan.dialect {
        Dialect::Ours => {
            deployer
                .deploy(
                    "Bridge",
                    Bridge::deploy_builder(p, mint_burn)
                        .value(seed::bridge_liquidity())
                        .into_transaction_request(),
                )
                .await?
        }
        Dialect::Kaia => {
            deployer
                .deploy(
                    "KaiaStyleBridge",
                    KaiaStyleBridge::deploy_builder(p, mint_burn)
                        .value(seed::bridge_liquidity())
                        .into_transaction_request(),
                )
                .await?
        }
    };
    let (erc20, _) = deployer
        .deploy(
            "ServiceChainToken",
            ServiceChainToken::deploy_builder(
                p,
                format!("{label} Test Token"),
                format!("{}TT", &label[..1]),
            )
            .into_transaction_request(),
        )
        .await?;
    let (erc721, _) = deployer
        .deploy(
            "ServiceChainNFT",
            ServiceChainNFT::deploy_builder(
                p,
                format!("{label} Test NFT"),
                format!("{}NFT", &label[..1]),
            )
            .into_transaction_request(),
        )
        .await?;
    let b = Bridge::new(bridge, p);
    if mint_burn {
        let t = ServiceChainToken::new(erc20, p);
        deployer
            .send(
                "make the bridge an ERC-20 minter",
                t.setMinter(bridge, true).into_transaction_request(),
            )
            .await?;
        let n = ServiceChainNFT::new(erc721, p);
        deployer
            .send(
                "make the bridge an ERC-721 minter",
                n.setMinter(bridge, true).into_transaction_request(),
            )
            .await?;
    }
    // The agent-facing and owner ABI is the same on both dialects: `Bridge` drives either.
    let owner = deployer.owner;
    let kaia = plan.dialect == Dialect::Kaia;
    if kaia && !plan.keep_deployer_seat && !plan.operators.contains(&owner) {
        deployer
            .send(
                "deregister the deployer's constructor seat",
                b.deregisterOperator(owner).into_transaction_request(),
            )
            .await?;
    }
    for op in &plan.operators {
        if kaia && *op == owner {
            // The constructor registered it already.
            continue;
        }
        deployer
            .send(
                &format!("register operator {op}"),
                b.registerOperator(*op).into_transaction_request(),
            )
            .await?;
        if p.get_balance(*op)
            .await
            .map_err(|e| deployer.err("read operator balance", e))?
            < seed::operator_gas()
        {
            p.anvil_set_balance(*op, seed::operator_gas())
                .await
                .map_err(|e| deployer.err(&format!("fund operator {op}"), e))?;
        }
    }
    for (vote_type, t) in [
        (VOTE_TYPE_VALUE_TRANSFER, plan.value_transfer_threshold),
        (VOTE_TYPE_CONFIGURATION, plan.configuration_threshold),
    ] {
        deployer
            .send(
                &format!("set threshold {t} for vote type {vote_type}"),
                b.setOperatorThreshold(vote_type, t)
                    .into_transaction_request(),
            )
            .await?;
    }
    Ok(Deployed {
        deployer,
        bridge,
        deploy_block,
        erc20,
        erc721,
    })
}

/// Deploys both sides, registers the token pairs and counterparts, and seeds the users.
pub(super) async fn deploy_pair(
    parent: Anvil,
    child: Anvil,
    plan: &Plan,
) -> Result<(Side, Side), DevnetError> {
    let (pd, cd) = tokio::try_join!(
        deploy_side(Deployer::new("parent", &parent), false, plan),
        deploy_side(Deployer::new("child", &child), true, plan),
    )?;
    for (me, other) in [(&pd, &cd), (&cd, &pd)] {
        let b = Bridge::new(me.bridge, &me.deployer.provider);
        me.deployer
            .send(
                "set counterpart bridge",
                b.setCounterPartBridge(other.bridge)
                    .into_transaction_request(),
            )
            .await?;
        me.deployer
            .send(
                "register ERC-20 pair",
                b.registerToken(me.erc20, other.erc20)
                    .into_transaction_request(),
            )
            .await?;
        me.deployer
            .send(
                "register ERC-721 pair",
                b.registerToken(me.erc721, other.erc721)
                    .into_transaction_request(),
            )
            .await?;
    }
    seed_users(&pd, &cd, &parent, plan).await?;
    let side = |anvil: Anvil, d: Deployed, chain_id: u64, mode_mint_burn| Side {
        anvil,
        chain_id,
        bridge: d.bridge,
        bridge_deploy_block: d.deploy_block,
        mode_mint_burn,
        erc20: d.erc20,
        erc721: d.erc721,
    };
    let parent_id = chain_id(&pd.deployer).await?;
    let child_id = chain_id(&cd.deployer).await?;
    Ok((
        side(parent, pd, parent_id, false),
        side(child, cd, child_id, true),
    ))
}

async fn chain_id(d: &Deployer) -> Result<u64, DevnetError> {
    d.provider
        .get_chain_id()
        .await
        .map_err(|e| d.err("read chain id", e))
}

/// Gives every user tokens on both chains. Each child-side token is backed by the same amount
/// or id locked in the parent bridge, so "locked = minted" holds from the start.
async fn seed_users(
    pd: &Deployed,
    cd: &Deployed,
    parent: &Anvil,
    plan: &Plan,
) -> Result<(), DevnetError> {
    let p20 = ServiceChainToken::new(pd.erc20, &pd.deployer.provider);
    let c20 = ServiceChainToken::new(cd.erc20, &cd.deployer.provider);
    let p721 = ServiceChainNFT::new(pd.erc721, &pd.deployer.provider);
    let c721 = ServiceChainNFT::new(cd.erc721, &cd.deployer.provider);
    let amount = seed::user_erc20();
    for (u, idx) in plan.users.clone().enumerate() {
        let user = parent.dev_accounts()[idx].address();
        pd.deployer
            .send(
                "seed parent ERC-20",
                p20.mint(user, amount).into_transaction_request(),
            )
            .await?;
        cd.deployer
            .send(
                "seed child ERC-20",
                c20.mint(user, amount).into_transaction_request(),
            )
            .await?;
        for id in seed::parent_nft_ids(u) {
            pd.deployer
                .send(
                    "seed parent ERC-721",
                    p721.mintWithTokenURI(user, id, seed::nft_uri(id))
                        .into_transaction_request(),
                )
                .await?;
        }
        for id in seed::child_nft_ids(u) {
            cd.deployer
                .send(
                    "seed child ERC-721",
                    c721.mintWithTokenURI(user, id, seed::nft_uri(id))
                        .into_transaction_request(),
                )
                .await?;
            pd.deployer
                .send(
                    "lock parent ERC-721 backing",
                    p721.mintWithTokenURI(pd.bridge, id, seed::nft_uri(id))
                        .into_transaction_request(),
                )
                .await?;
        }
    }
    let backing = amount * U256::from(plan.users.len());
    pd.deployer
        .send(
            "lock parent ERC-20 backing",
            p20.mint(pd.bridge, backing).into_transaction_request(),
        )
        .await?;
    Ok(())
}
