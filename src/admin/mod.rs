//! `bridge-agent admin …`: the bridge owner's calls and the operators' configuration votes.
//!
//! ```text
//! AdminCall ─> per chain: read the bridge, check the input (owner? operator? threshold ≤
//!              operators? token registered? …) ── any problem ─> Invalid, NOTHING sent
//!           ─> sign: owner call ─> the owner key's backend (PKCS#11 or KMS; never a raw key)
//!                    vote       ─> this operator's own key through its guard + vote journal
//!           ─> send, wait for the receipt (admin_tx) ─> read the resulting value back
//! ```
//!
//! Configuration votes carry the bridge's `configurationNonce`; each operator runs the same
//! command with its own agent config, and the change applies when the configuration threshold
//! of identical votes is reached. The guard journals the vote under that nonce, so an operator
//! can never sign two different configuration votes for one nonce.

use crate::admin_tx::{self, AdminTx, AdminTxError, Mined, TxSigner};
use crate::chain::{ChainClient, ChainError};
use crate::config::{AgentConfig, Side};
use crate::contracts::Bridge;
use crate::rotation::{NewKey, RotationStore, keys};
use crate::store::Databases;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use bridge_signer::guard::Journal;
use bridge_signer::{Guard, Signer};
use std::sync::Arc;

/// A vote type of the bridge's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VoteType {
    /// Value transfers (handle votes): type 0.
    Value,
    /// Configuration votes: type 1.
    Config,
}

impl VoteType {
    pub fn id(self) -> u8 {
        match self {
            Self::Value => 0,
            Self::Config => 1,
        }
    }
}

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCall {
    // Owner calls.
    AcceptOwnership,
    RegisterOperator(Address),
    DeregisterOperator(Address),
    SetThreshold {
        vote_type: VoteType,
        threshold: u8,
    },
    RegisterToken {
        token: Address,
        counterpart: Address,
    },
    DeregisterToken(Address),
    Pause,
    Resume,
    SetFeeReceiver(Address),
    // Configuration votes (operators).
    VoteKlayFee(U256),
    VoteErc20Fee {
        token: Address,
        fee: U256,
    },
    VoteReplaceOperator {
        old: Address,
        new: Address,
    },
}

impl AdminCall {
    /// A configuration vote (signed by the operator's own key), not an owner call.
    pub fn is_vote(&self) -> bool {
        matches!(
            self,
            Self::VoteKlayFee(_) | Self::VoteErc20Fee { .. } | Self::VoteReplaceOperator { .. }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The command cannot work as written.
    #[error("{0}")]
    Usage(String),
    /// The input does not fit the bridge's state; nothing was sent.
    #[error("{side} bridge {bridge}: {reason} (nothing was sent)")]
    Invalid {
        side: Side,
        bridge: Address,
        reason: String,
    },
    #[error("{side} chain: {source}")]
    Chain { side: Side, source: ChainError },
    #[error("{side} chain: {source}")]
    Tx {
        side: Side,
        source: Box<AdminTxError>,
    },
    #[error("signer: {0}")]
    Signer(String),
}

/// What `admin` was asked to do.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub config: AgentConfig,
    pub sides: Vec<Side>,
    /// The owner's key, in the backend of the config's `[signer]` (owner calls only).
    pub owner_key: Option<NewKey>,
    pub call: AdminCall,
}

/// Read access to one bridge.
struct View<'a> {
    side: Side,
    client: &'a ChainClient,
    bridge: Address,
}

macro_rules! view {
    ($v:expr, $name:literal, |$b:ident| $call:expr) => {{
        let bridge = $v.bridge;
        $v.client
            .run($name, move |p| async move {
                let $b = Bridge::new(bridge, p);
                $call.call().await
            })
            .await
            .map_err(|source| AdminError::Chain {
                side: $v.side,
                source,
            })
    }};
}

