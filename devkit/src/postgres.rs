//! A throw-away PostgreSQL server for tests: its own data directory in a temporary folder,
//! reachable only through a Unix socket in that folder (no TCP port, no system service), a
//! generated superuser password (given to `initdb` in a file, never on a command line), stopped
//! and removed on drop. [`SocketProxy`] puts a TCP port in front of it that a test can cut or
//! stall, to play a network fault between an agent and its database.
//!
//! PostgreSQL refuses to run as root: under root the server's commands run as the `postgres`
//! user (Debian's package creates it), which then owns the folder.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bridge_db::{PgConfig, PgTls};

use crate::wait::wait_until_blocking;

/// The superuser `initdb` creates.
const SUPERUSER: &str = "postgres";
/// How long starting or stopping the server may take.
const PG_CTL_TIMEOUT_SECS: u64 = 30;

/// A running (or stopped) test server. Dropping it stops the server and removes its folder.
pub struct PgServer {
    /// The temporary folder: data directory, socket, log.
    root: PathBuf,
    bindir: PathBuf,
    password: String,
    /// The user the server runs as when this process is root (uid, gid).
    run_as: Option<(u32, u32)>,
    running: bool,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("root", &self.root)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, or `$PG_BINDIR`.
pub fn bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        bail!("PG_BINDIR={} has no initdb", dir.display());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).context(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run ./scripts/setup, \
         or set PG_BINDIR",
    )
}

impl PgServer {
    /// Creates a cluster in a new temporary folder and starts it.
    pub fn start() -> anyhow::Result<Self> {
        let bindir = bindir()?;
        let root = make_root()?;
        let mut server = Self {
            root,
            bindir,
            password: random_hex(16)?,
            run_as: None,
            running: false,
        };
        server.init().context("initdb")?;
        server.start_again()?;
        Ok(server)
    }

    fn init(&mut self) -> anyhow::Result<()> {
        // A folder this process creates is owned by its effective user: uid 0 means root.
        if std::fs::metadata(&self.root)?.uid() == 0 {
            let (uid, gid) = passwd_user(SUPERUSER).context(
                "running as root and there is no 'postgres' user to run the server as \
                 (install Debian's postgresql package)",
            )?;
            std::os::unix::fs::chown(&self.root, Some(uid), Some(gid))?;
            self.run_as = Some((uid, gid));
        }
        let pwfile = self.root.join("pwfile");
        write_private(&pwfile, &self.password)?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let out = self
            .pg_command("initdb")
            .arg("-D")
            .arg(self.data())
            .arg("--auth=scram-sha-256")
            .arg(format!("--username={SUPERUSER}"))
            .arg("--pwfile")
            .arg(&pwfile)
            .args([
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output();
        let _ = std::fs::remove_file(&pwfile);
        check("initdb", out?)?;
        let conf = format!(
            "\n# bridge-devkit test server\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             fsync = on\nmax_connections = 200\nshared_buffers = 16MB\nlogging_collector = off\n",
            self.root.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))?
            .write_all(conf.as_bytes())?;
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The server's log (in the temporary folder).
    pub fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The folder holding the server's Unix socket (`host=` of a connection).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The socket itself.
    pub fn socket_path(&self) -> PathBuf {
        self.root.join(".s.PGSQL.5432")
    }

    /// A command of the server's binaries, run as the server's user.
    fn pg_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(name));
        cmd.current_dir(&self.root)
            .stdin(Stdio::null())
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Starts the server again on the same data (after [`PgServer::stop`]).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.running {
            return Ok(());
        }
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", &PG_CTL_TIMEOUT_SECS.to_string(), "start"])
            .output()?;
        check("pg_ctl start", out).with_context(|| self.log_tail())?;
        self.running = true;
        let socket = self.socket_path();
        wait_until_blocking(Duration::from_secs(10), "the server's socket", || {
            UnixStream::connect(&socket).ok().map(drop)
        })?;
        Ok(())
    }

