//! P2, P4, P5 (DESIGN.md §7, issue 5) and P6 (issue 12): four `bridge-agent run` processes (t = 3, SoftHSM
//! keys, the HA harness's cluster) against plain local keys on a second devnet started the same
//! way, in one run.
//!
//! Run: `cargo bench --bench ha_throughput`. Environment:
//!
//! | variable      | default      | meaning                                                      |
//! |---------------|--------------|--------------------------------------------------------------|
//! | `HA_BENCH`    | `p2,p4,p5`   | which figures to measure (`p6`, `store`: run alone, see below) |
//! | `HA_N`        | 1000         | requests per phase (P2 raw and live, P4 live and catch-up)   |
//! | `HA_ROUNDS`   | 2            | rounds of raw → live → catch-up, interleaved                 |
//! | `HA_P5_N`     | 10000        | backlog for P5                                               |
//! | `HA_P5_SECS`  | 900          | longest P5 waits for the backlog to execute                  |
//! | `HA_PROXY`    | 0            | 1 keeps the harness's fault proxies between agents and chains |
//! | `HA_BLOCK_SECS` | 1          | seconds between blocks once set up (interval mining, like a real chain); 0: anvil's automine, a block per transaction |
//!
//! P6 (`HA_BENCH=p6`): every agent's RPC links go through the HTTP rate-limiting proxy of the
//! tests (`support/rate_limit.rs`); a live phase and a catch-up of N each with the proxies
//! passing everything, then the same with one request in five refused (HTTP 429 +
//! `Retry-After: 1` and JSON-RPC -32005, alternately): the slowdown rate limits cost. The extra
//! HTTP hop is in both, so run P6 alone (P2/P4 in the same run would pay for the hop too).
//!
//! Store (`HA_BENCH=store`, issue 15): P2's live phase with the four operators' store and
//! journal in PostgreSQL (one local server, a database each) against SQLite, fresh clusters in
//! turn per round; prints both rates and the ratio (bar ≥ 0.9).
//!
//! Under `cargo test` (no `--bench` argument) it only smoke-tests the request generator and the
//! plain-key voters on one devnet, in a few seconds.
//!
//! ```text
//!  raw devnet (4 dev-account operators, t = 3)     cluster devnet (4 SoftHSM operators, t = 3)
//!  empty blocks until as high as the cluster's    live:     N requests sent at full speed,
//!  N requests, timed (the live phase mines them              clock from the first request to
//!    too)                                                    the last execution
//!  t plain-key voters × N votes, each chain,       catch-up: agents stopped, N requests, agents
//!    sent in nonce order, all at once, timed                 started, clock from the first start
//!  raw rate = handle txs / (request + vote time)   live again (brackets the catch-up)
//!  P2 = live transfers/s × t / raw rate            P4 = catch-up rate / mean live rate
//!  P5: agents stopped, HA_P5_N requests, agents started; VmRSS sampled until all executed, VmHWM
//! ```
//!
//! Heights and brackets: anvil's cost per block grows with the length of its chain (0.75 ms per
//! transfer on a new chain, 2.6 ms after 2,000 blocks; with automine every transaction is a
//! block), so rates are compared only at equal heights (the raw devnet is mined up to the
//! cluster's) or around the same point (the catch-up against the live phases before and after).
//! The strict ratio, live against the votes alone, is printed too.
//!
//! The requests are native and ERC-20 transfers in turn, both directions, from the five devnet
//! users (`support::burst`), signed locally and sent without waiting for receipts. Every phase
//! ends only when both destination bridges' `lowerHandleNonce` reached the requests sent, and
//! the run ends by checking every request executed exactly once.

#[path = "../tests/support/mod.rs"]
mod support;

use alloy::providers::Provider;
use bridge_devkit::devnet::{Devnet, DevnetOptions};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::burst::{Burst, Executed, RawVoters, kicks, set_interval_mining};
use support::cluster::{Cluster, ClusterOptions, handled_nonces};

