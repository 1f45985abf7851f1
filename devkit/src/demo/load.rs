//! The demo's load: transfers of every token type in both directions, a progress line while
//! they execute, then latencies and a reconciliation of balances on both chains.

use super::DemoError;
use super::agents::Running;
use super::traffic::{EXECUTION_POLL, Executions, Kind, Sent, Traffic, observe_executions};
use crate::devnet::Devnet;
use std::collections::HashMap;
use std::io::Write;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Report {
    transfers: usize,
    by_kind: HashMap<(bool, Kind), usize>,
    latencies_ms: Vec<u128>,
    reconciled: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        let mut l = self.latencies_ms.clone();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        println!("[4/5] summary");
        println!("      transfers executed: {}/{}", l.len(), self.transfers);
        for ((p2c, kind), n) in {
            let mut v: Vec<_> = self.by_kind.iter().collect();
            v.sort_by_key(|((p, k), _)| (!*p, format!("{k:?}")));
            v
        } {
            let dir = if *p2c {
                "parent → child"
            } else {
                "child → parent"
            };
            println!("        {dir} {kind:?}: {n}");
        }
        println!(
            "      latency request mined → executed (4 agents, t = 3): p50 {} ms, p99 {} ms",
            pct(0.50),
            pct(0.99)
        );
        println!("      balances reconciled:");
        for line in &self.reconciled {
            println!("        {line}");
        }
    }
}

/// How the demo sends its transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// All at once, one after another without waiting: the agents vote under load.
    Burst,
    /// Each only after the previous one executed: the unloaded latency (benchmark P3).
    OneAtATime,
}

pub async fn run(d: &Devnet, n: usize, pace: Pace, agents: &Running) -> Result<Report, DemoError> {
    let (executions, observer) = observe_executions(d);
    let result = send_and_wait(d, n, pace, agents, &executions).await;
    observer.abort();
    result
}

async fn send_and_wait(
    d: &Devnet,
    n: usize,
    pace: Pace,
    agents: &Running,
    executions: &Executions,
) -> Result<Report, DemoError> {
    let how = match pace {
        Pace::Burst => "without waiting",
        Pace::OneAtATime => "one at a time, each after the previous executed",
    };
    println!("      sending {n} transfers (native, ERC-20, ERC-721; both directions), {how}…");
    let progress = Progress::new(n);
    let mut traffic = Traffic::new(d);
    for _ in 0..n {
        let sent = traffic.send_next(d).await?;
        if pace == Pace::OneAtATime {
            wait_executed(&[sent], executions, None, agents).await?;
        }
        progress.show(done_count(traffic.sent(), executions));
    }
    let latencies = wait_executed(traffic.sent(), executions, Some(&progress), agents).await?;
    eprintln!();
    Ok(Report {
        transfers: n,
        by_kind: traffic.by_kind().clone(),
        latencies_ms: latencies,
        reconciled: traffic.reconcile(d).await?,
    })
}

fn done_count(sent: &[Sent], executions: &Executions) -> usize {
    let map = executions.lock().unwrap_or_else(PoisonError::into_inner);
    sent.iter()
        .filter(|s| map.contains_key(&(s.p2c, s.nonce)))
        .count()
}

/// Waits up to [`TIMEOUT`] until every transfer in `sent` executed; returns their latencies in
/// milliseconds (request receipt → execution seen).
async fn wait_executed(
    sent: &[Sent],
    executions: &Executions,
    progress: Option<&Progress>,
    agents: &Running,
) -> Result<Vec<u128>, DemoError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        {
            let map = executions.lock().unwrap_or_else(PoisonError::into_inner);
            let done: Vec<u128> = sent
                .iter()
                .filter_map(|s| {
                    map.get(&(s.p2c, s.nonce))
                        .map(|t| t.saturating_duration_since(s.at).as_millis())
                })
                .collect();
            if let Some(p) = progress {
                p.show(done.len());
            }
            if done.len() == sent.len() {
                return Ok(done);
            }
            if Instant::now() > deadline {
                eprintln!();
                eprintln!("{}", agents.log_tails());
                return Err(DemoError::Timeout(
                    sent.len() - done.len(),
                    TIMEOUT,
                    "the demo folder's agents/".into(),
                ));
            }
        }
        tokio::time::sleep(EXECUTION_POLL).await;
    }
}

/// The progress line on stderr.
struct Progress {
    total: usize,
    shown: std::cell::Cell<usize>,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            shown: std::cell::Cell::new(usize::MAX),
        }
    }

    fn show(&self, done: usize) {
        if self.shown.replace(done) == done {
            return;
        }
        let width = 30;
        let filled = done * width / self.total.max(1);
        eprint!(
            "\r      [{}{}] {done}/{} executed",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
    }
}
