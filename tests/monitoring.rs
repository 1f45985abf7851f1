//! `config/monitoring/`: the alert rules and the Grafana dashboard name only metrics the agent
//! really exports (read from a rendered `/metrics`, not from a list), with labels those metrics
//! carry, and cover the alarms SECURITY.md and the operator guide rely on.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bridge_agent::metrics::AgentMetrics;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Metric families the agent exports → their kind (`# TYPE` lines of a rendered registry).
fn exported() -> BTreeMap<String, String> {
    AgentMetrics::new()
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// Every `bridge_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("bridge_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if boundary {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// Is `name` a series of an exported family (histograms add `_bucket`, `_sum`, `_count`)?
fn is_exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|s| {
        name.strip_suffix(s)
            .is_some_and(|base| families.get(base).is_some_and(|k| k == "histogram"))
    })
}

#[test]
fn the_registry_renders_its_families_even_before_any_sample() {
    let families = exported();
    for name in [
        "bridge_request_nonce",
        "bridge_operator_balance_low",
        "bridge_signer_state",
        "bridge_guard_conflicting_votes_refused_total",
        "bridge_direction_halted",
        "bridge_signer_latency_seconds",
    ] {
        assert!(
            families.contains_key(name),
            "{name} not rendered: {families:?}"
        );
    }
}

#[test]
fn alert_rules_use_only_exported_metrics_and_cover_the_alarms() {
    let rules = read("config/monitoring/bridge-agent.rules.yml");
    let families = exported();
    let used = metric_names(&rules);
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        // `bridge-agent` the job name is not a metric; identifiers are.
        assert!(
            is_exported(name, &families),
            "rules use {name}, which the agent does not export"
        );
    }
    for alert in [
        "BridgeDirectionStalled",
        "BridgeOperatorBalanceLow",
        "BridgeSignerUnusable",
        "BridgeConflictingVoteRefused",
        "BridgeReorgHalt",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "no alert {alert}"
        );
    }
    // Every alert has an expression and a severity.
    let alerts = rules.matches("- alert: ").count();
    assert_eq!(rules.matches("        expr: ").count(), alerts);
    assert_eq!(rules.matches("          severity: ").count(), alerts);
    // The one label value the rules select on is one the agent writes.
    let rendered = AgentMetrics::new().render();
    assert!(rendered.contains("reason=\"unexpected\""), "{rendered}");
    assert!(rules.contains("reason=\"unexpected\""));
}

#[test]
fn grafana_dashboard_is_valid_json_using_only_exported_metrics() {
    let text = read("config/monitoring/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dash["uid"], "bridge-agent");
    let panels = dash["panels"].as_array().expect("panels");
    let families = exported();
    let mut exprs = 0;
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("target expr");
            exprs += 1;
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {:?}: no metric in {expr}",
                p["title"]
            );
            for name in names {
                assert!(
                    is_exported(&name, &families),
                    "panel {:?} uses {name}, which the agent does not export",
                    p["title"]
                );
            }
        }
    }
    assert!(exprs >= 20, "only {exprs} queries");
    // The asked-for alarms each have a panel.
    for metric in [
        "bridge_direction_halted",
        "bridge_operator_balance_low",
        "bridge_signer_state",
        "bridge_guard_conflicting_votes_refused_total",
        "bridge_lower_handle_nonce",
    ] {
        assert!(text.contains(metric), "no panel shows {metric}");
    }
}

/// `promtool check rules` and the rule unit tests (`bridge-agent.rules.test.yml`: each alert
/// fires on a synthetic series and stays quiet before). promtool is unpacked from Debian's
/// `prometheus` package into `.tools/` by `scripts/setup` (not installed: that would start a
/// Prometheus service); `PROMTOOL` names another one.
#[test]
fn promtool_checks_and_unit_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("config/monitoring");
    let promtool = std::env::var_os("PROMTOOL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".tools/prometheus/usr/bin/promtool"));
    let version = std::process::Command::new(&promtool)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run ./scripts/setup, or set PROMTOOL",
                promtool.display()
            )
        });
    assert!(version.status.success());
    for args in [
        &["check", "rules", "bridge-agent.rules.yml"][..],
        &["test", "rules", "bridge-agent.rules.test.yml"][..],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
