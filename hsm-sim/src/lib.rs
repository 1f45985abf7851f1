//! `hsm-sim`: a simulator of an HSM behind the AWS KMS wire protocol, with fault injection.
//!
//! It will serve `GetPublicKey` and `Sign` for secp256k1 keys over loopback HTTP, and inject the
//! faults a real server will not make on demand: added latency, transient errors, throttling
//! bursts, outages and wrong signatures. Tests and the demo point the agent's aws-kms backend at
//! it. It is empty until issue #3 builds it; nothing here serves requests yet.
#![forbid(unsafe_code)]
