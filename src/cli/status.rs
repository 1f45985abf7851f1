//! `bridge-agent status --config FILE`: the running agent's state at a glance, from its own
//! `/readyz` and `/metrics` (so it shows what Prometheus sees), or from the chains when the
//! agent is not running.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bridge_agent::chain::{ChainClient, access_config};
use bridge_agent::config::{self, AgentConfig, Side};
use bridge_agent::contracts::Bridge;
use clap::Args;

#[derive(Args)]
pub struct StatusArgs {
    /// The agent's TOML config file; `[http] listen` says where the agent serves.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Metric families shown, in order, with a short caption.
const SHOWN: [(&str, &str); 16] = [
    ("bridge_direction_halted", "halted"),
    ("bridge_request_nonce", "source requestNonce"),
    ("bridge_lower_handle_nonce", "destination lowerHandleNonce"),
    ("bridge_pending_requests", "pending"),
    ("bridge_votes_mined_total", "votes mined"),
    ("bridge_votes_failed_total", "votes failed"),
    ("bridge_reorg_halts_total", "reorg halts"),
    ("bridge_operator_balance_wei", "operator balance (wei)"),
    ("bridge_operator_balance_low", "low balance"),
    (
        "bridge_signer_state",
        "signer (0 usable, 1 degraded, 2 unusable)",
    ),
    ("bridge_txs_sent_total", "txs sent"),
    (
        "bridge_guard_conflicting_votes_refused_total",
        "conflicting votes refused",
    ),
    ("bridge_dialect_info", "bridge dialect"),
    ("bridge_operator_seated", "key seated (0: votes nothing)"),
    (
        "bridge_replica_leading",
        "leading (0: a follower, votes nothing)",
    ),
    ("bridge_replica_epoch", "leader lease epoch"),
];

/// The role line of a `/readyz` body (a replica's: "leading, epoch N" or "following, leader
/// H, epoch N"); `None` without replicas.
fn role_line(readyz: &str) -> Option<&str> {
    readyz
        .lines()
        .last()
        .filter(|l| l.starts_with("leading") || l.starts_with("following"))
}

/// Standard output that ends quietly when the reader goes away (`status | head`): the first
/// failed write (EPIPE, Rust ignores SIGPIPE) stops all further output instead of panicking as
/// `println!` would. The exit status still says what the agent's state was.
struct Out {
    stdout: std::io::Stdout,
    closed: bool,
}

impl Out {
    fn new() -> Self {
        Out {
            stdout: std::io::stdout(),
            closed: false,
        }
    }

    fn write(&mut self, args: std::fmt::Arguments<'_>) {
        if self.closed {
            return;
        }
        let mut lock = self.stdout.lock();
        if lock.write_fmt(args).and_then(|()| lock.flush()).is_err() {
            self.closed = true;
        }
    }
}

/// `println!` onto an [`Out`].
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        $out.write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The lines saying what `dialect` (a label value of `bridge_dialect_info`) implies.
fn print_implications(out: &mut Out, chain: &str, dialect: &str) {
    if let Ok(d) = dialect.parse::<bridge_agent::dialect::Dialect>() {
        for line in bridge_agent::bridge_check::implications(d) {
            outln!(out, "  {chain} bridge ({d}): {line}");
        }
    }
}

/// `chain` and `dialect` of one `bridge_dialect_info{chain="…",dialect="…"} 1` line.
fn dialect_labels(line: &str) -> Option<(&str, &str)> {
    let label = |name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(&line[start..start + len])
    };
    Some((label("chain")?, label("dialect")?))
}

/// `GET path` over plain HTTP/1.0 with a bound on every step; the body, if any.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.take(4 << 20).read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub async fn run(args: StatusArgs) -> ExitCode {
    let cfg = match config::load_with(&args.config, config::Secrets::Skip) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = cfg.agent_http_address();
    let mut out = Out::new();
    match (get(addr, "/readyz"), get(addr, "/metrics")) {
        (Ok((ready, reasons)), Ok((200, metrics))) => {
            outln!(
                out,
                "agent at http://{addr}: {}",
                if ready == 200 { "READY" } else { "NOT READY" }
            );
            if let Some(role) = role_line(&reasons) {
                outln!(out, "  {:<44} {role}", "replica role");
            }
            if ready != 200 {
                out.write(format_args!("{reasons}"));
            }
            for (family, caption) in SHOWN {
                for line in metrics
                    .lines()
                    .filter(|l| l.starts_with(family) && !l.starts_with('#'))
                {
                    let rest = &line[family.len()..];
                    if rest.starts_with('{') || rest.starts_with(' ') {
                        outln!(out, "  {caption:<44} {}", rest.trim());
                    }
                }
            }
            for (chain, dialect) in metrics
                .lines()
                .filter(|l| l.starts_with("bridge_dialect_info{"))
                .filter_map(dialect_labels)
            {
                print_implications(&mut out, chain, dialect);
            }
            if ready == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        _ => {
            outln!(
                out,
                "no agent answers at http://{addr} (not running, or [http] listen differs); reading the chains:"
            );
            chain_view(&cfg, &mut out).await
        }
    }
}

/// Per direction, the bridges' own progress, without the agent.
async fn chain_view(cfg: &AgentConfig, out: &mut Out) -> ExitCode {
    let mut clients = Vec::new();
    for side in Side::ALL {
        let chain = cfg.chain(side);
        match ChainClient::connect(access_config(cfg, side)).await {
            Ok(c) => {
                let target = bridge_agent::bridge_check::Target {
                    chain: side.as_str().into(),
                    bridge: chain.bridge,
                    counterpart: cfg.chain(side.other()).bridge,
                    operator: None,
                    configured: chain.dialect,
                };
                match bridge_agent::bridge_check::check(&c, &target).await {
                    Ok(r) => {
                        outln!(out, "  {side} bridge {}: dialect {}", r.bridge, r.dialect);
                        print_implications(out, side.as_str(), r.dialect.as_str());
                    }
                    Err(e) => outln!(out, "  NOT VERIFIED: {e}"),
                }
                clients.push((side, c, chain.bridge))
            }
            Err(e) => {
                eprintln!("error: {side} chain: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for (src, dst) in [(0, 1), (1, 0)] {
        let (src_side, src_client, src_bridge) = &clients[src];
        let (dst_side, dst_client, dst_bridge) = &clients[dst];
        let (sb, db) = (*src_bridge, *dst_bridge);
        let requested = src_client
            .run("Bridge.requestNonce", move |p| async move {
                Bridge::new(sb, p).requestNonce().call().await
            })
            .await;
        let lower = dst_client
            .run("Bridge.lowerHandleNonce", move |p| async move {
                Bridge::new(db, p).lowerHandleNonce().call().await
            })
            .await;
        match (requested, lower) {
            (Ok(r), Ok(l)) => outln!(
                out,
                "  {src_side} → {dst_side}: requestNonce {r}, lowerHandleNonce {l}, pending {}",
                r.saturating_sub(l)
            ),
            (Err(e), _) | (_, Err(e)) => {
                outln!(
                    out,
                    "  {src_side} → {dst_side}: cannot read the bridges: {e}"
                )
            }
        }
    }
    ExitCode::from(3)
}
