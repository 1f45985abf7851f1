//! The signing guard: the only way the agent gets a transaction signed.
//!
//! ```text
//! tx ─> policy (tx.rs rules, in order):
//!        chain id == configured      else Refused::WrongChain
//!        to == configured bridge     else Refused::WrongTo / ContractCreation
//!        value == 0                  else Refused::NonZeroValue
//!        no EIP-7702 authorizations, no blobs
//!        selector ∈ handle…/admin    else Refused::UnknownSelector / MalformedCall
//!        propose/accept, gas transfer only under a RotationPermit (rotation.rs), own seat only
//!    ─> journal (votes only): New → Safe::Valid · Same → Safe::SameVote
//!                             Conflict → Refused::ConflictingVote (counted, logged as error)
//!                             a journal with a leader fence (replicas) records only while this
//!                             process holds the lease, else GuardError::Fenced
//!    ─> fence.holds_now() again  else GuardError::Fenced (a process paused after the journal)
//!    ─> backend sign_hash(tx.signature_hash())
//! ```
//!
//! The journal row is durable before the backend is asked, so a crash between the two can
//! never let a different vote for the same nonce through after restart.

mod calldata;
mod journal;
mod rotation;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_consensus::{SignableTransaction, Transaction};
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use async_trait::async_trait;
use serde::Deserialize;

pub use calldata::{AllowedCall, Namespace};
pub use journal::{Journal, JournalError, Recorded, VoteKey};
pub use rotation::RotationPermit;

use crate::{Signer, SignerError};

/// Guard settings: the `[guard]` part of an agent's per-chain config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// The only chain id votes may be signed for.
    pub chain_id: u64,
    /// The only contract votes may be sent to.
    pub bridge: Address,
    /// The SQLite vote journal.
    pub journal: PathBuf,
}

/// The guard let the transaction through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// A first vote for its nonce; recorded.
    Valid,
    /// The identical vote was recorded before: a re-send.
    SameVote,
    /// A key-rotation call (`proposeOperatorKey`, `acceptOperatorKey`, or a gas transfer
    /// from the old key to the new one) within the guard's [`RotationPermit`]; not a vote.
    KeyRotation,
}

/// The guard refused the transaction; nothing was signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Wrong or missing chain id.
    #[error("chain id {got:?} is not the configured {expected}")]
    WrongChain {
        /// Configured.
        expected: u64,
        /// In the transaction.
        got: Option<u64>,
    },
    /// Sent to another address than the bridge.
    #[error("to {got} is not the configured bridge {expected}")]
    WrongTo {
        /// Configured bridge.
        expected: Address,
        /// In the transaction.
        got: Address,
    },
    /// A contract creation.
    #[error("contract creation is never signed")]
    ContractCreation,
    /// Carries value.
    #[error("value {0} is not zero")]
    NonZeroValue(U256),
    /// Carries EIP-7702 authorizations (they could delegate the operator account).
    #[error("EIP-7702 authorizations are never signed")]
    Authorizations,
    /// Carries EIP-4844 blobs.
    #[error("blob transactions are never signed")]
    Blobs,
    /// Calldata shorter than a selector.
    #[error("calldata has no function selector")]
    NoSelector,
    /// A selector that is neither a handle function nor a named admin call.
    #[error("selector 0x{} is not a bridge vote or a named admin call", hex::encode(.0))]
    UnknownSelector([u8; 4]),
    /// A known selector with arguments that do not decode strictly.
    #[error("{function}: calldata does not decode: {reason}")]
    MalformedCall {
        /// Function signature.
        function: &'static str,
        /// Decoder error.
        reason: String,
    },
    /// A key-rotation call by a guard without a [`RotationPermit`] (the running agent).
    #[error("{function}: key-rotation calls are signed only by `bridge-agent keys rotate`")]
    RotationNotPermitted {
        /// Function signature.
        function: &'static str,
    },
    /// A key-rotation call for another seat, key or recipient than the permit names.
    #[error("{function}: outside this rotation's permit: {detail}")]
    RotationOutsidePermit {
        /// Function, or "gas transfer".
        function: &'static str,
        /// What differs.
        detail: String,
    },
    /// A different vote was already signed for this nonce.
    #[error("CONFLICTING VOTE refused for {key}: journal holds {recorded}, attempted {attempted}")]
    ConflictingVote {
        /// The journal key.
        key: VoteKey,
        /// Vote hash recorded before.
        recorded: B256,
        /// Vote hash of this attempt.
        attempted: B256,
    },
}