impl View<'_> {
    fn invalid(&self, reason: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            side: self.side,
            bridge: self.bridge,
            reason: reason.into(),
        }
    }
    async fn owner(&self) -> Result<Address, AdminError> {
        view!(self, "Bridge.owner", |b| b.owner())
    }
    async fn pending_owner(&self) -> Result<Address, AdminError> {
        view!(self, "Bridge.pendingOwner", |b| b.pendingOwner())
    }
    async fn is_operator(&self, a: Address) -> Result<bool, AdminError> {
        view!(self, "Bridge.operators", |b| b.operators(a))
    }
    async fn operators(&self) -> Result<Vec<Address>, AdminError> {
        view!(self, "Bridge.getOperatorList", |b| b.getOperatorList())
    }
    async fn threshold(&self, t: u8) -> Result<u8, AdminError> {
        view!(self, "Bridge.operatorThresholds", |b| b
            .operatorThresholds(t))
    }
    async fn counterpart(&self, token: Address) -> Result<Address, AdminError> {
        view!(self, "Bridge.registeredTokens", |b| b
            .registeredTokens(token))
    }
    async fn is_running(&self) -> Result<bool, AdminError> {
        view!(self, "Bridge.isRunning", |b| b.isRunning())
    }
    async fn fee_receiver(&self) -> Result<Address, AdminError> {
        view!(self, "Bridge.feeReceiver", |b| b.feeReceiver())
    }
    async fn klay_fee(&self) -> Result<U256, AdminError> {
        view!(self, "Bridge.feeOfKLAY", |b| b.feeOfKLAY())
    }
    async fn erc20_fee(&self, token: Address) -> Result<U256, AdminError> {
        view!(self, "Bridge.feeOfERC20", |b| b.feeOfERC20(token))
    }
    async fn config_nonce(&self) -> Result<u64, AdminError> {
        view!(self, "Bridge.configurationNonce", |b| b
            .configurationNonce())
    }
    async fn has_code(&self, a: Address) -> Result<bool, AdminError> {
        self.client
            .run("eth_getCode", move |p| async move {
                alloy::providers::Provider::get_code_at(&p, a).await
            })
            .await
            .map(|code| !code.is_empty())
            .map_err(|source| AdminError::Chain {
                side: self.side,
                source,
            })
    }
}

