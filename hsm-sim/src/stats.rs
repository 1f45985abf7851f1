//! Counters of calls, answers and injected faults, as `GET /admin/stats` shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;
use crate::protocol::ErrorCode;

/// Counters since start (or the last reset). Map keys are operation names, error codes and
/// fault kinds (`latency`, `outage`, `throttle_burst`, `error_rate`, `wrong_signature`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// KMS calls received, per operation (an unknown operation under its own name).
    pub calls: BTreeMap<String, u64>,
    /// Calls answered with success, per operation.
    pub succeeded: BTreeMap<String, u64>,
    /// Error answers per code, genuine and injected alike.
    pub errors: BTreeMap<String, u64>,
    /// Injected faults per kind.
    pub faults: BTreeMap<String, u64>,
    /// Injected faults per operation, then per kind.
    pub faults_by_operation: BTreeMap<String, BTreeMap<String, u64>>,
    /// Signatures given with high s (as real KMS does); not a fault.
    pub high_s_signatures: u64,
}

impl Stats {
    /// The calls received for one operation.
    pub fn calls_of(&self, op: &str) -> u64 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    /// The injected faults of one kind.
    pub fn faults_of(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }

    /// The error answers with one code.
    pub fn errors_of(&self, code: ErrorCode) -> u64 {
        self.errors.get(code.as_str()).copied().unwrap_or(0)
    }

    pub(crate) fn call(&mut self, op: &str) {
        *self.calls.entry(op.to_owned()).or_default() += 1;
    }

    pub(crate) fn fault(&mut self, op: &str, kind: FaultKind) {
        *self.faults.entry(kind.as_str().to_owned()).or_default() += 1;
        *self
            .faults_by_operation
            .entry(op.to_owned())
            .or_default()
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    pub(crate) fn answer(&mut self, op: &str, result: Result<(), ErrorCode>) {
        match result {
            Ok(()) => *self.succeeded.entry(op.to_owned()).or_default() += 1,
            Err(code) => *self.errors.entry(code.as_str().to_owned()).or_default() += 1,
        }
    }
}
