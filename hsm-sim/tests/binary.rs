//! The `hsm-sim` binary: started as a user would, talked to through aws-sdk-kms and the admin
//! endpoint, stopped with SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use common::{bounded, client, digest, public_key, sign, verifies};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_hsm-sim");

/// Starts the binary; returns the child, its endpoint and the following stdout lines
/// (`key <id> <alias>` per --key).
async fn start(args: &[&str], key_lines: usize) -> (Child, String, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn hsm-sim");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint = lines
        .next_line()
        .await
        .unwrap()
        .expect("first line: the endpoint");
    let mut keys = Vec::new();
    for _ in 0..key_lines {
        keys.push(lines.next_line().await.unwrap().expect("a key line"));
    }
    (child, endpoint, keys)
}

async fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("hsm-sim did not stop within 10 s of SIGTERM")
        .unwrap()
}

#[tokio::test]
async fn the_binary_serves_kms_and_admin_and_stops_on_sigterm() {
    bounded(90, async {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--key",
            "alias/bridge",
            "--throttle-burst",
            "1",
            "--seed",
            "5",
        ];
        let (child, endpoint, keys) = start(&args, 1).await;
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let fields: Vec<&str> = keys[0].split(' ').collect();
        assert_eq!(fields.len(), 3, "{}", keys[0]);
        assert_eq!((fields[0], fields[2]), ("key", "alias/bridge"));

        // One throttle from the flag, absorbed by the SDK's retry.
        let kms = client(&endpoint, 3).await;
        let pk = public_key(&kms, "alias/bridge").await;
        let d = digest(1);
        let der = sign(&kms, fields[1], &d).await.expect("Sign");
        assert!(verifies(&pk, &d, &der));

        let http = reqwest::Client::new();
        let stats: serde_json::Value = http
            .get(format!("{endpoint}/admin/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["faults"]["throttle_burst"], 1, "{stats}");
        assert_eq!(stats["calls"]["GetPublicKey"], 2, "{stats}");
        assert_eq!(stats["calls"]["Sign"], 1, "{stats}");

        let r = http
            .post(format!("{endpoint}/admin/faults"))
            .body(r#"{"outage_secs": 30, "outage_code": "KMSInternalException"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let kms1 = client(&endpoint, 1).await;
        let e = sign(&kms1, "alias/bridge", &d).await.unwrap_err();
        assert_eq!(e.code(), Some("KMSInternalException"));

        let status = terminate(child).await;
        assert!(status.success(), "exit status {status}");
    })
    .await;
}

#[tokio::test]
async fn the_binary_refuses_a_non_loopback_address() {
    bounded(30, async {
        let out = Command::new(BIN)
            .args(["--listen", "0.0.0.0:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = out.wait_with_output().await.unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("loopback"), "{stderr}");
    })
    .await;
}

#[tokio::test]
async fn help_explains_the_admin_endpoint_and_fault_flags() {
    bounded(30, async {
        let mut child = Command::new(BIN)
            .arg("--help")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut help = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut help)
            .await
            .unwrap();
        assert!(child.wait().await.unwrap().success());
        for needle in [
            "--throttle-burst",
            "--outage-secs",
            "--wrong-signature",
            "/admin/faults",
            "endpoint_url",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}");
        }
    })
    .await;
}