/// Checks `call` against the bridge and returns the transaction that performs it.
async fn prepare(v: &View<'_>, call: &AdminCall, signer: Address) -> Result<AdminTx, AdminError> {
    let tx = |what: String, input: Vec<u8>| AdminTx {
        to: v.bridge,
        value: U256::ZERO,
        input: Bytes::from(input),
        what,
    };
    if call.is_vote() {
        if !v.is_operator(signer).await? {
            return Err(v.invalid(format!(
                "this operator's key {signer} holds no seat: configuration votes come from operators"
            )));
        }
    } else if *call == AdminCall::AcceptOwnership {
        let pending = v.pending_owner().await?;
        if pending != signer {
            return Err(v.invalid(format!(
                "ownership is not being transferred to {signer} (pending owner: {pending}); the \
                 current owner calls transferOwnership({signer}) first"
            )));
        }
    } else {
        let owner = v.owner().await?;
        if owner != signer {
            return Err(v.invalid(format!(
                "the owner key {signer} is not the bridge owner {owner}"
            )));
        }
    }
    let nonzero = |a: Address, what: &str| {
        if a.is_zero() {
            Err(v.invalid(format!("{what} is the zero address")))
        } else {
            Ok(())
        }
    };
    Ok(match *call {
        AdminCall::AcceptOwnership => tx(
            "acceptOwnership()".into(),
            Bridge::acceptOwnershipCall {}.abi_encode(),
        ),
        AdminCall::RegisterOperator(a) => {
            nonzero(a, "the operator")?;
            if v.is_operator(a).await? {
                return Err(v.invalid(format!("{a} is already an operator")));
            }
            if v.operators().await?.len() >= 32 {
                return Err(v.invalid("the operator set is full (32)"));
            }
            tx(
                format!("registerOperator({a})"),
                Bridge::registerOperatorCall { operator: a }.abi_encode(),
            )
        }
        AdminCall::DeregisterOperator(a) => {
            if !v.is_operator(a).await? {
                return Err(v.invalid(format!("{a} is not an operator (unknown address)")));
            }
            let left = v.operators().await?.len() - 1;
            for t in [VoteType::Value, VoteType::Config] {
                let th = v.threshold(t.id()).await?;
                if usize::from(th) > left {
                    return Err(v.invalid(format!(
                        "removing {a} leaves {left} operators, below the {t:?} threshold {th}; lower it first"
                    )));
                }
            }
            tx(
                format!("deregisterOperator({a})"),
                Bridge::deregisterOperatorCall { operator: a }.abi_encode(),
            )
        }
        AdminCall::SetThreshold {
            vote_type,
            threshold,
        } => {
            let n = v.operators().await?.len();
            if threshold == 0 || usize::from(threshold) > n {
                return Err(v.invalid(format!(
                    "threshold {threshold} must be between 1 and the operator count {n}"
                )));
            }
            tx(
                format!("setOperatorThreshold({vote_type:?}, {threshold})"),
                Bridge::setOperatorThresholdCall {
                    voteType: vote_type.id(),
                    threshold,
                }
                .abi_encode(),
            )
        }
        AdminCall::RegisterToken { token, counterpart } => {
            nonzero(token, "the token")?;
            nonzero(counterpart, "the counterpart token")?;
            if !v.has_code(token).await? {
                return Err(v.invalid(format!("{token} is not a contract on this chain")));
            }
            let have = v.counterpart(token).await?;
            if !have.is_zero() {
                return Err(v.invalid(format!(
                    "{token} is already registered (counterpart {have})"
                )));
            }
            tx(
                format!("registerToken({token}, {counterpart})"),
                Bridge::registerTokenCall {
                    token,
                    counterpartToken: counterpart,
                }
                .abi_encode(),
            )
        }
        AdminCall::DeregisterToken(token) => {
            if v.counterpart(token).await?.is_zero() {
                return Err(v.invalid(format!("{token} is not a registered token")));
            }
            tx(
                format!("deregisterToken({token})"),
                Bridge::deregisterTokenCall { token }.abi_encode(),
            )
        }
        AdminCall::Pause | AdminCall::Resume => {
            let run = *call == AdminCall::Resume;
            tx(
                format!("start({run})"),
                Bridge::startCall { status: run }.abi_encode(),
            )
        }
        AdminCall::SetFeeReceiver(a) => tx(
            format!("setFeeReceiver({a})"),
            Bridge::setFeeReceiverCall { receiver: a }.abi_encode(),
        ),
        AdminCall::VoteKlayFee(fee) => {
            let nonce = v.config_nonce().await?;
            tx(
                format!("setKLAYFee({fee}, configuration nonce {nonce})"),
                Bridge::setKLAYFeeCall {
                    fee,
                    requestNonce: nonce,
                }
                .abi_encode(),
            )
        }
        AdminCall::VoteErc20Fee { token, fee } => {
            if v.counterpart(token).await?.is_zero() {
                return Err(v.invalid(format!("{token} is not a registered token")));
            }
            let nonce = v.config_nonce().await?;
            tx(
                format!("setERC20Fee({token}, {fee}, configuration nonce {nonce})"),
                Bridge::setERC20FeeCall {
                    token,
                    fee,
                    requestNonce: nonce,
                }
                .abi_encode(),
            )
        }
        AdminCall::VoteReplaceOperator { old, new } => {
            nonzero(new, "the new operator")?;
            if !v.is_operator(old).await? {
                return Err(v.invalid(format!("{old} is not an operator (unknown address)")));
            }
            if v.is_operator(new).await? {
                return Err(v.invalid(format!("{new} is already an operator")));
            }
            let nonce = v.config_nonce().await?;
            tx(
                format!("replaceOperator({old}, {new}, configuration nonce {nonce})"),
                Bridge::replaceOperatorCall {
                    oldOperator: old,
                    newOperator: new,
                    nonce,
                }
                .abi_encode(),
            )
        }
    })
}

