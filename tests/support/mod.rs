//! Code shared by the end-to-end tests (each test file includes what it uses with `mod support;`).
#![allow(dead_code)]

pub mod agent;
pub mod burst;
pub mod capped;
pub mod chain_votes;
pub mod cluster;
pub mod prometheus;
pub mod proxy;
pub mod rate_limit;
pub mod replicas;
