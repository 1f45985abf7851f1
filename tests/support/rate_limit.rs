//! An HTTP-level JSON-RPC proxy on 127.0.0.1 that rate-limits, the way a shared provider does:
//! it forwards each request to the upstream endpoint, except one in `every` (and, on demand,
//! the next few), which it refuses, alternately with **HTTP 429 + `Retry-After`** and with
//! **HTTP 200 + JSON-RPC error -32005 "rate limit exceeded"**. The TCP-level fault proxy
//! (`proxy.rs`) cannot do this: it does not see requests.
//!
//! Counts what it did, so a test can assert the limits were really served. Dropping it stops the
//! server and every connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the proxy served so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitStats {
    pub requests: u64,
    pub forwarded: u64,
    pub http_429: u64,
    pub rpc_32005: u64,
}

#[derive(Debug, Default)]
struct Shared {
    /// 0: no periodic limit; n: request number k (1-based) is refused when k % n == 0.
    every: AtomicU64,
    /// Refuse this many requests next, whatever `every` says.
    burst: AtomicU64,
    retry_after_secs: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    http_429: AtomicU64,
    rpc_32005: AtomicU64,
}

pub struct RateLimitProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RateLimitProxy {
    /// Listens on a free loopback port, forwarding to `upstream` (an `http://` URL), refusing
    /// one request in `every` (0: none) with `Retry-After: retry_after_secs` on the 429s.
    pub async fn start(upstream: &str, every: u64, retry_after_secs: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        shared.every.store(every, Ordering::Relaxed);
        shared
            .retry_after_secs
            .store(retry_after_secs, Ordering::Relaxed);
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client");
        let task = tokio::spawn(accept_loop(
            listener,
            upstream.to_owned(),
            client,
            shared.clone(),
        ));
        RateLimitProxy { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on refuse one request in `every` (0: none).
    pub fn set_every(&self, every: u64) {
        self.shared.every.store(every, Ordering::Relaxed);
    }

    /// Refuse the next `n` requests.
    pub fn refuse_next(&self, n: u64) {
        self.shared.burst.store(n, Ordering::Relaxed);
    }

    pub fn stats(&self) -> RateLimitStats {
        let s = &self.shared;
        RateLimitStats {
            requests: s.requests.load(Ordering::Relaxed),
            forwarded: s.forwarded.load(Ordering::Relaxed),
            http_429: s.http_429.load(Ordering::Relaxed),
            rpc_32005: s.rpc_32005.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RateLimitProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    client: reqwest::Client,
    shared: Arc<Shared>,
) {
    // Dropping this set (when the task is aborted) aborts every connection task.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (upstream, client, shared) = (upstream.clone(), client.clone(), shared.clone());
                conns.spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, upstream.clone(), client.clone(), shared.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn take_burst(shared: &Shared) -> bool {
    shared
        .burst
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
        .is_ok()
}

async fn handle(
    req: Request<Incoming>,
    upstream: String,
    client: reqwest::Client,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let k = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let every = shared.every.load(Ordering::Relaxed);
    let limited = take_burst(&shared) || (every > 0 && k.is_multiple_of(every));
    if limited {
        let refused =
            shared.http_429.load(Ordering::Relaxed) + shared.rpc_32005.load(Ordering::Relaxed);
        return Ok(if refused.is_multiple_of(2) {
            shared.http_429.fetch_add(1, Ordering::Relaxed);
            let secs = shared.retry_after_secs.load(Ordering::Relaxed);
            Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", secs.to_string())
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from_static(b"Too Many Requests")))
                .unwrap()
        } else {
            shared.rpc_32005.fetch_add(1, Ordering::Relaxed);
            json(StatusCode::OK, rate_limit_error(&body))
        });
    }
    let forwarded = client
        .post(&upstream)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let reply = match forwarded {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::OK);
            match r.bytes().await {
                Ok(b) => {
                    shared.forwarded.fetch_add(1, Ordering::Relaxed);
                    json(status, b.to_vec())
                }
                Err(_) => json(StatusCode::BAD_GATEWAY, b"upstream body lost".to_vec()),
            }
        }
        Err(_) => json(StatusCode::BAD_GATEWAY, b"upstream unreachable".to_vec()),
    };
    Ok(reply)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The JSON-RPC -32005 answer to `request` (one call, or a batch: one error per call).
fn rate_limit_error(request: &[u8]) -> Vec<u8> {
    let error = |id: &serde_json::Value| {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": -32005, "message": "rate limit exceeded" },
        })
    };
    let parsed: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let reply = match &parsed {
        serde_json::Value::Array(calls) => serde_json::Value::Array(
            calls
                .iter()
                .map(|c| error(c.get("id").unwrap_or(&serde_json::Value::Null)))
                .collect(),
        ),
        call => error(call.get("id").unwrap_or(&serde_json::Value::Null)),
    };
    serde_json::to_vec(&reply).unwrap()
}
