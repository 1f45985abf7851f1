//! Fault injection: what goes wrong, how often, and the seeded randomness that decides it.
//!
//! For each KMS call the faults apply to, in this order:
//!
//! ```text
//! latency (fixed + jitter) ─► outage window? ─► throttle burst left? ─► error_rate draw?
//!        │                       │ outage_code       │ ThrottlingException   │ one of error_codes
//!        ▼                       ▼                   ▼                       ▼
//!   (always served late)     error answer        error answer           error answer
//!                                                                 otherwise: the real operation
//!                                                                 (Sign: wrong_signature, high_s)
//! ```
//!
//! All draws come from one `StdRng`, seeded by `seed`, so a test that sends the same calls in
//! the same order sees the same faults.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::rngs::{OsRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::keystore::SignMode;
use crate::protocol::{ErrorCode, KmsError, Operation};

/// What kind of signature wrong-signature mode returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrongSignature {
    /// Honest signatures.
    #[default]
    Off,
    /// A valid signature by the right key over a different digest.
    OtherDigest,
    /// A valid signature over the right digest by a different key.
    OtherKey,
}

impl FromStr for WrongSignature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(WrongSignature::Off),
            "other_digest" | "other-digest" => Ok(WrongSignature::OtherDigest),
            "other_key" | "other-key" => Ok(WrongSignature::OtherKey),
            _ => Err(format!(
                "unknown wrong-signature mode {s:?}; expected off, other-digest or other-key"
            )),
        }
    }
}

/// The faults to inject. Every field has a harmless default, so `{}` means "no faults" and a
/// JSON object naming one field sets that fault alone. Setting a configuration replaces the
/// previous one whole, restarting the throttle burst and the outage window from now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every answer, in milliseconds.
    pub latency_ms: u64,
    /// Plus a uniform draw in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Probability in [0, 1] that a call fails with one of `error_codes` (drawn uniformly).
    pub error_rate: f64,
    /// The codes `error_rate` draws from.
    pub error_codes: Vec<ErrorCode>,
    /// The next N calls fail with `ThrottlingException`.
    pub throttle_burst: u32,
    /// Every call fails with `outage_code` for this many seconds from now.
    pub outage_secs: f64,
    /// The code an outage answers with.
    pub outage_code: ErrorCode,
    /// Sign returns a valid signature over another digest or by another key.
    pub wrong_signature: WrongSignature,
    /// Probability in [0, 1] that a signature is given with high s (n − s). Real KMS does this
    /// for about half its signatures; clients must normalise. Not counted as a fault.
    pub high_s_rate: f64,
    /// The operations faults apply to; empty means all of them.
    pub operations: Vec<Operation>,
    /// Reseeds the fault randomness; `None` keeps the current generator.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            error_codes: vec![
                ErrorCode::ThrottlingException,
                ErrorCode::KmsInternalException,
                ErrorCode::DependencyTimeoutException,
            ],
            throttle_burst: 0,
            outage_secs: 0.0,
            outage_code: ErrorCode::DependencyTimeoutException,
            wrong_signature: WrongSignature::Off,
            high_s_rate: 0.5,
            operations: Vec::new(),
            seed: None,
        }
    }
}

