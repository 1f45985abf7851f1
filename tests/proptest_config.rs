//! Property tests of config parsing (proptest: cargo-fuzz needs a nightly toolchain, and CI
//! has stable only).
//!
//! - arbitrary text, and TOML-looking text: the loader never panics, and every problem it
//!   reports has a message and, when it has a place, one inside the file;
//! - a valid file mutated line by line (lines dropped, duplicated, values replaced, keys
//!   added): the same;
//! - any set of independent mistakes in a valid file is reported completely, each at its own
//!   path, and nothing else is ("every problem at once").
//!
//! Cases per property: `PROPTEST_CASES` (default 256). Longer run:
//! `PROPTEST_CASES=20000 cargo test --test proptest_config`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::OnceLock;

use bridge_agent::config::{self, Problem};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A valid config with every table and most keys written out; its PIN file exists.
fn base() -> &'static str {
    static BASE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let pin = dir.path().join("pin");
            std::fs::write(&pin, "1234\n").unwrap();
            let chain = |name: &str, id: u64, bridge: &str, port: u16| {
                format!(
                    "[{name}]\nchain_id = {id}\nrpc = [\"http://127.0.0.1:{port}\"]\n\
                     ws = \"ws://127.0.0.1:{port}\"\nbridge = \"{bridge}\"\ndeploy_block = 0\n\
                     confirmations = 0\npoll_interval_ms = 1000\nrpc_timeout_ms = 5000\n\
                     min_balance = \"0.5\"\n\n[{name}.fees]\nmode = \"eip1559\"\nmax_fee_gwei = 500\n\
                     priority_fee_gwei = 1\nbump_after_secs = 30\nbump_percent = 15\nmax_bumps = 5\n"
                )
            };
            let text = format!(
                "[agent]\ndata_dir = \"{dir}/data\"\nname = \"op\"\n\n[http]\nlisten = \"127.0.0.1:9100\"\n\n\
                 [log]\nformat = \"text\"\nlevel = \"info\"\n\n[recovery]\ninterval_secs = 30\n\
                 window_blocks = 1000\n\n[signer]\nbackend = \"pkcs11\"\n\
                 module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\n\
                 pin = {{ file = \"{pin}\" }}\nsessions = 2\n\n{}\n{}",
                chain("parent", 1001, "0x00000000000000000000000000000000000000b1", 8545),
                chain("child", 1002, "0x00000000000000000000000000000000000000b2", 8546),
                dir = dir.path().display(),
                pin = pin.display(),
            );
            (dir, text)
        })
        .1
}

fn load(text: &str) -> Result<config::AgentConfig, Vec<Problem>> {
    config::load_str(text, Path::new("fuzz.toml")).map_err(|e| {
        // Display must work too (it is what the operator reads).
        assert!(e.to_string().contains("fuzz.toml"));
        e.problems
    })
}

/// What every report must satisfy, whatever the input.
fn check_report(text: &str) -> Result<(), TestCaseError> {
    let Err(problems) = load(text) else {
        return Ok(());
    };
    prop_assert!(!problems.is_empty(), "an error without problems");
    let lines = text.lines().count().max(1);
    for p in &problems {
        prop_assert!(
            !p.message.trim().is_empty(),
            "problem without a message: {:?}",
            p
        );
        if let Some(at) = p.location {
            prop_assert!(
                at.line >= 1 && at.line <= lines + 1,
                "problem placed at line {} of a {}-line file: {:?}",
                at.line,
                lines,
                p
            );
        }
    }
    Ok(())
}

/// A TOML value of a random type.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,30}".prop_map(|s| format!("{s:?}")),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[\"http://127.0.0.1:1\", 5]".to_owned()),
        Just("{ env = \"X\", file = \"y\" }".to_owned()),
        Just("{ file = \"/nonexistent/pin\" }".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("\"0x\"".to_owned()),
        Just("\"\"".to_owned()),
    ]
}

