//! Is the configured address this chain's bridge, which dialect does it speak, and does this
//! operator's key hold a seat on it? Asked before the first vote (and again on every RPC
//! failover, `watch.rs`), and by `config check --online`: one check, shared.
//!
//! ```text
//!  eth_getCode ─> code?  ── no ──> refused: "no code at 0x… (not a contract on this chain)"
//!  requestNonce, lowerHandleNonce, getOperatorList,       ── revert / no data ──> refused,
//!  operatorThresholds(0|1), counterpartBridge              naming the view and its answer
//!  counterpartBridge == the other chain's configured bridge? ── no ──> refused (another pair)
//!  voteOf(0, 0, 0x0) answers one 32-byte word ──> ours, else kaia (its payable fallback
//!                                                 answers unknown selectors with no data)
//!  operators(key) ──> seated or not
//! ```
//!
//! A transport failure is not a verdict ([`CheckError::Unreachable`]): the caller retries.

pub mod watch;

use alloy::primitives::{Address, Bytes};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

use crate::chain::{ChainClient, ChainError};
use crate::config::{AgentConfig, Side};
use crate::contracts::{Bridge, VOTE_TYPE_CONFIGURATION, VOTE_TYPE_VALUE_TRANSFER};
use crate::dialect::Dialect;

/// What to check on one chain.
#[derive(Debug, Clone)]
pub struct Target {
    /// The chain's name in messages (`parent` / `child`).
    pub chain: String,
    /// The configured bridge.
    pub bridge: Address,
    /// The other chain's configured bridge: this bridge's `counterpartBridge` must be it.
    pub counterpart: Address,
    /// This operator's key on this chain, if known (`None`: the seat is not checked).
    pub operator: Option<Address>,
    /// `<chain>.dialect` from the config, if pinned.
    pub configured: Option<Dialect>,
}

/// Whether the operator's key holds a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seat {
    Seated(Address),
    NotSeated(Address),
    /// No key given (e.g. `config check --online` without the signer).
    NotChecked,
}

/// What a passed check read from the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub chain: String,
    pub bridge: Address,
    /// The dialect the agent uses: the configured one if pinned, else [`Report::detected`].
    pub dialect: Dialect,
    /// What the bridge itself answered.
    pub detected: Dialect,
    pub request_nonce: u64,
    pub lower_handle_nonce: u64,
    pub operators: Vec<Address>,
    pub value_threshold: u8,
    pub configuration_threshold: u8,
    pub seat: Seat,
    /// Things an operator should look at that do not stop voting (a config override that
    /// disagrees with the bridge, a threshold of 1 with several seats, …).
    pub warnings: Vec<String>,
}

impl Report {
    /// Votes may be sent: the bridge checked out and the key holds a seat.
    pub fn can_vote(&self) -> bool {
        matches!(self.seat, Seat::Seated(_))
    }

    /// The line an operator reads when the key holds no seat.
    pub fn seat_problem(&self) -> Option<String> {
        match self.seat {
            Seat::NotSeated(key) => Some(format!(
                "{} bridge {}: this operator's key {key} holds no seat (operators({key}) is false; \
                 {} seats: {}); it votes nothing until the bridge owner registers it \
                 (`bridge-agent admin register-operator {key}`) or [signer] names a seated key",
                self.chain,
                self.bridge,
                self.operators.len(),
                list(&self.operators)
            )),
            _ => None,
        }
    }
}

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The address is not the bridge the config needs; the finding says what it answered.
    #[error("{chain} bridge {bridge}: {finding}")]
    NotTheBridge {
        chain: String,
        bridge: Address,
        finding: String,
    },
    /// The bridge is fine, but cannot serve what was asked (e.g. key rotation on Kaia's).
    #[error("{chain} bridge {bridge}: {reason} (nothing was sent)")]
    Unsupported {
        chain: String,
        bridge: Address,
        reason: String,
    },
    /// The chain could not be asked (every endpoint failed): no verdict, retry.
    #[error("{chain} bridge {bridge}: cannot check it now: {source}")]
    Unreachable {
        chain: String,
        bridge: Address,
        source: ChainError,
    },
}

impl CheckError {
    /// A verdict on the address (as opposed to a chain that did not answer).
    pub fn is_verdict(&self) -> bool {
        !matches!(self, CheckError::Unreachable { .. })
    }
}

/// What a dialect means for the operator, one line each (logged at start, shown by `status`
/// and `config check --online`).
pub fn implications(d: Dialect) -> &'static [&'static str] {
    match d {
        Dialect::Ours => &[
            "voteOf and Voted events: a re-planned vote is checked on chain, forged votes are audited from Voted events",
            "key rotation: `bridge-agent keys rotate` moves the seat to a new key with no downtime",
        ],
        Dialect::Kaia => &[
            "Kaia dialect: no voteOf/Voted: forged votes are audited from the bridge's block transactions",
            "no key rotation: the bridge owner deregisters the old key and registers the new one",
            "a repeated vote is mined and costs gas: the agent never repeats a vote of its own that was mined",
            "executed = nonce < lowerHandleNonce or closedValueTransferVotes(nonce) (the flag is deleted later)",
        ],
    }
}