impl FaultConfig {
    /// Every problem with this configuration, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !unit(self.error_rate) {
            problems.push(format!("error_rate: {} is not in [0, 1]", self.error_rate));
        }
        if !unit(self.high_s_rate) {
            problems.push(format!(
                "high_s_rate: {} is not in [0, 1]",
                self.high_s_rate
            ));
        }
        if self.error_rate > 0.0 && self.error_codes.is_empty() {
            problems.push("error_codes: empty while error_rate > 0".to_owned());
        }
        if !(self.outage_secs.is_finite() && self.outage_secs >= 0.0 && self.outage_secs < 1e9) {
            problems.push(format!(
                "outage_secs: {} is not a duration",
                self.outage_secs
            ));
        }
        if self.latency_ms.saturating_add(self.jitter_ms) > 600_000 {
            problems.push("latency_ms + jitter_ms: more than 10 minutes".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The kinds of injected fault, as counted in [`crate::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Latency,
    Outage,
    ThrottleBurst,
    ErrorRate,
    WrongSignature,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Outage => "outage",
            FaultKind::ThrottleBurst => "throttle_burst",
            FaultKind::ErrorRate => "error_rate",
            FaultKind::WrongSignature => "wrong_signature",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The faults in force now, as the admin endpoint shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    pub config: FaultConfig,
    pub throttle_burst_left: u32,
    pub outage_secs_left: f64,
}

/// What the fault layer decided for one call.
#[derive(Debug)]
pub struct Decision {
    pub delay: Duration,
    /// An injected error answer, with the kind of fault that caused it.
    pub error: Option<(FaultKind, KmsError)>,
    pub sign_mode: SignMode,
    pub high_s: bool,
    /// Every fault kind injected into this call, for the counters.
    pub injected: Vec<FaultKind>,
}

/// The fault configuration plus the state it runs down (burst left, outage end, randomness).
#[derive(Debug)]
pub struct FaultState {
    config: FaultConfig,
    burst_left: u32,
    outage_until: Option<Instant>,
    rng: StdRng,
}

impl FaultState {
    pub fn new(config: FaultConfig) -> Result<Self, Vec<String>> {
        let seed = config.seed.unwrap_or_else(|| OsRng.next_u64());
        let mut state = FaultState {
            config: FaultConfig::default(),
            burst_left: 0,
            outage_until: None,
            rng: StdRng::seed_from_u64(seed),
        };
        state.set(config)?;
        Ok(state)
    }

    /// Replaces the configuration, restarting the burst and the outage window from now.
    pub fn set(&mut self, config: FaultConfig) -> Result<(), Vec<String>> {
        config.validate()?;
        if let Some(seed) = config.seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        self.burst_left = config.throttle_burst;
        self.outage_until = (config.outage_secs > 0.0)
            .then(|| Instant::now() + Duration::from_secs_f64(config.outage_secs));
        self.config = config;
        Ok(())
    }

    pub fn status(&self) -> FaultStatus {
        let left = self
            .outage_until
            .map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64())
            .unwrap_or(0.0);
        FaultStatus {
            config: self.config.clone(),
            throttle_burst_left: self.burst_left,
            outage_secs_left: left,
        }
    }

    /// Decides the faults for one call of `op`.
    pub fn decide(&mut self, op: Operation) -> Decision {
        let c = &self.config;
        let mut d = Decision {
            delay: Duration::ZERO,
            error: None,
            sign_mode: SignMode::Honest,
            high_s: false,
            injected: Vec::new(),
        };
        if op == Operation::Sign && c.high_s_rate > 0.0 {
            d.high_s = self.rng.gen_bool(c.high_s_rate);
        }
        if !c.operations.is_empty() && !c.operations.contains(&op) {
            return d;
        }
        if c.latency_ms > 0 || c.jitter_ms > 0 {
            let jitter = if c.jitter_ms > 0 {
                self.rng.gen_range(0..=c.jitter_ms)
            } else {
                0
            };
            d.delay = Duration::from_millis(c.latency_ms + jitter);
            d.injected.push(FaultKind::Latency);
        }
        let error = if self.outage_until.is_some_and(|t| Instant::now() < t) {
            let msg = "simulated outage: the service is unavailable";
            Some((FaultKind::Outage, KmsError::new(c.outage_code, msg)))
        } else if self.burst_left > 0 {
            self.burst_left -= 1;
            let msg = "Rate exceeded (simulated throttling burst)";
            let e = KmsError::new(ErrorCode::ThrottlingException, msg);
            Some((FaultKind::ThrottleBurst, e))
        } else if c.error_rate > 0.0 && self.rng.gen_bool(c.error_rate) {
            let code = c.error_codes[self.rng.gen_range(0..c.error_codes.len())];
            let msg = format!("simulated {code} (error_rate {})", c.error_rate);
            Some((FaultKind::ErrorRate, KmsError::new(code, msg)))
        } else {
            None
        };
        if let Some((kind, _)) = &error {
            d.injected.push(*kind);
        } else if op == Operation::Sign && c.wrong_signature != WrongSignature::Off {
            d.sign_mode = match c.wrong_signature {
                WrongSignature::OtherDigest => SignMode::OtherDigest,
                _ => SignMode::OtherKey,
            };
            d.injected.push(FaultKind::WrongSignature);
        }
        d.error = error;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(seed: u64, n: usize) -> Vec<Option<ErrorCode>> {
        let config = FaultConfig {
            error_rate: 0.5,
            seed: Some(seed),
            ..FaultConfig::default()
        };
        let mut s = FaultState::new(config).unwrap();
        (0..n)
            .map(|_| s.decide(Operation::Sign).error.map(|(_, e)| e.code))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let a = outcomes(42, 64);
        assert_eq!(a, outcomes(42, 64));
        assert_ne!(a, outcomes(43, 64));
        let errors = a.iter().filter(|o| o.is_some()).count();
        assert!(
            (12..=52).contains(&errors),
            "{errors} errors out of 64 at rate 0.5"
        );
    }

    #[test]
    fn a_burst_throttles_exactly_n_calls_then_stops() {
        let config = FaultConfig {
            throttle_burst: 3,
            ..FaultConfig::default()
        };
        let mut s = FaultState::new(config).unwrap();
        let codes: Vec<_> = (0..5)
            .map(|_| s.decide(Operation::Sign).error.map(|(_, e)| e.code))
            .collect();
        let t = Some(ErrorCode::ThrottlingException);
        assert_eq!(codes, vec![t, t, t, None, None]);
    }

    #[test]
    fn faults_spare_operations_not_listed() {
        let config = FaultConfig {
            error_rate: 1.0,
            operations: vec![Operation::Sign],
            ..FaultConfig::default()
        };
        let mut s = FaultState::new(config).unwrap();
        assert!(s.decide(Operation::GetPublicKey).error.is_none());
        assert!(s.decide(Operation::Sign).error.is_some());
    }

    #[test]
    fn validate_reports_every_problem() {
        let config = FaultConfig {
            error_rate: 1.5,
            high_s_rate: -1.0,
            error_codes: vec![],
            outage_secs: f64::NAN,
            ..FaultConfig::default()
        };
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(FaultConfig::default().validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<FaultConfig, _> = serde_json::from_str(r#"{"latency": 5}"#);
        assert!(r.is_err());
        let c: FaultConfig = serde_json::from_str(r#"{"throttle_burst": 2}"#).unwrap();
        assert_eq!(c.throttle_burst, 2);
        assert_eq!(c.latency_ms, 0);
    }
}
