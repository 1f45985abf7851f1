//! A real Prometheus (Debian's binary, unpacked into `.tools/prometheus` by `scripts/setup`) on
//! 127.0.0.1 for end-to-end alert tests: it scrapes the agents' `/metrics` and evaluates
//! `config/monitoring/bridge-agent.rules.yml` with its durations scaled down, so an alert that
//! needs minutes in production fires within seconds here.
//!
//! ```text
//!  agents' /metrics ──scrape 1 s──► prometheus (temp dir: config, scaled rules, TSDB, log)
//!                                        │ evaluate 1 s
//!  test ◄── GET /api/v1/alerts, /api/v1/query ──┘
//! ```
//!
//! Time scale ([`SCALE`]): one minute of the rules' time is one second here. Only `for:`
//! durations and range-selector windows inside `expr:` are rewritten (`5m` → `5s`, `[15m]` →
//! `[15s]`); any other duration form (hours, seconds, subqueries, `offset`, `keep_firing_for`)
//! stops [`scaled_rules`] rather than being left at full length, so a scaled rule means what the
//! original means on a 60× faster clock. The agents' own periods are not scaled: scenarios run
//! them with short intervals (recovery every 2 s, polls every 100 ms).
//!
//! Prometheus is given `--web.listen-address=127.0.0.1:0` and logs the port the kernel chose
//! ("Listening on"), so no port is guessed. Dropping the handle kills the process by its PID and
//! removes its directory.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Rules' minutes per test second.
pub const SCALE: u64 = 60;
/// Scrape and rule evaluation interval.
const INTERVAL: &str = "1s";

pub fn binary() -> PathBuf {
    std::env::var_os("PROMETHEUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/prometheus/usr/bin/prometheus"),
        PathBuf::from,
    )
}

