//! The operator's `bridge-agent` carries the agent, keys, rotation, admin, status and config
//! check only: no local private-key signer, no KMS simulator, no devnet or demo, and no
//! crash-injection hook. Both are read from what cargo and the linker produced, not from a list
//! kept by hand: the normal and build dependency graph of `-p bridge-agent` (dev edges are the
//! tests' business), and the strings in the binary these tests run.

use std::process::Command;

/// Crates the operator binary must not link, and why.
const FORBIDDEN: [(&str, &str); 3] = [
    (
        "alloy-signer-local",
        "a local private-key signer: the agent holds no key",
    ),
    ("hsm-sim", "the KMS simulator is for tests and the demo"),
    (
        "bridge-devkit",
        "the devnet, demo and test support are development tools",
    ),
];

/// What a crash-injection hook looks like from outside: the environment variable the old
/// in-binary hook read, the development binary's command, and the message printed on abort.
const HOOK_MARKS: [&str; 3] = [
    "BRIDGE_AGENT_ROTATE_CRASH_AFTER",
    "rotate-crash",
    "aborting (test hook)",
];

fn cargo_tree(extra: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "-p",
            "bridge-agent",
        ])
        .args(extra)
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

/// The crate names in `cargo tree --prefix none` output (`name vX.Y.Z (…)` per line).
fn crate_names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn dependency_graph_has_no_local_signer_simulator_or_devkit() {
    let tree = cargo_tree(&["-e", "normal,build"]);
    let names = crate_names(&tree);
    // The graph was really read: the signer crate and alloy are in it.
    assert!(names.contains(&"bridge-signer"), "{tree}");
    assert!(names.contains(&"alloy"), "{tree}");
    let found: Vec<String> = FORBIDDEN
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    assert!(
        found.is_empty(),
        "the operator binary's dependency graph contains: {}",
        found.join("; ")
    );
}

#[test]
fn the_check_sees_what_the_tests_link() {
    // The same check over the dev edges finds the devkit and the local signer: the names and
    // the parsing above are right, so the first test's silence means something.
    let tree = cargo_tree(&["-e", "normal,build,dev"]);
    let names = crate_names(&tree);
    for name in ["alloy-signer-local", "bridge-devkit", "hsm-sim"] {
        assert!(
            names.contains(&name),
            "{name} missing from the dev graph:\n{tree}"
        );
    }
}

#[test]
fn binary_has_no_crash_injection_hook() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_bridge-agent")).expect("read bridge-agent");
    let contains = |needle: &str| bin.windows(needle.len()).any(|w| w == needle.as_bytes());
    // The binary was really searched: its own command names are in it.
    assert!(contains("keys rotate"), "no `keys rotate` in the binary?");
    let found: Vec<&str> = HOOK_MARKS.into_iter().filter(|m| contains(m)).collect();
    assert!(
        found.is_empty(),
        "the operator binary carries a crash hook: {found:?}"
    );
}

#[test]
fn no_test_hook_or_development_feature_is_on() {
    // A `test-hooks`-style feature of our crates, or alloy's local signer / anvil methods,
    // would show in the feature graph of a plain build of the operator's package.
    let tree = cargo_tree(&["-e", "features", "-e", "normal,build"]);
    assert!(tree.contains("alloy feature \"provider-http\""), "{tree}");
    let found: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let ours =
                l.starts_with("bridge-agent feature") || l.starts_with("bridge-signer feature");
            (ours && (l.contains("hook") || l.contains("test")))
                || l.contains("feature \"signer-local\"")
                || l.contains("feature \"provider-anvil-api\"")
                || l.contains("feature \"anvil-api\"")
        })
        .collect();
    assert!(
        found.is_empty(),
        "development features on in the operator build: {found:?}"
    );
}