/// Key names: real ones (so the value checks are reached) and a few that are not.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "data_dir",
        "name",
        "listen",
        "format",
        "level",
        "interval_secs",
        "window_blocks",
        "backend",
        "module",
        "token_label",
        "key_label",
        "key_id",
        "pin",
        "sessions",
        "call_timeout_ms",
        "retry",
        "region",
        "endpoint",
        "chain_id",
        "rpc",
        "ws",
        "bridge",
        "deploy_block",
        "confirmations",
        "poll_interval_ms",
        "rpc_timeout_ms",
        "min_balance",
        "fees",
        "signer",
        "mode",
        "max_fee_gwei",
        "priority_fee_gwei",
        "gas_price_gwei",
        "bump_after_secs",
        "bump_percent",
        "max_bumps",
        "unknown_key",
        "parent",
        "child",
    ])
    .prop_map(str::to_owned)
}

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Duplicate(usize),
    SetValue(usize, String),
    Insert(usize, String, String),
    InsertLine(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), value()).prop_map(|(i, v)| Edit::SetValue(i, v)),
        (any::<usize>(), key(), value()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
        (any::<usize>(), "[ -~]{0,40}").prop_map(|(i, l)| Edit::InsertLine(i, l)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len();
    match e {
        Edit::Drop(i) => {
            lines.remove(i % n);
        }
        Edit::Duplicate(i) => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Edit::SetValue(i, v) => {
            let l = &mut lines[i % n];
            if let Some((k, _)) = l.split_once('=') {
                *l = format!("{k}= {v}");
            }
        }
        Edit::Insert(i, k, v) => lines.insert(i % (n + 1), format!("{k} = {v}")),
        Edit::InsertLine(i, l) => lines.insert(i % (n + 1), l.clone()),
    }
    lines.join("\n")
}

/// Mistakes that are independent of each other: (the path it must be reported at, table, key,
/// bad value). At most one per table can be a type error (serde stops a table at its first).
const MISTAKES: &[(&str, &str, &str, &str)] = &[
    ("agent.name", "agent", "name", "5"),
    ("http.listen", "http", "listen", "\"not-an-address\""),
    ("log.level", "log", "level", "\"=nonsense=\""),
    ("recovery.interval_secs", "recovery", "interval_secs", "0"),
    ("recovery.window_blocks", "recovery", "window_blocks", "0"),
    ("signer.sessions", "signer", "sessions", "0"),
    ("parent.bridge", "parent", "bridge", "\"0x1234\""),
    ("parent.rpc", "parent", "rpc", "[\"ftp://127.0.0.1:1\"]"),
    ("parent.poll_interval_ms", "parent", "poll_interval_ms", "0"),
    ("child.min_balance", "child", "min_balance", "\"lots\""),
    ("child.ws", "child", "ws", "\"http://127.0.0.1:1\""),
    ("child.rpc_timeout_ms", "child", "rpc_timeout_ms", "0"),
    (
        "parent.fees.bump_percent",
        "parent.fees",
        "bump_percent",
        "5",
    ),
    // The cross-check names the cap: "500 is below priority_fee_gwei (501)".
    (
        "child.fees.max_fee_gwei",
        "child.fees",
        "priority_fee_gwei",
        "501",
    ),
];

/// `text` with `key` in `[table]` set to `value`.
fn set(text: &str, table: &str, key: &str, value: &str) -> String {
    let mut current = String::new();
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if let Some(h) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                current = h.to_owned();
            } else if current == table && l.starts_with(&format!("{key} =")) {
                done = true;
                return format!("{key} = {value}");
            }
            l.to_owned()
        })
        .collect();
    assert!(done, "{table}.{key} not in the base config");
    out.join("\n")
}

#[test]
fn the_base_config_is_valid_and_each_mistake_is_caught_alone() {
    load(base()).unwrap_or_else(|p| panic!("{p:#?}"));
    for (path, table, key, value) in MISTAKES {
        let problems = load(&set(base(), table, key, value)).unwrap_err();
        assert!(
            problems.iter().all(|p| p.path.starts_with(path)),
            "{path}: {problems:#?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_report(&text)?;
    }

    #[test]
    fn toml_looking_text_never_panics(text in "([a-z_.]{0,12}( ?= ?)?[\\[\\]{}\"0-9a-z,.:/ =-]{0,30}\n){0,12}") {
        check_report(&text)?;
    }

    #[test]
    fn edited_valid_config_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text = base().to_owned();
        for e in &edits {
            text = apply(&text, e);
        }
        check_report(&text)?;
    }

    #[test]
    fn every_mistake_is_reported_at_once(
        chosen in prop::sample::subsequence(MISTAKES.to_vec(), 1..=MISTAKES.len()),
    ) {
        let mut text = base().to_owned();
        for (_, table, key, value) in &chosen {
            text = set(&text, table, key, value);
        }
        let problems = match load(&text) {
            Ok(_) => return Err(TestCaseError::fail("a broken config loaded")),
            Err(p) => p,
        };
        for (path, ..) in &chosen {
            prop_assert!(
                problems.iter().any(|p| p.path.starts_with(path)),
                "{} not reported among {:#?}",
                path,
                problems
            );
        }
        for p in &problems {
            prop_assert!(
                chosen.iter().any(|(path, ..)| p.path.starts_with(path)),
                "unexpected problem {:?}",
                p
            );
        }
    }
}