/// Why the guard did not return a signature.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Refused by policy or journal.
    #[error("guard refused: {0}")]
    Refused(#[from] Refused),
    /// The journal could not be read or written: fail closed.
    #[error("guard cannot use its journal, refusing to sign: {0}")]
    Journal(#[from] JournalError),
    /// The backend failed after the guard allowed the transaction.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// This replica does not hold the leader lease (any more): nothing was signed, and
    /// nothing will be until it leads again. Not an alarm: another replica signs.
    #[error("not the leader, refusing to sign: {0}")]
    Fenced(String),
    /// The journal task died.
    #[error("journal task failed: {0}")]
    Task(String),
}

/// Counters for Prometheus.
#[derive(Debug, Default)]
pub struct GuardCounters {
    signed: AtomicU64,
    same_vote: AtomicU64,
    refused: AtomicU64,
    conflicting: AtomicU64,
    fenced: AtomicU64,
}

impl GuardCounters {
    /// Transactions signed.
    pub fn signed(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }
    /// Re-sends of an identical vote allowed.
    pub fn same_vote(&self) -> u64 {
        self.same_vote.load(Ordering::Relaxed)
    }
    /// Refusals of any kind.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    /// Conflicting votes refused (each one is an alarm).
    pub fn conflicting(&self) -> u64 {
        self.conflicting.load(Ordering::Relaxed)
    }
    /// Signatures refused because this replica did not hold the leader lease (not counted in
    /// [`GuardCounters::refused`], which counts policy and journal refusals).
    pub fn fenced(&self) -> u64 {
        self.fenced.load(Ordering::Relaxed)
    }
}

/// Wraps any [`Signer`]; signs only bridge votes and named admin calls, one vote per nonce.
#[derive(Debug)]
pub struct Guard<S> {
    signer: S,
    chain_id: u64,
    bridge: Address,
    journal: Arc<Journal>,
    /// Shareable with the guard of a new key (`sharing_counters`), so counts survive a switch.
    counters: Arc<GuardCounters>,
    rotation: Option<RotationPermit>,
}

impl<S: Signer> Guard<S> {
    /// Opens the journal named in `config` and wraps `signer`.
    pub fn open(signer: S, config: &GuardConfig) -> Result<Self, JournalError> {
        Ok(Self::new(
            signer,
            config.chain_id,
            config.bridge,
            Journal::open(&config.journal)?,
        ))
    }

    /// Wraps `signer` with an opened journal.
    pub fn new(signer: S, chain_id: u64, bridge: Address, journal: Journal) -> Self {
        Self::with_journal(signer, chain_id, bridge, Arc::new(journal))
    }

    /// Wraps `signer` with a journal another guard uses too: a key switch keeps one journal
    /// per chain, so the new key re-sends exactly the votes the old one journalled.
    pub fn with_journal(signer: S, chain_id: u64, bridge: Address, journal: Arc<Journal>) -> Self {
        Self {
            signer,
            chain_id,
            bridge,
            journal,
            counters: Arc::default(),
            rotation: None,
        }
    }

    /// Allows the calls of one key rotation, `permit.old → permit.new`, and nothing wider
    /// (see `rotation.rs`). Only `bridge-agent keys rotate` builds such a guard.
    pub fn with_rotation_permit(mut self, permit: RotationPermit) -> Self {
        self.rotation = Some(permit);
        self
    }

    /// The journal, shareable with the guard of a new key.
    pub fn shared_journal(&self) -> Arc<Journal> {
        Arc::clone(&self.journal)
    }

    /// Counts into `counters` (another guard's, [`Guard::shared_counters`]) instead of its
    /// own: a key switch keeps one set of counters per chain, so no count is lost.
    pub fn sharing_counters(mut self, counters: Arc<GuardCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The counters, shareable with the guard of a new key.
    pub fn shared_counters(&self) -> Arc<GuardCounters> {
        Arc::clone(&self.counters)
    }

    /// The wrapped signer.
    pub fn signer(&self) -> &S {
        &self.signer
    }

    /// Counters.
    pub fn counters(&self) -> &GuardCounters {
        &self.counters
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The stateless rules: chain, to, value, tx type, selector. Does not touch the journal.
    pub fn check_policy(&self, tx: &dyn Transaction) -> Result<AllowedCall, Refused> {
        if tx.chain_id() != Some(self.chain_id) {
            return Err(Refused::WrongChain {
                expected: self.chain_id,
                got: tx.chain_id(),
            });
        }
        if tx.authorization_list().is_some_and(|a| !a.is_empty()) {
            return Err(Refused::Authorizations);
        }
        if tx.blob_versioned_hashes().is_some_and(|b| !b.is_empty()) {
            return Err(Refused::Blobs);
        }
        match tx.to() {
            None => return Err(Refused::ContractCreation),
            Some(to) if to != self.bridge => {
                rotation::check_transfer(
                    self.rotation.as_ref(),
                    self.signer.address(),
                    self.bridge,
                    to,
                    tx.input(),
                )?;
                return Ok(AllowedCall::KeyRotation {
                    function: "gas transfer",
                });
            }
            Some(_) => {}
        }
        if !tx.value().is_zero() {
            return Err(Refused::NonZeroValue(tx.value()));
        }
        let call = calldata::decode(tx.input())?;
        if let AllowedCall::KeyRotation { function } = call {
            rotation::check_call(
                self.rotation.as_ref(),
                self.signer.address(),
                function,
                tx.input(),
            )?;
        }
        Ok(call)
    }

    /// Policy, then check-and-record in the journal. After `Ok`, the vote is durable.
    pub async fn authorize(&self, tx: &dyn Transaction) -> Result<Safe, GuardError> {
        let result = self.authorize_inner(tx).await;
        if let Err(e @ GuardError::Fenced(_)) = &result {
            self.count_fenced(e);
        }
        if let Err(GuardError::Refused(refused)) = &result {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            if let Refused::ConflictingVote { .. } = refused {
                self.counters.conflicting.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    target: "bridge_signer::guard",
                    alarm = "conflicting_vote",
                    error = %refused,
                    "REFUSED to sign a second, different vote for the same nonce. The journal is \
                     right; do NOT delete it. Find out why this agent built different calldata \
                     (config change? token registry change? bug?) before resuming."
                );
            } else {
                tracing::warn!(target: "bridge_signer::guard", error = %refused, "transaction refused");
            }
        }
        result
    }

    async fn authorize_inner(&self, tx: &dyn Transaction) -> Result<Safe, GuardError> {
        let (function, namespace, nonce) = match self.check_policy(tx)? {
            AllowedCall::KeyRotation { function } => {
                tracing::info!(target: "bridge_signer::guard", function, "key-rotation call allowed");
                return Ok(Safe::KeyRotation);
            }
            AllowedCall::Vote {
                function,
                namespace,
                nonce,
            } => (function, namespace, nonce),
        };
        let key = VoteKey {
            chain_id: self.chain_id,
            bridge: self.bridge,
            namespace,
            nonce,
        };
        let vote = keccak256(tx.input());
        let journal = Arc::clone(&self.journal);
        let recorded =
            tokio::task::spawn_blocking(move || journal.check_and_record(&key, &vote, function))
                .await
                .map_err(|e| GuardError::Task(e.to_string()))?
                .map_err(|e| match e {
                    JournalError::Fenced { .. } => GuardError::Fenced(e.to_string()),
                    e => GuardError::Journal(e),
                })?;
        match recorded {
            Recorded::New => Ok(Safe::Valid),
            Recorded::Same => Ok(Safe::SameVote),
            Recorded::Conflict { recorded } => Err(Refused::ConflictingVote {
                key,
                recorded,
                attempted: vote,
            }
            .into()),
        }
    }

    /// Right before asking the backend: a journal with a fence still holds the lease by this
    /// process's clock. The journal checked it in the database moments ago, but a process
    /// paused (or slow) since then may have lost its term, and another replica may lead.
    fn check_fence(&self) -> Result<(), GuardError> {
        match self.journal.fence() {
            Some(fence) if !fence.holds_now() => Err(GuardError::Fenced(format!(
                "{} ({}): the lease term ran out after the vote was journalled",
                fence.holder(),
                self.journal.describe()
            ))),
            _ => Ok(()),
        }
    }

    fn count_fenced(&self, error: &GuardError) {
        self.counters.fenced.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "bridge_signer::guard", %error, "not the leader: not signing");
    }

    /// Checks, journals, then signs. A transaction without a chain id gets the configured one.
    pub async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> Result<Signature, GuardError> {
        if tx.chain_id().is_none() {
            tx.set_chain_id(self.chain_id);
        }
        let safe = self.authorize(&*tx).await?;
        self.check_fence().inspect_err(|e| self.count_fenced(e))?;
        let signature = self.signer.sign_hash(&tx.signature_hash()).await?;
        self.counters.signed.fetch_add(1, Ordering::Relaxed);
        if safe == Safe::SameVote {
            self.counters.same_vote.fetch_add(1, Ordering::Relaxed);
        }
        Ok(signature)
    }
}

#[async_trait]
impl<S: Signer> alloy_network::TxSigner<Signature> for Guard<S> {
    fn address(&self) -> Address {
        self.signer.address()
    }

    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy_signer::Result<Signature> {
        Guard::sign_transaction(self, tx)
            .await
            .map_err(alloy_signer::Error::other)
    }
}