    /// Stops the server (fast shutdown: open connections are closed); the data stays.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args([
                "-m",
                "fast",
                "-w",
                "-t",
                &PG_CTL_TIMEOUT_SECS.to_string(),
                "stop",
            ])
            .output()?;
        check("pg_ctl stop", out).with_context(|| self.log_tail())?;
        self.running = false;
        Ok(())
    }

    /// Stops and starts the server on the same data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// True while started.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The superuser's password (for a test that builds its own connection string).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates database `name` (letters, digits, `_`) and returns its URL, password included.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        check_name(name)?;
        let pgpass = self.root.join("pgpass");
        write_private(&pgpass, &format!("*:*:*:{SUPERUSER}:{}\n", self.password))?;
        let out = Command::new(self.bindir.join("psql"))
            .env("PGPASSFILE", &pgpass)
            .env("PGCONNECT_TIMEOUT", "10")
            .arg("-X")
            .arg("-q")
            .args(["-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.root)
            .args(["-U", SUPERUSER, "-d", "postgres", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_file(&pgpass);
        check("psql CREATE DATABASE", out?)?;
        Ok(self.url(name))
    }

    /// The URL of database `name` through the socket, password included (never print it).
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@/{name}?host={}",
            self.password,
            self.root.display()
        )
    }

    /// A connection to database `name` through the socket (no TLS: it is local), with short
    /// test timeouts.
    pub fn pg_config(&self, name: &str) -> PgConfig {
        test_config(self.url(name))
    }

    /// The last lines of the server's log, for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("server log {}:\n{tail}", self.log_file().display())
    }

    /// The postmaster's PID from its pid file, while the file is there.
    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let pid = self.postmaster_pid();
        if self.running {
            let _ = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "10", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The server this value started, by its PID, if `pg_ctl` could not stop it.
        if let Some(pid) = pid
            && Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::read_to_string(self.data().join("postmaster.pid"))
                .is_ok_and(|s| s.lines().next().map(str::trim) == Some(&*pid.to_string()))
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A connection config for tests: no TLS, short timeouts (the connect bound leaves room for
/// SCRAM's key stretching in a debug build on a loaded machine).
fn test_config(url: String) -> PgConfig {
    PgConfig {
        url,
        tls: PgTls::Disable,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
        application_name: "bridge-test".into(),
        idle_in_transaction_timeout: None,
        durable_commits: true,
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("database name {name:?}: use 1 to 63 lowercase letters, digits or '_'");
    }
    Ok(())
}

fn check(what: &str, out: std::process::Output) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

/// A new, private folder under the temporary directory (short: a socket path is limited to
/// 107 bytes).
fn make_root() -> anyhow::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let base = if base.as_os_str().len() > 60 {
        PathBuf::from("/tmp")
    } else {
        base
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let root = base.join(format!(
        "bridge-pg-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
    Ok(root)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

/// `n` random bytes as hex (safe in a URL and a config file without quoting).
fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The uid and gid of `user` in /etc/passwd.
fn passwd_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// What a [`SocketProxy`] does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Pass,
    /// Closes every open connection and refuses new ones (a cable pulled).
    Cut,
    /// Keeps connections open and accepts new ones but forwards nothing (a black hole): calls
    /// hang until their own timeouts.
    Stall,
}

struct ProxyShared {
    mode: Mutex<ProxyMode>,
    stop: AtomicBool,
    /// Both ends of every open connection (by number), to close them on a cut.
    open: Mutex<Vec<(u64, TcpStream, UnixStream)>>,
    next: AtomicU64,
}

impl ProxyShared {
    fn mode(&self) -> ProxyMode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A TCP port on 127.0.0.1 forwarding to a [`PgServer`]'s socket, which a test can cut or
/// stall. Stopped on drop.
pub struct SocketProxy {
    addr: SocketAddr,
    password: String,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SocketProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketProxy")
            .field("addr", &self.addr)
            .field("mode", &self.shared.mode())
            .finish_non_exhaustive()
    }
}

/// How long a forwarding thread blocks in a read before it looks at the mode again.
const PROXY_POLL: Duration = Duration::from_millis(20);

impl SocketProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `server`'s socket.
    pub fn start(server: &PgServer) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            mode: Mutex::new(ProxyMode::Pass),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        });
        let socket = server.socket_path();
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pg-proxy".into())
                .spawn(move || accept_loop(&listener, &socket, &shared))?
        };
        Ok(Self {
            addr,
            password: server.password.clone(),
            shared,
            accept: Some(accept),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the proxy does; [`ProxyMode::Cut`] closes the open connections now.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self
            .shared
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
        if mode == ProxyMode::Cut {
            close_all(&self.shared);
        }
    }

    /// The URL of database `name` through this proxy, password included (never print it).
    pub fn url(&self, name: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} password={} dbname={name}",
            self.addr.port(),
            self.password
        )
    }

    /// A connection to database `name` through this proxy (loopback, no TLS).
    pub fn pg_config(&self, name: &str) -> PgConfig {
        test_config(self.url(name))
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        close_all(&self.shared);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn close_all(shared: &ProxyShared) {
    let open = std::mem::take(&mut *shared.open.lock().unwrap_or_else(PoisonError::into_inner));
    for (_, tcp, unix) in open {
        let _ = tcp.shutdown(Shutdown::Both);
        let _ = unix.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: &TcpListener, socket: &Path, shared: &Arc<ProxyShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let tcp = match listener.accept() {
            Ok((tcp, _)) => tcp,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(PROXY_POLL);
                continue;
            }
            Err(_) => {
                std::thread::sleep(PROXY_POLL);
                continue;
            }
        };
        if shared.mode() == ProxyMode::Cut {
            let _ = tcp.shutdown(Shutdown::Both);
            continue;
        }
        let _ = forward(tcp, socket, shared);
    }
}

