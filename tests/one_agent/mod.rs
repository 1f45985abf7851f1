//! One agent (the real binary, a SoftHSM key) on a devnet of either dialect, and what the
//! single-agent tests read from it: metrics, the log without colour codes, the operator's
//! transactions.
// Each test binary uses part of it.
#![allow(dead_code)]

use crate::support::agent::{Agent, Endpoints, enc, http_address, send, write_config};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use bridge_agent::contracts::Bridge;
use bridge_agent::dialect::Dialect;
use bridge_devkit::devnet::{Devnet, DevnetOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// The log without terminal colour codes.
pub fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // ESC [ … final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Sum of a metric's samples whose labels contain `labels` (e.g. `reason="late"`).
pub async fn metric(port: u16, name: &str, labels: &str) -> f64 {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let body = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| !l.starts_with('#') && l.contains(labels))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A devnet of `dialect` whose seats are `operators`, and a started agent for the first one;
/// returns the agent and its metrics port.
pub async fn start(
    dir: &Path,
    dialect: Dialect,
    operators: Vec<Address>,
    threshold: u8,
) -> (Devnet, Agent, u16) {
    start_with(
        dir,
        DevnetOptions {
            operators,
            value_transfer_threshold: threshold,
            configuration_threshold: 1,
            dialect,
            ..DevnetOptions::default()
        },
    )
    .await
}

/// [`start`] with every devnet option given (`dir` is set here).
pub async fn start_with(dir: &Path, opts: DevnetOptions) -> (Devnet, Agent, u16) {
    let d = Devnet::start(DevnetOptions {
        dir: dir.join("chains"),
        ..opts
    })
    .await
    .unwrap();
    let config = write_config(dir, &d, Endpoints::of(&d.parent), Endpoints::of(&d.child));
    let text = std::fs::read_to_string(&config).unwrap();
    // The planner's reason for each skip, at debug.
    std::fs::write(
        &config,
        text.replace(
            "level = \"info\"",
            "level = \"info,bridge_agent::planner=debug\"",
        ),
    )
    .unwrap();
    let agent = Agent::start(&config, dir.join("agent.log"));
    // `[http] listen` is port 0: the agent publishes the address it bound.
    let port = http_address(&config).await.port();
    (d, agent, port)
}

pub async fn request_native(d: &Devnet, to: Address, value: u64) {
    let p = &d.parent;
    send(
        p,
        &d.users()[0],
        p.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(value),
            extraData: Bytes::new(),
        }),
        U256::from(value),
    )
    .await;
}

/// Waits until the operator's account on the child chain has sent `n` transactions.
pub async fn wait_sent(d: &Devnet, operator: Address, n: u64, agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while d
        .child
        .reader()
        .get_transaction_count(operator)
        .await
        .unwrap()
        < n
    {
        assert!(
            Instant::now() < deadline,
            "{n} votes not sent in time:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `checks` more recovery checks that found the parent → child stall.
pub async fn sit_through_stalled_checks(port: u16, checks: f64, agent: &Agent) {
    let rescans = || metric(port, "bridge_recovery_rescans_total", "parent_to_child");
    let start = rescans().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rescans().await < start + checks {
        assert!(
            Instant::now() < deadline,
            "recovery did not find the stall {checks} times:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let the last hand-back's plans finish before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Waits until the agent's /readyz answers 200 (its bridges verified, directions running).
pub async fn wait_ready(port: u16, agent: &Agent) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent not ready:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