fn list(addrs: &[Address]) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How one `eth_call` ended, before it becomes a [`CheckError`].
enum Read {
    Data(Bytes),
    /// The call reverted; what it said.
    Odd(String),
}

struct Checker<'a> {
    client: &'a ChainClient,
    target: &'a Target,
}

impl Checker<'_> {
    fn unreachable(&self, source: ChainError) -> CheckError {
        CheckError::Unreachable {
            chain: self.target.chain.clone(),
            bridge: self.target.bridge,
            source,
        }
    }

    fn refuse(&self, finding: impl Into<String>) -> CheckError {
        CheckError::NotTheBridge {
            chain: self.target.chain.clone(),
            bridge: self.target.bridge,
            finding: finding.into(),
        }
    }

    /// `eth_call` of `call` on the bridge, its raw answer: data, or a revert as [`Read::Odd`].
    async fn raw<C: SolCall>(&self, call: &C) -> Result<Read, CheckError> {
        let tx = TransactionRequest::default()
            .to(self.target.bridge)
            .input(call.abi_encode().into());
        match self.client.call(tx).await {
            Ok(data) => Ok(Read::Data(data)),
            Err(ChainError::Reverted { message, data, .. }) => {
                let reason = alloy::sol_types::decode_revert_reason(&data).unwrap_or_else(|| {
                    if data.is_empty() {
                        message
                    } else {
                        format!("{message}, data {data}")
                    }
                });
                Ok(Read::Odd(format!("{} reverted ({reason})", C::SIGNATURE)))
            }
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// A view that must answer with its declared type.
    async fn view<C: SolCall>(&self, call: C) -> Result<C::Return, CheckError> {
        match self.raw(&call).await? {
            Read::Data(data) => C::abi_decode_returns(&data).map_err(|_| {
                self.refuse(if data.is_empty() {
                    format!(
                        "{} answered no data: a contract without this view (a token, or a contract with a fallback), not a bridge",
                        C::SIGNATURE
                    )
                } else {
                    format!(
                        "{} answered {} bytes that do not decode as its result: not a bridge",
                        C::SIGNATURE,
                        data.len()
                    )
                })
            }),
            Read::Odd(finding) => Err(self.refuse(format!("{finding}: not a bridge"))),
        }
    }

    /// The address holds code, or the refusal that says it does not.
    async fn has_code(&self) -> Result<(), CheckError> {
        let bridge = self.target.bridge;
        let code = self
            .client
            .run("eth_getCode", move |p| async move {
                alloy::providers::Provider::get_code_at(&p, bridge).await
            })
            .await
            .map_err(|e| self.unreachable(e))?;
        if code.is_empty() {
            return Err(self.refuse(
                "no code at this address on this chain (not a contract here: a wrong address, \
                 the other chain's bridge, or a bridge not deployed yet)",
            ));
        }
        Ok(())
    }

    /// Ours answers `voteOf(0, 0, 0x0)` with one 32-byte word; Kaia's has no such view and its
    /// payable fallback answers an unknown selector with no data (or the call reverts).
    async fn detect(&self) -> Result<Dialect, CheckError> {
        let probe = Bridge::voteOfCall {
            voteType: VOTE_TYPE_VALUE_TRANSFER,
            nonce: 0,
            operator: Address::ZERO,
        };
        Ok(match self.raw(&probe).await? {
            Read::Data(data) if data.len() == 32 => Dialect::Ours,
            _ => Dialect::Kaia,
        })
    }

    async fn check(&self) -> Result<Report, CheckError> {
        let t = self.target;
        let bridge = t.bridge;
        self.has_code().await?;
        let request_nonce = self.view(Bridge::requestNonceCall {}).await?;
        let lower_handle_nonce = self.view(Bridge::lowerHandleNonceCall {}).await?;
        let operators = self.view(Bridge::getOperatorListCall {}).await?;
        let value_threshold = self
            .view(Bridge::operatorThresholdsCall::new((
                VOTE_TYPE_VALUE_TRANSFER,
            )))
            .await?;
        let configuration_threshold = self
            .view(Bridge::operatorThresholdsCall::new((
                VOTE_TYPE_CONFIGURATION,
            )))
            .await?;
        let counterpart = self.view(Bridge::counterpartBridgeCall {}).await?;
        if counterpart != t.counterpart {
            return Err(self.refuse(format!(
                "counterpartBridge() is {counterpart}, but the other chain's configured bridge is {}: \
                 this is a bridge of another pair (or the pair is not wired: setCounterPartBridge)",
                t.counterpart
            )));
        }
        let detected = self.detect().await?;
        let mut warnings = Vec::new();
        let dialect = match t.configured {
            Some(c) if c != detected => {
                warnings.push(format!(
                    "{}.dialect = \"{c}\" is configured, but the bridge answers as \"{detected}\" \
                     ({}); using the configured \"{c}\"",
                    t.chain,
                    if detected == Dialect::Ours {
                        "it has voteOf"
                    } else {
                        "voteOf(0,0,0x0) gave no 32-byte answer"
                    }
                ));
                c
            }
            Some(c) => c,
            None => detected,
        };
        let seats = operators.len();
        for (name, th) in [
            ("value-transfer", value_threshold),
            ("configuration", configuration_threshold),
        ] {
            if th == 0 || usize::from(th) > seats {
                warnings.push(format!(
                    "{name} threshold {th} with {seats} seat(s): nothing of this kind can execute"
                ));
            } else if th == 1 && seats > 1 {
                warnings.push(format!(
                    "{name} threshold 1 with {seats} seats: one key alone decides (raise it: \
                     `bridge-agent admin set-threshold`)"
                ));
            }
        }
        let seat = match t.operator {
            None => Seat::NotChecked,
            Some(key) => {
                let seated = self.view(Bridge::operatorsCall::new((key,))).await?;
                if seated != operators.contains(&key) {
                    warnings.push(format!(
                        "operators({key}) is {seated} but getOperatorList() {} it",
                        if seated { "does not list" } else { "lists" }
                    ));
                }
                if seated {
                    Seat::Seated(key)
                } else {
                    Seat::NotSeated(key)
                }
            }
        };
        Ok(Report {
            chain: t.chain.clone(),
            bridge,
            dialect,
            detected,
            request_nonce,
            lower_handle_nonce,
            operators,
            value_threshold,
            configuration_threshold,
            seat,
            warnings,
        })
    }
}

/// Checks `target` on `client`'s chain (see the module doc). A key without a seat is not an
/// error: see [`Report::seat`].
pub async fn check(client: &ChainClient, target: &Target) -> Result<Report, CheckError> {
    Checker { client, target }.check().await
}

/// Only the dialect (the configured one if pinned), for commands that must refuse what a
/// dialect cannot serve before sending anything (`keys rotate`, `admin vote
/// replace-operator`). Needs code and `requestNonce`, not the pairing or the seat.
pub async fn dialect_of(client: &ChainClient, target: &Target) -> Result<Dialect, CheckError> {
    let c = Checker { client, target };
    c.has_code().await?;
    c.view(Bridge::requestNonceCall {}).await?;
    let detected = c.detect().await?;
    Ok(target.configured.unwrap_or(detected))
}

/// Why `command` cannot run on a bridge of `dialect`, if it cannot: it needs key rotation
/// (`proposeOperatorKey`, `acceptOperatorKey`, `replaceOperator`), which Kaia's bridge lacks
/// (a transaction to it would only burn gas in its fallback).
pub fn rotation_unsupported(dialect: Dialect, command: &str) -> Option<String> {
    (!dialect.supports_key_rotation()).then(|| {
        format!(
            "`{command}` cannot run here: this bridge is of the {dialect} dialect, which has no key \
             rotation (no proposeOperatorKey/acceptOperatorKey/replaceOperator). Instead the bridge owner deregisters the old key and registers the new one on both \
             bridges (`bridge-agent admin deregister-operator OLD --owner-key-label …` and \
             `admin register-operator NEW …`, thresholds permitting), [signer] names the new key \
             and the agent restarts (docs/operator-guide.md, \"Adopting the agent on an existing \
             Kaia bridge\")"
        )
    })
}

/// What to check for `side` of `cfg`: its bridge, paired with the other side's.
pub fn target(cfg: &AgentConfig, side: Side, operator: Option<Address>) -> Target {
    let chain = cfg.chain(side);
    Target {
        chain: side.as_str().into(),
        bridge: chain.bridge,
        counterpart: cfg.chain(side.other()).bridge,
        operator,
        configured: chain.dialect,
    }
}

/// Connects to `side`'s chain as the agent would and checks its bridge (for the CLI).
pub async fn check_side(
    cfg: &AgentConfig,
    side: Side,
    operator: Option<Address>,
) -> Result<Report, CheckError> {
    let target = target(cfg, side, operator);
    let client = ChainClient::connect(crate::chain::access_config(cfg, side))
        .await
        .map_err(|source| CheckError::Unreachable {
            chain: target.chain.clone(),
            bridge: target.bridge,
            source,
        })?;
    check(&client, &target).await
}

/// Refuses, before anything is sent, a command that needs key rotation on both bridges when
/// either cannot serve it ([`rotation_unsupported`]).
pub async fn require_key_rotation(cfg: &AgentConfig, command: &str) -> Result<(), CheckError> {
    for side in Side::ALL {
        let target = target(cfg, side, None);
        let client = ChainClient::connect(crate::chain::access_config(cfg, side))
            .await
            .map_err(|source| CheckError::Unreachable {
                chain: target.chain.clone(),
                bridge: target.bridge,
                source,
            })?;
        let dialect = dialect_of(&client, &target).await?;
        if let Some(finding) = rotation_unsupported(dialect, command) {
            return Err(CheckError::Unsupported {
                chain: target.chain,
                bridge: target.bridge,
                reason: finding,
            });
        }
    }
    Ok(())
}
