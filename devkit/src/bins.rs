//! Where the two binaries are. Both live in cargo's profile folder (`target/debug`): the
//! operator's `bridge-agent`, which the demo starts, and the development `bridge-dev`, which
//! tests run. Cargo gives an integration test `CARGO_BIN_EXE_*` only for its own package's
//! binaries and builds only the libraries of dev-dependencies, hence [`dev_binary`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Names the operator binary the demo starts, instead of the one beside `bridge-dev`.
pub const OPERATOR_BIN_ENV: &str = "BRIDGE_AGENT_BIN";

/// The profile folder this process runs from: its own folder, or the parent of `deps/` for a
/// test binary.
pub fn profile_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| std::io::Error::other(format!("{} has no folder", exe.display())))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The operator's `bridge-agent`: `$BRIDGE_AGENT_BIN`, else the one beside this executable.
pub fn operator_binary() -> Result<PathBuf, String> {
    let path = match std::env::var_os(OPERATOR_BIN_ENV) {
        Some(p) => PathBuf::from(p),
        None => profile_dir()
            .map_err(|e| format!("cannot find this executable's folder: {e}"))?
            .join("bridge-agent"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the operator binary {} is missing: build it (`cargo build -p bridge-agent`) or set \
             {OPERATOR_BIN_ENV} to its path",
            path.display()
        ))
    }
}

/// `bridge-dev`, built once per test process into the profile folder the test runs from (so
/// it links the same build of the libraries). Panics with cargo's message if it does not
/// build: meant for tests.
pub fn dev_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = profile_dir().expect("this test's profile folder");
        let target = profile.parent().expect("the target folder");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--bin", "bridge-dev", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target);
        match profile.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            other => panic!("bridge-dev: unknown cargo profile folder {other:?}"),
        }
        let out = build.output().expect("run cargo to build bridge-dev");
        assert!(
            out.status.success(),
            "cargo build --bin bridge-dev failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile.join("bridge-dev")
    })
}