/// The rules file shipped to operators.
pub fn rules_text() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/monitoring/bridge-agent.rules.yml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` (a Prometheus rules file) with every `for:` duration and every range window in an
/// `expr:` turned from minutes into seconds. Panics on a duration it cannot scale exactly.
pub fn scaled_rules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Indentation of the `expr:` key while inside its (possibly multi-line) value.
    let mut expr_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if expr_indent.is_some_and(|i| !body.is_empty() && indent <= i) {
            expr_indent = None;
        }
        let scaled = if let Some(value) = body.strip_prefix("for: ") {
            format!("{}for: {}", &line[..indent], minutes_to_seconds(value, n))
        } else if let Some(value) = body.strip_prefix("expr:") {
            expr_indent = Some(indent);
            format!("{}expr:{}", &line[..indent], scale_windows(value, n))
        } else if expr_indent.is_some() {
            scale_windows(line, n)
        } else {
            assert!(
                !body.starts_with("keep_firing_for"),
                "rules line {}: keep_firing_for is not scaled",
                n + 1
            );
            line.to_owned()
        };
        out += &scaled;
        out.push('\n');
    }
    out
}

/// `"5m"` → `"5s"`.
fn minutes_to_seconds(value: &str, line: usize) -> String {
    let v = value.trim();
    match v.strip_suffix('m') {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => format!("{n}s"),
        _ => panic!(
            "rules line {}: duration {v:?} is not whole minutes; scale it by hand",
            line + 1
        ),
    }
}

/// Every `[Nm]` in a piece of PromQL → `[Ns]`.
fn scale_windows(expr: &str, line: usize) -> String {
    assert!(
        !expr.contains(" offset "),
        "rules line {}: offset is not scaled",
        line + 1
    );
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .unwrap_or_else(|| panic!("rules line {}: unclosed [", line + 1));
        out += &rest[..open];
        out += "[";
        out += &minutes_to_seconds(&rest[open + 1..close], line);
        out += "]";
        rest = &rest[close + 1..];
    }
    out += rest;
    out
}

/// One entry of `/api/v1/alerts`.
#[derive(Debug, Clone)]
pub struct Alert {
    pub name: String,
    /// `pending` or `firing`.
    pub state: String,
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// Carries every one of `labels`.
    pub fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|l| l == v))
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "job" | "severity"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, "{} {} {{{}}}", self.name, self.state, labels.join(", "))
    }
}

pub struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `targets.json` (file service discovery), written whole and renamed into place so Prometheus
/// never reads half a file.
fn write_targets(dir: &Path, targets: &[(String, u16)]) {
    let groups: Vec<serde_json::Value> = targets
        .iter()
        .map(|(op, port)| {
            serde_json::json!({ "targets": [format!("127.0.0.1:{port}")], "labels": { "op": op } })
        })
        .collect();
    let tmp = dir.join("targets.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&groups).unwrap()).unwrap();
    std::fs::rename(&tmp, dir.join("targets.json")).unwrap();
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`(op label, metrics port)` on 127.0.0.1) as job
    /// `bridge-agent`, with the scaled rules; returns once `/-/ready` answers 200
    /// and every target has been scraped.
    pub async fn start(targets: &[(String, u16)]) -> Prometheus {
        let bin = binary();
        assert!(
            bin.is_file(),
            "{} missing: run ./scripts/setup, or set PROMETHEUS",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yml"), scaled_rules(&rules_text())).unwrap();
        write_targets(dir.path(), targets);
        // Targets from a file Prometheus watches: an agent restarted on a new port (port 0) is
        // followed by rewriting it (`set_targets`).
        let config = format!(
            "global:\n  scrape_interval: {INTERVAL}\n  scrape_timeout: {INTERVAL}\n  \
             evaluation_interval: {INTERVAL}\nrule_files: [rules.yml]\nscrape_configs:\n  \
             - job_name: bridge-agent\n    file_sd_configs:\n      - files: [targets.json]\n        \
             refresh_interval: 1s\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("--config.file=prometheus.yml")
            .arg("--storage.tsdb.path=data")
            .arg("--web.listen-address=127.0.0.1:0")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut prom = Prometheus {
            child,
            base: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = prom.log_text();
            if let Some(addr) = listening_address(&text) {
                break addr;
            }
            if let Some(status) = prom.child.try_wait().unwrap() {
                panic!("prometheus exited at start ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus published no address within 30 s:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        prom.base = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("{}/-/ready", prom.base)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s:\n{}",
                prom.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Its scrape manager applies new targets only every 5 s: wait for the first scrape of
        // each, or a scenario's first seconds go unseen.
        loop {
            let up = prom.query("up{job=\"bridge-agent\"}").await;
            if up.len() == targets.len() {
                return prom;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus scraped {up:?} of {targets:?} within 30 s:\n{}",
                prom.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replaces the scrape targets (an agent restarted on another port) and waits until each
    /// has been scraped (up or down: a killed agent stays a target).
    pub async fn set_targets(&self, targets: &[(String, u16)]) {
        write_targets(self._dir.path(), targets);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self.query("up{job=\"bridge-agent\"}").await;
            let ports: Vec<String> = up
                .iter()
                .filter_map(|(labels, _)| labels.get("instance").cloned())
                .collect();
            if targets
                .iter()
                .all(|(_, port)| ports.contains(&format!("127.0.0.1:{port}")))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus scraped {ports:?}, not all of {targets:?}, within 30 s:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.base);
        let body = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap();
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"));
        assert_eq!(v["status"], "success", "GET {url}: {body}");
        v["data"].clone()
    }

    /// Every alert pending or firing now.
    pub async fn alerts(&self) -> Vec<Alert> {
        let data = self.get("/api/v1/alerts").await;
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let labels: BTreeMap<String, String> = a["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                Alert {
                    name: labels.get("alertname").cloned().unwrap_or_default(),
                    state: a["state"].as_str().unwrap_or_default().to_owned(),
                    labels,
                }
            })
            .collect()
    }

    /// How many alerting rules Prometheus loaded.
    pub async fn rules_loaded(&self) -> usize {
        let data = self.get("/api/v1/rules?type=alert").await;
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| g["rules"].as_array().map_or(0, Vec::len))
            .sum()
    }

    /// An instant query's result vector: each sample's labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self
            .get(&format!("/api/v1/query?query={}", encode(promql)))
            .await;
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// Waits until alert `name` fires with all of `labels`; panics after `timeout` with the
    /// alerts of the moment and `context()` (the agents' log tails, say).
    pub async fn wait_firing(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
        context: impl Fn() -> String,
    ) -> Alert {
        let deadline = Instant::now() + timeout;
        loop {
            let alerts = self.alerts().await;
            if let Some(a) = alerts
                .iter()
                .find(|a| a.name == name && a.state == "firing" && a.has(labels))
            {
                eprintln!("fired: {a}");
                return a.clone();
            }
            if Instant::now() > deadline {
                let now: Vec<String> = alerts.iter().map(ToString::to_string).collect();
                panic!(
                    "{name} {labels:?} did not fire within {timeout:?}; alerts now: {now:#?}\n{}",
                    context()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until every `(alert, labels)` has been seen firing at least once (alerts on counter
    /// increases fire only while the increase is inside their window, so all are watched at once).
    pub async fn wait_all_firing(
        &self,
        want: &[(&str, Vec<(&str, String)>)],
        timeout: Duration,
        context: impl Fn() -> String,
    ) {
        let deadline = Instant::now() + timeout;
        let mut seen = vec![false; want.len()];
        loop {
            let alerts = self.alerts().await;
            for (k, (name, labels)) in want.iter().enumerate() {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if !seen[k]
                    && let Some(a) = alerts
                        .iter()
                        .find(|a| &a.name == name && a.state == "firing" && a.has(&labels))
                {
                    eprintln!("fired: {a}");
                    seen[k] = true;
                }
            }
            if seen.iter().all(|s| *s) {
                return;
            }
            if Instant::now() > deadline {
                let missing: Vec<String> = want
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| !**s)
                    .map(|((n, l), _)| format!("{n} {l:?}"))
                    .collect();
                let now: Vec<String> = alerts.iter().map(Alert::to_string).collect();
                panic!(
                    "never fired within {timeout:?}: {missing:#?}\nalerts now: {now:#?}\n{}",
                    context()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // By PID (std's Child::kill); the temp dir goes with `_dir`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in Prometheus's `msg="Listening on" address=127.0.0.1:PORT` log line.
fn listening_address(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains("msg=\"Listening on\""))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .map(str::to_owned)
}

/// Percent-encodes a query parameter (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
