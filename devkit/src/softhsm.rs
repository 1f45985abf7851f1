//! SoftHSM2 for development, CI and the demo: a token folder with its own config file, and
//! tokens initialised through `softhsm2-util`. SoftHSM keeps its keys in files on this host and
//! runs inside the process that loads it: it is not a place for production keys.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `softhsm2` package installs the module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM token folder and the config file naming it. Processes find it through the
/// `SOFTHSM2_CONF` environment variable, set to [`SoftHsmDir::conf`].
#[derive(Debug, Clone)]
pub struct SoftHsmDir {
    pub conf: PathBuf,
}

impl SoftHsmDir {
    /// Creates `dir/tokens` and `dir/softhsm2.conf` pointing at it (file object store, errors
    /// only in the log, slots that do not disappear).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let tokens = tokens.canonicalize()?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )?;
        Ok(Self { conf })
    }

    /// Initialises a token labelled `label` in the first free slot; the error carries
    /// `softhsm2-util`'s own message.
    pub fn init_token(&self, label: &str, pin: &str, so_pin: &str) -> Result<(), String> {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", pin, "--so-pin", so_pin])
            .output()
            .map_err(|e| {
                format!("softhsm2-util: {e} (install it with ./scripts/setup or apt-get install softhsm2)")
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "softhsm2-util --init-token --label {label}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}
