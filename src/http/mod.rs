//! The operator's HTTP endpoint: `GET /metrics` (Prometheus text), `GET /healthz` (200 while the
//! process serves), `GET /readyz` (200 when ready, else 503 with one reason per line); anything
//! else is 404 (405 for a known path with a method other than GET/HEAD).
//!
//! ```text
//!  TcpListener ── accept (at most MAX_CONNECTIONS at once) ──► connection task (hyper http/1)
//!       │                                                    header read ≤ HEADER_TIMEOUT,
//!       │                                                    lifetime ≤ CONNECTION_LIFETIME
//!  shutdown token ──► stop accepting; connections finish their response (≤ SHUTDOWN_GRACE)
//! ```
//!
//! Bodies only ever hold metric text and readiness reasons: no URL with its secrets, no key.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, AgentMetrics, Readiness};

/// Time a client has to send a request's headers (also bounds an idle keep-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection is kept, however busy; then it is closed after its current response.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// On shutdown, time given to open connections to finish their response.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 32;

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen on {addr} for /metrics, /healthz, /readyz: {source} (check [http] listen)"
    )]
    Bind { addr: String, source: io::Error },
}

/// What the routes serve.
#[derive(Clone)]
struct App {
    metrics: Arc<AgentMetrics>,
    readiness: Arc<dyn Readiness>,
}

/// A running server. Stops when the shutdown token given to [`HttpServer::bind`] is cancelled;
/// [`HttpServer::stopped`] waits for that to complete.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` (e.g. the config's `http.listen`, or `127.0.0.1:0` in tests) and serves
    /// `metrics`, with readiness taken from `metrics` as well.
    pub async fn bind(
        addr: impl ToSocketAddrs + std::fmt::Display,
        metrics: Arc<AgentMetrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, HttpError> {
        let readiness: Arc<dyn Readiness> = metrics.clone();
        Self::bind_with(addr, metrics, readiness, shutdown).await
    }

    /// As [`HttpServer::bind`], with readiness decided by `readiness`.
    pub async fn bind_with(
        addr: impl ToSocketAddrs + std::fmt::Display,
        metrics: Arc<AgentMetrics>,
        readiness: Arc<dyn Readiness>,
        shutdown: CancellationToken,
    ) -> Result<Self, HttpError> {
        let bind_err = |source| HttpError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(&addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let app = App { metrics, readiness };
        let task = tokio::spawn(accept_loop(listener, app, shutdown));
        tracing::info!(%local_addr, "serving /metrics, /healthz, /readyz");
        Ok(Self { local_addr, task })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped: no longer accepting, connections closed.
    pub async fn stopped(self) {
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!("http server task panicked");
        }
    }
}

async fn accept_loop(listener: TcpListener, app: App, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                let app = app.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    serve_connection(stream, app, shutdown).await;
                    tracing::trace!(%peer, "http connection closed");
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(500), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    tracing::info!("http server stopped");
}

async fn serve_connection(stream: tokio::net::TcpStream, app: App, shutdown: CancellationToken) {
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(&app, &req)) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    tokio::pin!(lifetime);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = shutdown.cancelled() => {}
        () = &mut lifetime => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

fn route(app: &App, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(StatusCode::NOT_FOUND, "not found\n".to_owned());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let mut r = text(StatusCode::OK, app.metrics.render());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
        _ => readyz(app.readiness.as_ref()),
    }
}

fn readyz(readiness: &dyn Readiness) -> Response<Full<Bytes>> {
    let reasons = readiness.not_ready();
    // A replica says its role on the last line either way: a follower is ready (it watches,
    // warm, to take over) and names the leader.
    let role = readiness
        .role()
        .map(|r| format!("{}\n", r.replace(['\r', '\n'], " ")))
        .unwrap_or_default();
    if reasons.is_empty() {
        return text(StatusCode::OK, format!("ready\n{role}"));
    }
    let mut body = String::from("not ready:\n");
    for r in reasons {
        body.push_str(&format!("- {r}\n"));
    }
    body.push_str(&role);
    text(StatusCode::SERVICE_UNAVAILABLE, body)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
