//! `bridge-agent`: the agent that carries value transfers between a parent chain and its service
//! chain, one vote per operator, through a guarded HSM/KMS signer.
#![forbid(unsafe_code)]