/// The on-chain value the call changed, read back after the receipt.
async fn result(v: &View<'_>, call: &AdminCall, nonce_before: u64) -> Result<String, AdminError> {
    Ok(match *call {
        AdminCall::AcceptOwnership => format!("owner() = {}", v.owner().await?),
        AdminCall::RegisterOperator(a) | AdminCall::DeregisterOperator(a) => format!(
            "operators({a}) = {}; {} operators",
            v.is_operator(a).await?,
            v.operators().await?.len()
        ),
        AdminCall::SetThreshold { vote_type, .. } => format!(
            "operatorThresholds({}) = {}",
            vote_type.id(),
            v.threshold(vote_type.id()).await?
        ),
        AdminCall::RegisterToken { token, .. } | AdminCall::DeregisterToken(token) => {
            format!(
                "registeredTokens({token}) = {}",
                v.counterpart(token).await?
            )
        }
        AdminCall::Pause | AdminCall::Resume => format!("isRunning() = {}", v.is_running().await?),
        AdminCall::SetFeeReceiver(_) => format!("feeReceiver() = {}", v.fee_receiver().await?),
        AdminCall::VoteKlayFee(_) => {
            vote_result(
                v,
                nonce_before,
                format!("feeOfKLAY() = {}", v.klay_fee().await?),
            )
            .await?
        }
        AdminCall::VoteErc20Fee { token, .. } => {
            let fee = v.erc20_fee(token).await?;
            vote_result(v, nonce_before, format!("feeOfERC20({token}) = {fee}")).await?
        }
        AdminCall::VoteReplaceOperator { old, new } => {
            let now = format!(
                "operators({old}) = {}, operators({new}) = {}",
                v.is_operator(old).await?,
                v.is_operator(new).await?
            );
            vote_result(v, nonce_before, now).await?
        }
    })
}

async fn vote_result(v: &View<'_>, nonce_before: u64, value: String) -> Result<String, AdminError> {
    let passed = v.config_nonce().await? > nonce_before;
    let threshold = v.threshold(VoteType::Config.id()).await?;
    Ok(if passed {
        format!("vote passed (threshold {threshold}): {value}")
    } else {
        format!(
            "vote recorded for configuration nonce {nonce_before}; it applies once {threshold} operators \
             voted the same (now: {value})"
        )
    })
}

/// Refuses `command` (it needs `replaceOperator`) on a bridge whose dialect has no key
/// rotation, before the signer is even connected.
async fn refuse_without_rotation(
    cfg: &AgentConfig,
    clients: &[(Side, ChainClient)],
    command: &str,
) -> Result<(), AdminError> {
    for (side, client) in clients {
        let target = crate::bridge_check::target(cfg, *side, None);
        let dialect = crate::bridge_check::dialect_of(client, &target)
            .await
            .map_err(|e| match e {
                crate::bridge_check::CheckError::Unreachable { source, .. } => AdminError::Chain {
                    side: *side,
                    source,
                },
                crate::bridge_check::CheckError::NotTheBridge {
                    finding: reason, ..
                }
                | crate::bridge_check::CheckError::Unsupported { reason, .. } => {
                    AdminError::Invalid {
                        side: *side,
                        bridge: target.bridge,
                        reason,
                    }
                }
            })?;
        if let Some(reason) = crate::bridge_check::rotation_unsupported(dialect, command) {
            return Err(AdminError::Invalid {
                side: *side,
                bridge: target.bridge,
                reason,
            });
        }
    }
    Ok(())
}

