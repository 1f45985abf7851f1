//! The devkit's test server: it starts, creates databases, restarts on the same data, and
//! leaves nothing behind.

use bridge_devkit::postgres::PgServer;

#[test]
fn starts_creates_restarts_and_cleans_up() {
    let mut server = PgServer::start().expect("start");
    let dir = server.socket_dir().to_owned();
    assert!(server.socket_path().exists());
    let url = server.create_database("one").expect("create");
    assert!(url.contains(server.password()));
    assert!(!format!("{server:?}").contains(server.password()));
    // A second database of the same name is refused (the server answered).
    assert!(server.create_database("one").is_err());
    assert!(server.create_database("Bad-Name").is_err());
    server.restart().expect("restart");
    assert!(server.socket_path().exists());
    server.create_database("two").expect("create after restart");
    server.stop().expect("stop");
    assert!(!server.socket_path().exists());
    server.start_again().expect("start again");
    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
