//! What the binary prints when nobody is watching it closely: `status` into a pipe that closes
//! early (`status | head -1`), and `run`'s log lines written to a file (no colour codes, the URL
//! once, the cause of a refused connection) while it retries an unreachable chain at start.
//!
//! Servers here listen on 127.0.0.1 only; every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bridge-agent");

/// A config whose chains are at `parent_rpc` / `child_rpc` and whose agent serves at `listen`.
fn config(dir: &tempfile::TempDir, listen: &str, parent_rpc: &str, child_rpc: &str) -> String {
    let path = dir.path().join("agent.toml");
    let text = format!(
        r#"
[agent]
data_dir = "{data}"
name = "op-cli-output"

[http]
listen = "{listen}"

[signer]
backend = "pkcs11"
module = "/nonexistent/libsofthsm2.so"
token_label = "bridge"
key_label = "operator"
pin = {{ env = "BRIDGE_TEST_NO_SUCH_PIN" }}

[parent]
chain_id = 31001
rpc = ["{parent_rpc}"]
bridge = "0x5fbdb2315678afecb367f032d93f642f64180aa3"

[child]
chain_id = 31002
rpc = ["{child_rpc}"]
bridge = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
"#,
        data = dir.path().join("data").display(),
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A loopback port where nothing listens.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn status_into_a_pipe_closed_early_ends_without_a_panic() {
    // A stand-in agent: /readyz not ready, /metrics far larger than a pipe's buffer, so
    // `status` is still writing when the reader has gone.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let metrics: String = (0..20_000)
        .map(|i| format!("bridge_votes_mined_total{{direction=\"d{i}\"}} {i}\n"))
        .collect();
    let serve = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut s, _)) = server.accept() else {
                return;
            };
            // The whole request head (the client may write it in pieces): closing a socket
            // with unread bytes would reset the connection under the client's read.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&head);
            let (status, body) = if req.starts_with("GET /readyz") {
                (
                    "503 Service Unavailable",
                    "not ready:\n- chain parent: degraded\n",
                )
            } else {
                ("200 OK", metrics.as_str())
            };
            let _ = write!(s, "HTTP/1.0 {status}\r\n\r\n{body}");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &addr.to_string(),
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    );
    let mut child = Command::new(BIN)
        .args(["status", "--config", &cfg])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `head -1`: one line, then the read end closes.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("NOT READY"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "status did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    serve.join().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Not ready → 3, as without the pipe; a panic would be 101.
    assert_eq!(status.code(), Some(3), "stderr: {stderr}");
}

#[test]
fn run_logs_to_a_file_without_colour_and_names_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let cfg = config(
        &dir,
        "127.0.0.1:0",
        &format!("http://127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{}", dead_port()),
    );
    let log_path = dir.path().join("agent.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", &cfg])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("BRIDGE_TEST_NO_SUCH_PIN", "1234")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // An unreachable chain at start is retried (with a WARN each time), not a reason to exit.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text
            .matches("chain not answering at start; retrying")
            .count()
            >= 2
        {
            break text;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the agent exited ({s}) instead of retrying:\n{text}");
        }
        assert!(Instant::now() < deadline, "no retry logged:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape in a log file:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("retrying"))
        .expect("a retry line");
    assert!(line.contains(" WARN "), "{line}");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(line.matches(&url).count(), 1, "the URL once: {line}");
    assert!(!line.contains(&format!("{url}/")), "doubled slash: {line}");
    assert!(
        line.to_ascii_lowercase().contains("connection refused"),
        "the cause: {line}"
    );
}
