//! `[store] backend = "postgres"` moves the running agent's store to the server: the real
//! `bridge-agent run` binary, one operator on the anvil devnet, its store in a throw-away
//! PostgreSQL server (URL from a file, Unix socket, no TLS). A transfer executes, its request is
//! a row in the server's `requests` table with the cursor moved past it, and no `store.sqlite`
//! was created in the data directory.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U256, keccak256};
use bridge_agent::contracts::Bridge;
use bridge_db::Db;
use bridge_devkit::postgres::PgServer;

mod support;
use support::agent::{Agent, Endpoints, enc, executed, one_operator_devnet, send, write_config};

const DB_NAME: &str = "bridge_agent_store";

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_keeps_its_store_in_postgres_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start().unwrap();
    let url = server.create_database(DB_NAME).unwrap();
    let url_file = dir.path().join("store-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();

    let d = one_operator_devnet(dir.path()).await;
    let config = write_config(
        dir.path(),
        &d,
        Endpoints::of(&d.parent),
        Endpoints::of(&d.child),
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[store]\nbackend = \"postgres\"\nurl = {{ file = \"{}\" }}\ntls = \"disable\"\n",
        url_file.display()
    ));
    std::fs::write(&config, text).unwrap();

    let agent = Agent::start(&config, dir.path().join("agent.log"));
    let user = d.users()[0].clone();
    let to = Address::from_word(keccak256("store on postgres"));
    send(
        &d.parent,
        &user,
        d.parent.bridge,
        enc(Bridge::requestKLAYTransferCall {
            to,
            value: U256::from(5),
            extraData: Bytes::new(),
        }),
        U256::from(5),
    )
    .await;
    executed(&d.child, 0, &agent).await;

    // The request's row and the cursor are on the server (the agent records the state after
    // the vote is mined, so wait for it, bounded).
    let db = Db::postgres(&server.pg_config(DB_NAME)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = db
            .run(|sql| {
                sql.query_opt(
                    "SELECT state FROM requests WHERE direction = 'parent_to_child' AND nonce = 0",
                    &[],
                )
            })
            .unwrap();
        let state = state.map(|r| r.text(0).unwrap().to_owned());
        if matches!(state.as_deref(), Some("voted" | "executed")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "request 0 is {state:?} on the server:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let next = db
        .run(|sql| {
            sql.query_opt(
                "SELECT next_block FROM cursors WHERE direction = 'parent_to_child'",
                &[],
            )
        })
        .unwrap()
        .expect("a cursor row")
        .int(0)
        .unwrap();
    assert!(next > 0, "cursor at {next}");
    let data_dir = dir.path().join("agent");
    assert!(
        !data_dir.join("store.sqlite").exists(),
        "a SQLite store was created beside the PostgreSQL one"
    );
    // The agent's log never shows the URL's password.
    let log = agent.log();
    assert!(!log.contains(server.password()), "password in the log");
    drop(agent);
}