const T: u8 = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process used so far, from /proc/PID/stat.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. indexes 11 and 12 after the state.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A /proc/PID/status field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The process id of each agent: the `bridge-agent run` whose command line names its config.
fn agent_pids(cluster: &Cluster) -> Vec<u32> {
    let mut pids = vec![0; cluster.nodes.len()];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        for node in &cluster.nodes {
            let config = node.config.as_os_str().as_encoded_bytes();
            if args.contains(&config) && args.contains(&&b"run"[..]) {
                pids[node.index] = pid;
            }
        }
    }
    assert!(pids.iter().all(|p| *p != 0), "every agent's pid: {pids:?}");
    pids
}

/// The agents' configs point at the chains directly, not through the harness's fault proxies
/// (which would add a hop per RPC and burn this process's CPU): restarts every agent.
async fn bypass_proxies(cluster: &mut Cluster) {
    for i in 0..cluster.nodes.len() {
        cluster.stop_agent(i).await;
        let node = &cluster.nodes[i];
        let mut text = std::fs::read_to_string(&node.config).unwrap();
        for (proxy, side) in [
            (&node.parent_proxy, &cluster.devnet.parent),
            (&node.child_proxy, &cluster.devnet.child),
        ] {
            text = text
                .replace(&proxy.url("http"), &side.rpc_url())
                .replace(&proxy.url("ws"), &side.anvil.ws_url());
        }
        std::fs::write(&node.config, text).unwrap();
        if let Some(link) = &mut cluster.nodes[i].pg {
            link.bypass_proxy();
        }
        cluster.start_agent(i).await;
    }
}

/// A cluster as the measurements use it: agents straight to the chains unless `HA_PROXY=1`,
/// the request generator and both chains' execution trackers ready.
async fn measured_cluster(options: ClusterOptions) -> (Cluster, Burst, [Executed; 2]) {
    let mut cluster = Cluster::start(options).await;
    if std::env::var("HA_PROXY").as_deref() != Ok("1") {
        bypass_proxies(&mut cluster).await;
    }
    let burst = Burst::prepare(&cluster.devnet).await;
    let exec = [
        Executed::new(&cluster.devnet.child).await,
        Executed::new(&cluster.devnet.parent).await,
    ];
    (cluster, burst, exec)
}

/// P2's live phase with every operator's store and journal in PostgreSQL against the SQLite
/// files (issue 15's bar: ≥ 0.9 ×), on fresh clusters in turn (SQLite, PostgreSQL, per round),
/// so both run at the same chain heights. One PostgreSQL server in a temp dir serves the four
/// operators (a database each, through its Unix socket), on the same two cores.
async fn store_comparison(n: usize, rounds: usize, block_secs: u64) {
    let mut rates: [Vec<f64>; 2] = Default::default();
    for round in 1..=rounds {
        for (k, backend) in ["sqlite", "postgres"].into_iter().enumerate() {
            let (cluster, mut burst, mut exec) = measured_cluster(ClusterOptions {
                operators: 4,
                threshold: T,
                recovery_secs: 10,
                postgres: if k == 1 { vec![0, 1, 2, 3] } else { Vec::new() },
                ..ClusterOptions::default()
            })
            .await;
            if block_secs > 0 {
                set_interval_mining(true);
                interval_mining(&cluster.devnet, block_secs).await;
            }
            let live = live_phase(&cluster, &mut exec, &mut burst, n).await;
            check_exactly_once(&cluster, &burst).await;
            let rate = n as f64 / live.secs;
            println!(
                "round {round}: {backend} store: {rate:.1} transfers/s ({n} in {:.2} s), \
                 mean signer call {:.1} ms",
                live.secs,
                1000.0 * live.sign_secs / live.signatures.max(1.0)
            );
            rates[k].push(rate);
        }
    }
    let ratios: Vec<f64> = rates[0].iter().zip(&rates[1]).map(|(s, p)| p / s).collect();
    println!();
    println!("| figure | measured (median of rounds) | spread | goal |");
    println!("|---|---:|---:|---:|");
    for (k, name) in ["SQLite", "PostgreSQL"].into_iter().enumerate() {
        println!(
            "| live: transfers executed /s, {name} store | {:.1} | {} | — |",
            median(&mut rates[k].clone()),
            spread(&rates[k])
        );
    }
    println!(
        "| PostgreSQL store / SQLite store, P2 live rate | {:.2} | {} | ≥ 0.90 |",
        median(&mut ratios.clone()),
        spread(&ratios)
    );
}