/// Runs `opts.call` on each chain in `opts.sides`: every check first, then the transactions.
pub async fn run(opts: AdminOptions, say: &dyn Fn(&str)) -> Result<(), AdminError> {
    let cfg = &opts.config;
    let mut clients = Vec::new();
    for &side in &opts.sides {
        let client = ChainClient::connect(crate::chain::access_config(cfg, side))
            .await
            .map_err(|source| AdminError::Chain { side, source })?;
        clients.push((side, client));
    }
    if let AdminCall::VoteReplaceOperator { .. } = opts.call {
        refuse_without_rotation(cfg, &clients, "admin vote replace-operator").await?;
    }
    let databases = Databases::open(cfg).map_err(|e| AdminError::Usage(e.to_string()))?;
    let store = databases
        .store()
        .map_err(|e| AdminError::Usage(e.to_string()))
        .and_then(|db| RotationStore::with_db(db).map_err(|e| AdminError::Usage(e.to_string())))?;
    // The signer per chain: the owner key, or the operator key holding the seat.
    let mut signers: Vec<Arc<dyn Signer>> = Vec::new();
    for &(side, _) in &clients {
        let signer_cfg = if opts.call.is_vote() {
            keys::seated(cfg, side, &store).map_err(|e| AdminError::Usage(e.to_string()))?
        } else {
            let key = opts.owner_key.as_ref().ok_or_else(|| {
                AdminError::Usage(
                    "owner commands are signed by the owner's key: pass --owner-key-label LABEL \
                     (PKCS#11, same token as [signer]) or --owner-kms-key ID (AWS KMS)"
                        .into(),
                )
            })?;
            keys::rotated(cfg.signer_for(side), key)
                .map_err(|e| AdminError::Usage(e.to_string()))?
        };
        signers.push(
            signer_cfg.connect().await.map_err(|e| {
                AdminError::Signer(format!("{} ({})", e, keys::describe(&signer_cfg)))
            })?,
        );
    }
    // Every check on every chain before anything is sent.
    let mut planned = Vec::new();
    for ((side, client), signer) in clients.iter().zip(&signers) {
        let v = View {
            side: *side,
            client,
            bridge: cfg.chain(*side).bridge,
        };
        let tx = prepare(&v, &opts.call, signer.address()).await?;
        let nonce = v.config_nonce().await?;
        planned.push((v, tx, nonce));
    }
    for ((v, tx, nonce_before), signer) in planned.iter().zip(&signers) {
        let chain = cfg.chain(v.side);
        say(&format!(
            "{}: {} from {} to bridge {} calldata {}",
            v.side,
            tx.what,
            signer.address(),
            v.bridge,
            tx.input
        ));
        let mined: Mined = if opts.call.is_vote() {
            let journal = open_journal(&databases, v.side)?;
            let guard = Guard::new(Arc::clone(signer), chain.chain_id, chain.bridge, journal);
            admin_tx::send(v.client, &chain.fees, &TxSigner::Guarded(&guard), tx).await
        } else {
            admin_tx::send(v.client, &chain.fees, &TxSigner::Plain(signer.as_ref()), tx).await
        }
        .map_err(|source| AdminError::Tx {
            side: v.side,
            source: Box::new(source),
        })?;
        say(&format!(
            "{}: mined in block {} (tx {}, gas {}): {}",
            v.side,
            mined.block,
            mined.tx_hash,
            mined.gas_used,
            result(v, &opts.call, *nonce_before).await?
        ));
    }
    Ok(())
}

/// The guard's journal of `side`, from `[store]`. No lease fence: an admin vote is sent by
/// the operator by hand, not by a replica (the journal still refuses a conflicting vote).
fn open_journal(databases: &Databases, side: Side) -> Result<Journal, AdminError> {
    databases
        .open_journal(side, None)
        .map_err(|e| AdminError::Signer(e.to_string()))
}
