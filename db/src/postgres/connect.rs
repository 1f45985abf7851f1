//! Connection settings: the URL parsed (and named without its password), the TLS rule, the
//! rustls client.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres::config::{Host, SslMode};

use super::{PgConfig, PgTls};
use crate::DbError;

/// How the worker encrypts.
pub(super) enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// Everything the worker needs to (re)connect.
pub(super) struct Target {
    /// The server and database, no password.
    pub(super) at: String,
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: Tls,
    pub(super) connect_timeout: Duration,
    pub(super) statement_timeout: Duration,
    pub(super) idle_in_transaction_timeout: Option<Duration>,
    pub(super) durable_commits: bool,
}

impl Target {
    pub(super) fn new(config: &PgConfig) -> Result<Self, DbError> {
        let mut pg = parse(&config.url)?;
        let at = describe(&pg);
        pg.connect_timeout(config.connect_timeout)
            .application_name(config.application_name.clone());
        let tls = match &config.tls {
            PgTls::Disable => {
                if let Some(remote) = remote_host(&pg) {
                    return Err(DbError::Config {
                        at,
                        reason: format!(
                            "TLS is disabled but {remote} is not this host (a Unix socket or \
                             loopback): set TLS to verify-full with the server's CA"
                        ),
                    });
                }
                pg.ssl_mode(SslMode::Disable);
                Tls::None
            }
            PgTls::VerifyFull { ca_file } => {
                pg.ssl_mode(SslMode::Require);
                Tls::Rustls(rustls_connect(ca_file.as_deref()).map_err(|reason| {
                    DbError::Config {
                        at: at.clone(),
                        reason,
                    }
                })?)
            }
        };
        Ok(Self {
            at,
            config: pg,
            tls,
            connect_timeout: config.connect_timeout,
            statement_timeout: config.statement_timeout,
            idle_in_transaction_timeout: config.idle_in_transaction_timeout,
            durable_commits: config.durable_commits,
        })
    }
}

/// Parses the URL. Its text is never repeated in the error (it may hold a password); the
/// parser's own words name an option at most.
fn parse(url: &str) -> Result<tokio_postgres::Config, DbError> {
    url.parse().map_err(|e: tokio_postgres::Error| {
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        let detail = cause
            .filter(|c| c.starts_with("unknown option") || c.starts_with("invalid value"))
            .map_or(String::new(), |c| format!(": {c}"));
        DbError::Config {
            at: "postgres".into(),
            reason: format!(
                "the database URL cannot be parsed{detail} (it is not shown: it may hold a \
                 password)"
            ),
        }
    })
}

/// `postgres://user@host[:port]/db`, or `postgres (socket DIR)/db`: never the password.
pub(super) fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first());
            match h {
                Host::Tcp(name) => match port {
                    Some(p) => format!("{name}:{p}"),
                    None => name.clone(),
                },
                Host::Unix(dir) => format!("(socket {})", dir.display()),
            }
        })
        .collect();
    if hosts.iter().all(|h| h.starts_with("(socket ")) && !hosts.is_empty() {
        format!("postgres {}/{db}", hosts.join(","))
    } else {
        format!("postgres://{user}@{}/{db}", hosts.join(","))
    }
}

/// The first host that is neither a Unix socket nor loopback, named for a message.
fn remote_host(config: &tokio_postgres::Config) -> Option<String> {
    let loopback_name = |name: &str| {
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs
            .iter()
            .find(|ip| !ip.is_loopback())
            .map(|ip| format!("host address {ip}"));
    }
    if config.get_hosts().is_empty() {
        return Some("the server (no host given)".into());
    }
    config.get_hosts().iter().find_map(|h| match h {
        Host::Tcp(name) if !loopback_name(name) => Some(format!("host {name}")),
        _ => None,
    })
}

/// rustls with ring, named explicitly (another crate's rustls features may compile in a
/// second provider, and then a process-wide default is ambiguous). Roots from `ca_file` (PEM)
/// or Mozilla's.
fn rustls_connect(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("CA file {} holds no certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, tls: PgTls) -> PgConfig {
        PgConfig {
            url: url.into(),
            tls,
            connect_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
            idle_in_transaction_timeout: None,
            durable_commits: true,
            application_name: "t".into(),
        }
    }

    #[test]
    fn names_the_server_without_the_password() {
        let t = Target::new(&config(
            "postgres://agent:s3cret@127.0.0.1:6543/bridge",
            PgTls::Disable,
        ))
        .unwrap();
        assert_eq!(t.at, "postgres://agent@127.0.0.1:6543/bridge");
        let t = Target::new(&config(
            "postgres://agent:s3cret@/bridge?host=/tmp/pg",
            PgTls::Disable,
        ))
        .unwrap();
        assert_eq!(t.at, "postgres (socket /tmp/pg)/bridge");
        let t = Target::new(&config(
            "host=db.example user=agent password=s3cret dbname=bridge",
            PgTls::VerifyFull { ca_file: None },
        ))
        .unwrap();
        assert_eq!(t.at, "postgres://agent@db.example/bridge");
    }

    #[test]
    fn refuses_plaintext_to_a_remote_host() {
        let Err(e) = Target::new(&config(
            "postgres://agent:s3cret@db.example/bridge",
            PgTls::Disable,
        )) else {
            panic!("plaintext to a remote host accepted");
        };
        let text = e.to_string();
        assert!(text.contains("db.example"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        for ok in ["localhost", "127.0.0.1", "[::1]"] {
            Target::new(&config(&format!("postgres://a:b@{ok}/d"), PgTls::Disable))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn a_bad_url_is_not_repeated() {
        for url in ["postgres://agent:s3cr`et@host:notaport/db", "host='s3cret"] {
            let Err(e) = Target::new(&config(url, PgTls::Disable)) else {
                panic!("{url} parsed");
            };
            let text = format!("{e} {e:?}");
            assert!(!text.contains("s3cr"), "{text}");
        }
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error() {
        let Err(e) = Target::new(&config(
            "postgres://a:b@db.example/d",
            PgTls::VerifyFull {
                ca_file: Some("/nonexistent/ca.pem".into()),
            },
        )) else {
            panic!("missing CA accepted");
        };
        assert!(matches!(e, DbError::Config { .. }), "{e:?}");
    }
}