/// Starts the two forwarding threads of one connection.
fn forward(tcp: TcpStream, socket: &Path, shared: &Arc<ProxyShared>) -> std::io::Result<()> {
    tcp.set_nonblocking(false)?;
    let unix = UnixStream::connect(socket)?;
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    shared
        .open
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, tcp.try_clone()?, unix.try_clone()?));
    let (tcp_r, unix_w) = (tcp.try_clone()?, unix.try_clone()?);
    let s = shared.clone();
    std::thread::Builder::new()
        .name("pg-proxy-up".into())
        .spawn(move || pump(Box::new(tcp_r), Box::new(unix_w), &s))?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name("pg-proxy-down".into())
        .spawn(move || {
            pump(Box::new(unix), Box::new(tcp), &s);
            // Both directions are closed by now: forget the connection.
            s.open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(n, ..)| *n != id);
        })?;
    Ok(())
}

/// One direction of a connection's stream, as both socket kinds offer it.
trait Stream: Read + Write + Send {
    fn set_poll(&self) -> std::io::Result<()>;
    fn close(&self);
}

impl Stream for TcpStream {
    fn set_poll(&self) -> std::io::Result<()> {
        self.set_read_timeout(Some(PROXY_POLL))
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Stream for UnixStream {
    fn set_poll(&self) -> std::io::Result<()> {
        self.set_read_timeout(Some(PROXY_POLL))
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Copies `from` to `to` while the mode is [`ProxyMode::Pass`]; holds the bytes while it is
/// [`ProxyMode::Stall`]; closes both at the end of either stream or on a cut.
fn pump(mut from: Box<dyn Stream>, mut to: Box<dyn Stream>, shared: &ProxyShared) {
    if from.set_poll().is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) || shared.mode() == ProxyMode::Cut {
            break;
        }
        if shared.mode() == ProxyMode::Stall {
            std::thread::sleep(PROXY_POLL);
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        // Bytes read just before a stall are held until the mode changes.
        while shared.mode() == ProxyMode::Stall && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(PROXY_POLL);
        }
        if shared.mode() == ProxyMode::Cut || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    from.close();
    to.close();
}
