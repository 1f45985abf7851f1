//! The real `bridge-agent run` binary, one operator (t = 1) signing through SoftHSM, on the
//! anvil devnet: every token type both ways lands with its extra data and URI, and an agent that
//! was down while 50 requests happened catches up on restart, voting each exactly once.

use alloy::primitives::{Address, Bytes, U256, keccak256};
use bridge_agent::contracts::{
    Bridge, ServiceChainNFT, ServiceChainToken, VOTE_TYPE_VALUE_TRANSFER,
};
use bridge_agent::devnet::{Devnet, DevnetOptions, Side, seed};
use bridge_signer::Pin;
use bridge_signer::pkcs11::Pkcs11Token;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "agent-run";
const PIN: &str = "agent-run-pin-2718";

/// A SoftHSM token store in `dir` with one operator key; returns its address.
async fn provision_key(dir: &Path) -> Address {
    assert!(
        Path::new(MODULE).is_file(),
        "{MODULE} missing: run ./scripts/setup"
    );
    let conf = dir.join("softhsm2.conf");
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    // SAFETY: this test binary runs one test, which calls this before anything loads SoftHSM.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "so-2718",
        ])
        .output()
        .expect("softhsm2-util");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = Pkcs11Token::open(MODULE, TOKEN, Pin::new(PIN))
        .await
        .unwrap();
    token.generate_key("operator", None).await.unwrap().address
}

