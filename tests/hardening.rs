//! Build hardening that must not silently regress: `#![forbid(unsafe_code)]` in every crate
//! root, binary and bench of the workspace (test files may set environment variables, which
//! needs `unsafe` in edition 2024), the release profile, and no code that relies on catching a
//! panic (the release profile aborts on panic; SECURITY.md explains why that is safe).

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

/// Targets allowed to use `unsafe`, each with its reason.
const UNSAFE_ALLOWED: &[(&str, &str)] = &[
    (
        "signer/benches/p1_signing.rs",
        "points SoftHSM at its token directory with std::env::set_var before loading the module",
    ),
    (
        "devkit/src/lib.rs",
        "softhsm.rs points SoftHSM at a token folder (SOFTHSM2_CONF) while it makes tokens; \
         denied everywhere else in the crate",
    ),
    (
        "benches/ha_throughput.rs",
        "includes the HA harness (tests/support), which sets SOFTHSM2_CONF the same way",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_crate_root_binary_and_bench_forbids_unsafe() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|k| k.as_str())
                .collect();
            if !kinds
                .iter()
                .any(|k| matches!(*k, "lib" | "rlib" | "bin" | "bench"))
            {
                continue;
            }
            let src = Path::new(target["src_path"].as_str().unwrap());
            let rel = src
                .strip_prefix(root())
                .unwrap_or(src)
                .display()
                .to_string();
            let text = std::fs::read_to_string(src).unwrap();
            let forbids = text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]");
            match UNSAFE_ALLOWED.iter().find(|(p, _)| *p == rel) {
                Some(_) => assert!(
                    !forbids,
                    "{rel} forbids unsafe now: drop it from UNSAFE_ALLOWED"
                ),
                None => assert!(forbids, "{rel} lacks #![forbid(unsafe_code)]"),
            }
            checked.push(rel);
        }
    }
    for must in [
        "src/lib.rs",
        "src/main.rs",
        "signer/src/lib.rs",
        "hsm-sim/src/lib.rs",
        "hsm-sim/src/main.rs",
        "devkit/src/lib.rs",
        "devkit/src/main.rs",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not among the targets: {checked:?}"
        );
    }
}

#[test]
fn release_profile_checks_overflow_and_aborts_on_panic() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release["overflow-checks"].as_bool(), Some(true));
    assert_eq!(release["panic"].as_str(), Some("abort"));
}

/// With `panic = "abort"`, `catch_unwind` catches nothing: code must not depend on it.
#[test]
fn no_code_relies_on_catching_panics() {
    fn scan(dir: &Path, hits: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, hits);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("catch_unwind") {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    let mut hits = Vec::new();
    for dir in ["src", "signer/src", "hsm-sim/src"] {
        scan(&root().join(dir), &mut hits);
    }
    assert!(
        hits.is_empty(),
        "catch_unwind in {hits:?}: incompatible with panic = \"abort\""
    );
}