/// CPU seconds per process group, for "where the time goes".
#[derive(Clone, Default)]
struct Cpu(BTreeMap<&'static str, f64>);

impl Cpu {
    fn read(cluster: &Cluster) -> Cpu {
        let mut m = BTreeMap::new();
        m.insert(
            "agents (4)",
            agent_pids(cluster).into_iter().map(cpu_secs).sum(),
        );
        m.insert(
            "anvil (2)",
            cpu_secs(cluster.devnet.parent.anvil.pid())
                + cpu_secs(cluster.devnet.child.anvil.pid()),
        );
        m.insert("bench (load, polls)", cpu_secs(std::process::id()));
        Cpu(m)
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu(self
            .0
            .iter()
            .map(|(k, v)| (*k, v - before.0.get(k).copied().unwrap_or(0.0)))
            .collect())
    }
}

/// The RPC methods anvil logged (one line each) in `log` after byte `from`, counted.
fn anvil_methods(log: &std::path::Path, from: u64) -> BTreeMap<String, u64> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        let is_method = l.split_once('_').is_some_and(|(ns, rest)| {
            !ns.is_empty()
                && ns.chars().all(|c| c.is_ascii_lowercase())
                && !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if is_method {
            *m.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn log_len(log: &std::path::Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// Agent log lines that explain a slow phase, by what they say.
const EVENTS: [(&str, &str); 6] = [
    ("standby released", "stuck on another seat's turn"),
    ("recovery rescans", "handle progress stalled: rescanning"),
    ("fee bumps", "replaced with higher fees"),
    ("re-sends", "re-send answered"),
    ("failed votes", "vote failed"),
    ("warnings", " WARN "),
];

/// How often each of [`EVENTS`] appears in the agents' logs so far.
fn events(cluster: &Cluster) -> Vec<usize> {
    let logs: Vec<String> = cluster.nodes.iter().map(|n| n.log_text()).collect();
    EVENTS
        .iter()
        .map(|(_, needle)| logs.iter().map(|l| l.matches(needle).count()).sum())
        .collect()
}

/// Sums of agent metrics over all four agents.
async fn metric_sum(cluster: &Cluster, name: &str) -> f64 {
    let mut sum = 0.0;
    for i in 0..cluster.nodes.len() {
        sum += cluster.metric(i, name).await;
    }
    sum
}

/// Waits until both destinations executed everything sent (`exec`: child, parent). No block
/// is mined by hand here: the agents must get there on their own.
async fn wait_all_executed(
    cluster: &Cluster,
    exec: &mut [Executed; 2],
    sent: [u64; 2],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let (c, p) = (exec[0].poll().await, exec[1].poll().await);
        if c >= sent[0] && p >= sent[1] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all executed within {timeout:?}: p→c {c}/{}, c→p {p}/{}\n{}",
            sent[0],
            sent[1],
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn describe_events(counts: &[usize]) -> String {
    EVENTS
        .iter()
        .zip(counts)
        .map(|((what, _), c)| format!("{what} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn exec_calls(exec: &[Executed; 2]) -> u64 {
    exec[0].calls + exec[1].calls
}

/// What one live phase measured.
struct Live {
    secs: f64,
    send_secs: f64,
    cpu: Cpu,
    rpc_calls: f64,
    txs_sent: f64,
    sign_secs: f64,
    signatures: f64,
    /// RPC calls anvil served on both chains during the phase, the bench's own polls and
    /// requests taken out: what the agents asked for.
    methods: BTreeMap<String, u64>,
    /// Blocks the request sender mined by hand (anvil's automine stall).
    kicks: u64,
    /// [`EVENTS`] logged during the phase.
    events: Vec<usize>,
}

async fn live_phase(
    cluster: &Cluster,
    exec: &mut [Executed; 2],
    burst: &mut Burst,
    n: usize,
) -> Live {
    let calls0 = exec_calls(exec);
    let cpu0 = Cpu::read(cluster);
    let rpc0 = metric_sum(cluster, "bridge_rpc_requests_total").await;
    let tx0 = metric_sum(cluster, "bridge_guard_signed_total").await;
    let sig_s0 = metric_sum(cluster, "bridge_signer_latency_seconds_sum").await;
    let sig_n0 = metric_sum(cluster, "bridge_signer_latency_seconds_count").await;
    let logs = [
        cluster.devnet.parent.anvil.log_path().to_owned(),
        cluster.devnet.child.anvil.log_path().to_owned(),
    ];
    let offsets = [log_len(&logs[0]), log_len(&logs[1])];
    let k0 = kicks();
    let ev0 = events(cluster);
    let start = Instant::now();
    let send = burst.send(n).await;
    wait_all_executed(cluster, exec, burst.sent, Duration::from_secs(1800)).await;
    let calls = exec_calls(exec);
    let secs = start.elapsed().as_secs_f64();
    // Late votes of the fourth agent may still be on their way; they are part of the cost.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut methods = BTreeMap::new();
    for (log, from) in logs.iter().zip(offsets) {
        for (k, v) in anvil_methods(log, from) {
            *methods.entry(k).or_insert(0) += v;
        }
    }
    // The bench's own: its execution polls, the requests and the burst's reads.
    for (k, v) in [
        ("eth_call", calls - calls0 + 2),
        ("eth_sendRawTransaction", n as u64),
        ("eth_getTransactionCount", 10),
    ] {
        if let Some(c) = methods.get_mut(k) {
            *c = c.saturating_sub(v);
        }
    }
    Live {
        events: events(cluster)
            .iter()
            .zip(&ev0)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect(),
        kicks: kicks() - k0,
        methods,
        secs,
        send_secs: send.as_secs_f64(),
        cpu: Cpu::read(cluster).since(&cpu0),
        rpc_calls: metric_sum(cluster, "bridge_rpc_requests_total").await - rpc0,
        txs_sent: metric_sum(cluster, "bridge_guard_signed_total").await - tx0,
        sign_secs: metric_sum(cluster, "bridge_signer_latency_seconds_sum").await - sig_s0,
        signatures: metric_sum(cluster, "bridge_signer_latency_seconds_count").await - sig_n0,
    }
}

/// P6's seconds: live and catch-up phases without and with rate limits, and the agents' starts.
struct P6 {
    free_live: f64,
    free_catch_up: f64,
    free_started: f64,
    limited_live: f64,
    limited_catch_up: f64,
    limited_started: f64,
}

/// Refuse one request in `every` (0: none) on every agent's rate-limiting proxies.
fn set_rate_limit(cluster: &Cluster, every: u64) {
    for node in &cluster.nodes {
        let (p, c) = node.rate_limit.as_ref().expect("cluster started for P6");
        p.set_every(every);
        c.set_every(every);
    }
}

/// Rate limits served by the proxies so far (429s, -32005s).
fn limits_served(cluster: &Cluster) -> (u64, u64) {
    let mut sum = (0, 0);
    for node in &cluster.nodes {
        let (p, c) = node.rate_limit.as_ref().expect("cluster started for P6");
        for s in [p.stats(), c.stats()] {
            sum.0 += s.http_429;
            sum.1 += s.rpc_32005;
        }
    }
    sum
}

async fn p6_phases(
    cluster: &mut Cluster,
    exec: &mut [Executed; 2],
    burst: &mut Burst,
    n: usize,
) -> P6 {
    set_rate_limit(cluster, 0);
    let free = live_phase(cluster, exec, burst, n).await;
    let (free_catch_up, free_started, _) = catch_up_phase(cluster, exec, burst, n).await;
    println!(
        "P6 without limits: live {n} in {:.2} s ({:.1} agent RPC calls per transfer); catch-up {n} in {free_catch_up:.2} s (agents up after {free_started:.2} s)",
        free.secs,
        free.rpc_calls / n as f64
    );
    set_rate_limit(cluster, 5);
    let served0 = limits_served(cluster);
    let limited = live_phase(cluster, exec, burst, n).await;
    // Every agent restarts behind the limits: none may exit on a refused start-up call
    // (`start_agents` panics if one does).
    let (limited_catch_up, limited_started, _) = catch_up_phase(cluster, exec, burst, n).await;
    let served = limits_served(cluster);
    println!(
        "P6 with 1 in 5 refused: live {n} in {:.2} s ({:.1} agent RPC calls per transfer); catch-up {n} in {limited_catch_up:.2} s (agents up after {limited_started:.2} s); \
         limits served: {} HTTP 429, {} JSON-RPC -32005; bridge_rpc_rate_limited_total of the agents since their catch-up start {:.0}",
        limited.secs,
        limited.rpc_calls / n as f64,
        served.0 - served0.0,
        served.1 - served0.1,
        metric_sum(cluster, "bridge_rpc_rate_limited_total").await
    );
    set_rate_limit(cluster, 0);
    P6 {
        free_live: free.secs,
        free_catch_up,
        free_started,
        limited_live: limited.secs,
        limited_catch_up,
        limited_started,
    }
}

/// Agents stopped, `n` requests sent, agents started: seconds from the first start to the last
/// execution, the seconds the four starts took, and the [`EVENTS`] logged meanwhile.
async fn catch_up_phase(
    cluster: &mut Cluster,
    exec: &mut [Executed; 2],
    burst: &mut Burst,
    n: usize,
) -> (f64, f64, Vec<usize>) {
    for i in 0..cluster.nodes.len() {
        cluster.stop_agent(i).await;
    }
    burst.send(n).await;
    let ev0 = events(cluster);
    let start = Instant::now();
    let all: Vec<usize> = (0..cluster.nodes.len()).collect();
    cluster.start_agents(&all).await;
    let started = start.elapsed().as_secs_f64();
    wait_all_executed(cluster, exec, burst.sent, Duration::from_secs(1800)).await;
    let ev = events(cluster)
        .iter()
        .zip(&ev0)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    (start.elapsed().as_secs_f64(), started, ev)
}

/// Mines empty blocks on whichever of the two devnets is lower, chain by chain, until both are
/// at the same height. anvil's cost per block grows with the chain's length (measured here:
/// 0.75 ms per simple transfer on a new chain, 2.6 ms after 2,000 blocks, whatever the
/// `--prune-history`), so two rates are comparable only at the same height.
async fn match_heights(a: &Devnet, b: &Devnet) -> [u64; 2] {
    let mut mined = [0; 2];
    for (k, (x, y)) in [(&a.parent, &b.parent), (&a.child, &b.child)]
        .into_iter()
        .enumerate()
    {
        let (hx, hy) = (
            x.reader().get_block_number().await.unwrap(),
            y.reader().get_block_number().await.unwrap(),
        );
        let (low, gap) = if hx < hy { (x, hy - hx) } else { (y, hx - hy) };
        if gap > 0 {
            low.reader()
                .raw_request::<_, serde_json::Value>("anvil_mine".into(), (gap,))
                .await
                .unwrap_or_else(|e| panic!("anvil_mine: {e}"));
        }
        mined[k] = gap;
    }
    mined
}

/// Switches both chains of `d` from automine (fast set-up) to a block every `secs` seconds.
async fn interval_mining(d: &Devnet, secs: u64) {
    for side in [&d.parent, &d.child] {
        let p = side.reader();
        p.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (false,))
            .await
            .unwrap_or_else(|e| panic!("evm_setAutomine: {e}"));
        p.raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (secs,))
            .await
            .unwrap_or_else(|e| panic!("evm_setIntervalMining: {e}"));
    }
}

/// Every request executed exactly once, no gap.
async fn check_exactly_once(cluster: &Cluster, burst: &Burst) {
    let d = &cluster.devnet;
    for (dest, want, name) in [
        (&d.child, burst.sent[0], "p→c"),
        (&d.parent, burst.sent[1], "c→p"),
    ] {
        let mut nonces = handled_nonces(dest).await;
        let count = nonces.len();
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(nonces.len(), count, "{name}: a request executed twice");
        assert_eq!(
            nonces,
            (0..want).collect::<Vec<_>>(),
            "{name}: executed nonces must be 0..{want}"
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}–{hi:.2}")
}

/// Under `cargo test`: the request generator and the plain-key voters on one small devnet.
async fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let raw = Devnet::start(DevnetOptions {
        dir: dir.path().join("raw"),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let mut burst = Burst::prepare(&raw).await;
    burst.send(6).await;
    let voters = RawVoters::new(&raw, raw.dev_operator_keys()[..T as usize].to_vec()).await;
    let (_, votes, _) = voters.vote_all().await;
    assert_eq!(votes, 6 * T as usize);
    for (dest, want) in [(&raw.child, 3), (&raw.parent, 3)] {
        assert_eq!(Executed::new(dest).await.poll().await, want);
    }
    println!("ha_throughput smoke: 6 requests, {votes} plain-key votes, all executed");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        smoke().await;
        return;
    }
    let which = std::env::var("HA_BENCH").unwrap_or_else(|_| "p2,p4,p5".into());
    let want = |p: &str| which.split(',').any(|w| w.trim().eq_ignore_ascii_case(p));
    let n = env_usize("HA_N", 1000);
    let rounds = env_usize("HA_ROUNDS", 2);
    let p5_n = env_usize("HA_P5_N", 10_000);
    let p5_secs = env_usize("HA_P5_SECS", 900) as u64;
    if want("store") {
        store_comparison(n, rounds, env_usize("HA_BLOCK_SECS", 1) as u64).await;
        return;
    }

    let (mut cluster, mut burst, mut exec) = measured_cluster(ClusterOptions {
        operators: 4,
        threshold: T,
        // Recovery rescans are for stalls; a long catch-up must not look like one too early.
        recovery_secs: 10,
        // P6: the rate-limiting proxies, passing everything until the limited phases.
        rate_limit: want("p6").then_some((0, 1)),
        ..ClusterOptions::default()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let raw = Devnet::start(DevnetOptions {
        dir: dir.path().join("raw"),
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let mut raw_burst = Burst::prepare(&raw).await;
    let voters = RawVoters::new(&raw, raw.dev_operator_keys()[..T as usize].to_vec()).await;
    let block_secs = env_usize("HA_BLOCK_SECS", 1) as u64;
    if block_secs > 0 {
        set_interval_mining(true);
        interval_mining(&cluster.devnet, block_secs).await;
        interval_mining(&raw, block_secs).await;
    }

    println!(
        "ha_throughput: N = {n} requests per phase, {rounds} round(s), 4 agents, t = {T}, SoftHSM, {}",
        if block_secs > 0 {
            format!("a block every {block_secs} s")
        } else {
            "automine (a block per transaction)".into()
        }
    );
    let (mut p2, mut p4) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        if !(want("p2") || want("p4")) {
            break;
        }
        let (raw_rate, raw_full_rate, raw_secs) = if want("p2") {
            let mined = match_heights(&raw, &cluster.devnet).await;
            println!(
                "round {round}: heights matched: {} empty block(s) mined on the lower parent, {} on the lower child",
                mined[0], mined[1]
            );
            // The requests are timed too: the live phase must mine them as well.
            let req_secs = raw_burst.send(n).await.as_secs_f64();
            let anvils = [raw.parent.anvil.pid(), raw.child.anvil.pid()];
            let cpu0: f64 = anvils.iter().map(|p| cpu_secs(*p)).sum();
            let k0 = kicks();
            let (d, votes, executed) = voters.vote_all().await;
            let cpu: f64 = anvils.iter().map(|p| cpu_secs(*p)).sum::<f64>() - cpu0;
            println!(
                "round {round}: raw: {votes} plain-key votes mined in {:.2} s, anvil CPU {cpu:.2} s \
                 ({:.2} ms per vote), {} stall(s) of anvil's automine kicked; executed after \
                 (requests, executed prefix) child {:?}, parent {:?}",
                d.as_secs_f64(),
                1000.0 * cpu / votes as f64,
                kicks() - k0,
                executed[0],
                executed[1]
            );
            println!(
                "round {round}: raw: {n} requests mined in {req_secs:.2} s, then the votes: \
                 {:.1} handle txs/s with the requests' time counted",
                votes as f64 / (d.as_secs_f64() + req_secs)
            );
            (
                votes as f64 / d.as_secs_f64(),
                votes as f64 / (d.as_secs_f64() + req_secs),
                d.as_secs_f64(),
            )
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        let live = live_phase(&cluster, &mut exec, &mut burst, n).await;
        let live_rate = n as f64 / live.secs;
        println!(
            "round {round}: raw {raw_rate:.1} handle txs/s ({} votes in {raw_secs:.2} s); \
             live {live_rate:.1} transfers/s ({n} in {:.2} s, requests sent in {:.2} s)",
            n * T as usize,
            live.secs,
            live.send_secs
        );
        println!(
            "  live: {:.1} votes signed per transfer, {:.1} agent RPC calls per transfer, \
             mean signer call {:.1} ms, {} automine stall(s) kicked; CPU s: {}",
            live.txs_sent / n as f64,
            live.rpc_calls / n as f64,
            1000.0 * live.sign_secs / live.signatures.max(1.0),
            live.kicks,
            live.cpu
                .0
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  agents' log: {}", describe_events(&live.events));
        println!(
            "  agents' RPC calls per transfer (anvil's log): {}",
            live.methods
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n as f64))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if want("p2") {
            p2.push((raw_rate, raw_full_rate, live_rate));
        }
        if want("p4") {
            let (secs, started, ev) = catch_up_phase(&mut cluster, &mut exec, &mut burst, n).await;
            println!("  catch-up, agents' log: {}", describe_events(&ev));
            let rate = n as f64 / secs;
            // A second live phase after the catch-up brackets it: the chains grow during the
            // three phases and anvil slows down with them, so the catch-up is compared with
            // the live rate of the phases before and after (their mean time).
            let after = live_phase(&cluster, &mut exec, &mut burst, n).await;
            let live_mean = n as f64 / ((live.secs + after.secs) / 2.0);
            println!(
                "  live after the catch-up, agents' log: {}",
                describe_events(&after.events)
            );
            println!(
                "  catch-up: {n} requests in {secs:.2} s = {rate:.1} transfers/s \
                 (the four agents, started together, were up after {started:.2} s); live after it {:.1} transfers/s; \
                 → {:.2} × the live rate before and after ({live_mean:.1})",
                n as f64 / after.secs,
                rate / live_mean
            );
            p4.push((live_mean, rate));
        }
    }

    let p6 = if want("p6") {
        Some(p6_phases(&mut cluster, &mut exec, &mut burst, n).await)
    } else {
        None
    };

    let mut p5 = None;
    if want("p5") {
        for i in 0..cluster.nodes.len() {
            cluster.stop_agent(i).await;
        }
        let send = burst.send(p5_n).await;
        println!(
            "P5: {p5_n} requests queued with the agents down (sent in {:.1} s)",
            send.as_secs_f64()
        );
        let start = Instant::now();
        let all: Vec<usize> = (0..cluster.nodes.len()).collect();
        cluster.start_agents(&all).await;
        let pids = agent_pids(&cluster);
        let mut max_rss = vec![0u64; pids.len()];
        let deadline = start + Duration::from_secs(p5_secs);
        let mut done = false;
        while Instant::now() < deadline {
            for (m, pid) in max_rss.iter_mut().zip(&pids) {
                *m = (*m).max(status_kib(*pid, "VmRSS"));
            }
            if exec[0].poll().await >= burst.sent[0] && exec[1].poll().await >= burst.sent[1] {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let hwm: Vec<u64> = pids.iter().map(|p| status_kib(*p, "VmHWM")).collect();
        let rss: Vec<u64> = pids.iter().map(|p| status_kib(*p, "VmRSS")).collect();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "P5: {} after {secs:.1} s ({:.1} transfers/s); per agent VmHWM {:?} KiB, max VmRSS \
             sampled {:?} KiB, VmRSS now {:?} KiB",
            if done {
                "all executed"
            } else {
                "NOT all executed"
            },
            if done { p5_n as f64 / secs } else { f64::NAN },
            hwm,
            max_rss,
            rss
        );
        p5 = Some((hwm, rss, done, secs));
    }
    // A P5 cut short by HA_P5_SECS leaves requests pending: nothing to check then.
    if p5.as_ref().is_none_or(|(_, _, done, _)| *done) {
        check_exactly_once(&cluster, &burst).await;
    }

    // The table for BENCHMARKS.md.
    println!();
    println!("| figure | measured (median of rounds) | spread | goal |");
    println!("|---|---:|---:|---:|");
    if !p2.is_empty() {
        let mut raw: Vec<f64> = p2.iter().map(|(r, _, _)| *r).collect();
        let mut raw_full: Vec<f64> = p2.iter().map(|(_, r, _)| *r).collect();
        let mut live: Vec<f64> = p2.iter().map(|(_, _, l)| *l).collect();
        let ratios: Vec<f64> = p2.iter().map(|(_, r, l)| l * T as f64 / r).collect();
        let strict: Vec<f64> = p2.iter().map(|(r, _, l)| l * T as f64 / r).collect();
        println!(
            "| raw: plain-key handle txs mined /s, requests' time counted | {:.1} | {} | — |",
            median(&mut raw_full),
            spread(&raw_full)
        );
        println!(
            "| raw: plain-key handle txs mined /s, votes alone | {:.1} | {} | — |",
            median(&mut raw),
            spread(&raw)
        );
        println!(
            "| live: transfers executed /s (4 agents) | {:.1} | {} | — |",
            median(&mut live),
            spread(&live)
        );
        println!(
            "| P2: live × t / raw (requests counted on both sides) | {:.2} | {} | ≥ 0.80 |",
            median(&mut ratios.clone()),
            spread(&ratios)
        );
        println!(
            "| P2 strict: live × t / raw votes alone | {:.2} | {} | — |",
            median(&mut strict.clone()),
            spread(&strict)
        );
    }
    if !p4.is_empty() {
        let mut rates: Vec<f64> = p4.iter().map(|(_, c)| *c).collect();
        let ratios: Vec<f64> = p4.iter().map(|(l, c)| c / l).collect();
        println!(
            "| catch-up: transfers executed /s after {n} queued | {:.1} | {} | — |",
            median(&mut rates),
            spread(&rates)
        );
        println!(
            "| P4: catch-up / live (before and after) | {:.2} | {} | ≥ 1.00 |",
            median(&mut ratios.clone()),
            spread(&ratios)
        );
    }
    if let Some(p6) = p6 {
        println!(
            "| P6: live transfers/s, 1 in 5 RPC calls rate-limited / none | {:.1} / {:.1} | {:.2} × | — |",
            n as f64 / p6.limited_live,
            n as f64 / p6.free_live,
            p6.free_live / p6.limited_live
        );
        println!(
            "| P6: catch-up of {n}, rate-limited / none (agents up after) | {:.1} s / {:.1} s ({:.1} s / {:.1} s) | {:.2} × | — |",
            p6.limited_catch_up,
            p6.free_catch_up,
            p6.limited_started,
            p6.free_started,
            p6.free_catch_up / p6.limited_catch_up
        );
    }
    if let Some((hwm, _, done, secs)) = p5 {
        let max = hwm.iter().copied().max().unwrap_or(0);
        println!(
            "| P5: largest agent VmHWM, {p5_n}-request backlog{} | {:.1} MiB | {:.1}–{:.1} MiB | ≤ 64 MiB |",
            if done {
                format!(", all executed in {secs:.0} s")
            } else {
                format!(", {secs:.0} s sampled")
            },
            max as f64 / 1024.0,
            hwm.iter().copied().min().unwrap_or(0) as f64 / 1024.0,
            max as f64 / 1024.0
        );
    }
}