fn write_config(dir: &Path, d: &Devnet) -> PathBuf {
    let chain = |name: &str, s: &Side| {
        format!(
            "[{name}]\nchain_id = {}\nrpc = [\"{}\"]\nws = \"{}\"\nbridge = \"{}\"\ndeploy_block = {}\n\
             confirmations = 0\npoll_interval_ms = 100\nrpc_timeout_ms = 3000\nmin_balance = \"1\"\n",
            s.chain_id,
            s.rpc_url(),
            s.anvil.ws_url(),
            s.bridge,
            s.bridge_deploy_block
        )
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[agent]\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"info\"\n\n\
         [recovery]\ninterval_secs = 2\n\n[signer]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\n\
         token_label = \"{TOKEN}\"\nkey_label = \"operator\"\npin = {{ env = \"BRIDGE_PKCS11_PIN\" }}\n\n{}\n{}",
        dir.join("agent").display(),
        chain("parent", &d.parent),
        chain("child", &d.child),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(config: &Path, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("BRIDGE_PKCS11_PIN", PIN)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status within a bound.
    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "agent ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the destination bridge has executed `nonce`.
async fn executed(dest: &Side, nonce: u64, agent: &Agent) {
    let b = Bridge::new(dest.bridge, dest.reader());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !b.closedValueTransferVotes(nonce).call().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "nonce {nonce} not executed on chain {}:\n{}",
            dest.chain_id,
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(
    side: &Side,
    user: &alloy::signers::local::PrivateKeySigner,
    to: Address,
    data: Bytes,
    value: U256,
) {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    let tx = alloy::rpc::types::TransactionRequest::default()
        .with_to(to)
        .with_input(data)
        .with_value(value);
    let p = side.provider_with(user.clone());
    let r = p
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

fn enc(c: impl alloy::sol_types::SolCall) -> Bytes {
    c.abi_encode().into()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_agent_carries_every_token_type_both_ways_and_catches_up_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let operator = provision_key(&dir.path().join("hsm")).await;
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().join("chains"),
        operators: vec![operator],
        value_transfer_threshold: 1,
        configuration_threshold: 1,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let config = write_config(dir.path(), &d);
    let agent = Agent::start(&config, dir.path().join("agent-1.log"));
    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("agent run recipient"));

    // Parent → child: native, ERC-20, ERC-721 (nonces 0, 1, 2).
    let p = &d.parent;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(7),
            extraData: Bytes::from_static(b"x1"),
        }),
        U256::from(7),
    )
    .await;
    send(
        p,
        &user,
        p.erc20,
        enc(ServiceChainToken::approveCall {
            spender: p.bridge,
            value: U256::from(500),
        }),
        U256::ZERO,
    )
    .await;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestERC20TransferCall {
            token: p.erc20,
            to,
            value: U256::from(500),
            feeLimit: U256::ZERO,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;
    let nft = seed::parent_nft_ids(0).next().unwrap();
    send(
        p,
        &user,
        p.erc721,
        enc(ServiceChainNFT::approveCall {
            to: p.bridge,
            tokenId: nft,
        }),
        U256::ZERO,
    )
    .await;
    send(
        p,
        &user,
        p.bridge,
        enc(Bridge::requestERC721TransferCall {
            token: p.erc721,
            to,
            tokenId: nft,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;
    // Child → parent: native and ERC-20 (nonces 0, 1).
    let c = &d.child;
    send(
        c,
        &user,
        c.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(9),
            extraData: Bytes::new(),
        }),
        U256::from(9),
    )
    .await;
    send(
        c,
        &user,
        c.erc20,
        enc(ServiceChainToken::approveCall {
            spender: c.bridge,
            value: U256::from(300),
        }),
        U256::ZERO,
    )
    .await;
    send(
        c,
        &user,
        c.bridge,
        enc(Bridge::requestERC20TransferCall {
            token: c.erc20,
            to,
            value: U256::from(300),
            feeLimit: U256::ZERO,
            extraData: Bytes::new(),
        }),
        U256::ZERO,
    )
    .await;

    for n in 0..3 {
        executed(c, n, &agent).await;
    }
    for n in 0..2 {
        executed(p, n, &agent).await;
    }
    use alloy::providers::Provider;
    assert_eq!(c.reader().get_balance(to).await.unwrap(), U256::from(7));
    assert_eq!(
        ServiceChainToken::new(c.erc20, c.reader())
            .balanceOf(to)
            .call()
            .await
            .unwrap(),
        U256::from(500)
    );
    let child_nft = ServiceChainNFT::new(c.erc721, c.reader());
    assert_eq!(child_nft.ownerOf(nft).call().await.unwrap(), to);
    assert_eq!(
        child_nft.tokenURI(nft).call().await.unwrap(),
        seed::nft_uri(nft),
        "URI carried"
    );
    assert_eq!(p.reader().get_balance(to).await.unwrap(), U256::from(9));
    assert_eq!(
        ServiceChainToken::new(p.erc20, p.reader())
            .balanceOf(to)
            .call()
            .await
            .unwrap(),
        U256::from(300)
    );
    // The status command shows the running agent's readiness and metrics.
    let status_cmd = || {
        Command::new(env!("CARGO_BIN_EXE_bridge-agent"))
            .args(["status", "--config"])
            .arg(&config)
            .env("BRIDGE_PKCS11_PIN", PIN)
            .output()
            .unwrap()
    };
    let out = status_cmd();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("READY"),
        "{text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    assert!(
        text.contains("votes sent") && text.contains("direction=\"parent_to_child\""),
        "{text}"
    );
    // The vote for nonce 0 carried the request's extra data verbatim.
    let handled = c
        .reader()
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(c.bridge)
                .from_block(c.bridge_deploy_block)
                .event_signature(
                    <Bridge::HandleValueTransfer as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                ),
        )
        .await
        .unwrap();
    let first = handled[0]
        .log_decode::<Bridge::HandleValueTransfer>()
        .unwrap()
        .inner
        .data;
    assert_eq!(
        (first.handleNonce, first.extraData.as_ref()),
        (0, b"x1".as_slice())
    );
    let status = agent.stop();
    assert!(status.success(), "clean stop: {status}");
    let out = status_cmd();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no agent answers") && text.contains("parent → child: requestNonce 3"),
        "{text}"
    );

    // Down while 50 requests happen; up again: all executed, each voted once by this operator.
    for i in 0..50u64 {
        send(
            p,
            &user,
            p.bridge,
            enc(Bridge::requestKLAYTransferCall {
                to,
                value: U256::from(100 + i),
                extraData: Bytes::new(),
            }),
            U256::from(100 + i),
        )
        .await;
    }
    let agent = Agent::start(&config, dir.path().join("agent-2.log"));
    for n in 3..53 {
        executed(c, n, &agent).await;
    }
    let b = Bridge::new(c.bridge, c.reader());
    for n in 0..53 {
        assert_ne!(
            b.voteOf(VOTE_TYPE_VALUE_TRANSFER, n, operator)
                .call()
                .await
                .unwrap(),
            alloy::primitives::B256::ZERO
        );
    }
    // Nothing old was voted again: the operator sent exactly one tx per request on the child.
    let sent = c.reader().get_transaction_count(operator).await.unwrap();
    assert_eq!(
        sent,
        53,
        "one vote per request, no re-votes:\n{}",
        agent.log()
    );
    assert!(agent.stop().success());
}
