//! An HTTP JSON-RPC proxy on 127.0.0.1 that caps `eth_getLogs` the way public providers do: it
//! refuses a query spanning more than `max_span` blocks, or (after asking upstream) matching
//! more than `max_results` logs, with the error one provider style gives, and can answer every
//! call slowly. Everything else is forwarded as is.
//!
//! | style      | block-range cap                                   | result-count cap                         |
//! |------------|---------------------------------------------------|------------------------------------------|
//! | Infura     | -32005 "query returned more than N results" + data {from,to} | same                          |
//! | Alchemy    | -32602 "Log response size exceeded. … up to a 2K block range … [0x.., 0x..]" | same         |
//! | QuickNode  | -32602 "eth_getLogs is limited to a 100 range"    | -32602 "query returned more than N results" |
//! | Node       | -32000 "exceed maximum block range: 100"          | -32000 "query returned more than N results" |
//!
//! Counts what it did, so a test can assert the caps were really served. Dropping it stops the
//! server and every connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Whose error texts the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Infura,
    Alchemy,
    QuickNode,
    /// geth / Erigon / BSC-style nodes run by the operator.
    Node,
}

/// The caps and pace the proxy enforces now.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub style: Style,
    /// Most blocks one `eth_getLogs` may span (0: no cap).
    pub max_span: u64,
    /// Most logs one answer may hold (0: no cap).
    pub max_results: u64,
    /// Whether refusals carry a range that would pass (Infura's data, Alchemy's `[from, to]`).
    pub suggest: bool,
    /// Added before every answer.
    pub delay: Duration,
}

/// What the proxy served so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CappedStats {
    pub requests: u64,
    pub get_logs: u64,
    pub refused_span: u64,
    pub refused_results: u64,
}

#[derive(Debug)]
struct Shared {
    caps: Mutex<Caps>,
    requests: AtomicU64,
    get_logs: AtomicU64,
    refused_span: AtomicU64,
    refused_results: AtomicU64,
}

pub struct CappedProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CappedProxy {
    /// Listens on a free loopback port, forwarding to `upstream` (an `http://` URL).
    pub async fn start(upstream: &str, caps: Caps) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            caps: Mutex::new(caps),
            requests: AtomicU64::new(0),
            get_logs: AtomicU64::new(0),
            refused_span: AtomicU64::new(0),
            refused_results: AtomicU64::new(0),
        });
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
        CappedProxy { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    #[allow(dead_code)] // not every test binary changes caps midway
    pub fn set_caps(&self, caps: Caps) {
        *self.shared.caps.lock().unwrap() = caps;
    }

    pub fn stats(&self) -> CappedStats {
        let s = &self.shared;
        CappedStats {
            requests: s.requests.load(Ordering::Relaxed),
            get_logs: s.get_logs.load(Ordering::Relaxed),
            refused_span: s.refused_span.load(Ordering::Relaxed),
            refused_results: s.refused_results.load(Ordering::Relaxed),
        }
    }
}

impl Drop for CappedProxy {
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
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let caps = *shared.caps.lock().unwrap();
    if !caps.delay.is_zero() {
        tokio::time::sleep(caps.delay).await;
    }
    let call: Value = serde_json::from_slice(&body).unwrap_or_default();
    let range = (call.get("method").and_then(Value::as_str) == Some("eth_getLogs"))
        .then(|| block_range(&call))
        .flatten();
    if let Some((from, to)) = range {
        shared.get_logs.fetch_add(1, Ordering::Relaxed);
        let span = to.saturating_sub(from) + 1;
        if caps.max_span > 0 && span > caps.max_span {
            shared.refused_span.fetch_add(1, Ordering::Relaxed);
            let ok_to = from + caps.max_span - 1;
            return Ok(json_reply(refusal(
                &call,
                &caps,
                Cap::Span,
                from,
                Some(ok_to),
            )));
        }
    }
    let forwarded = client
        .post(&upstream)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let (status, answer) = match forwarded {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::OK);
            match r.bytes().await {
                Ok(b) => (status, b.to_vec()),
                Err(_) => return Ok(plain(StatusCode::BAD_GATEWAY, "upstream body lost")),
            }
        }
        Err(_) => return Ok(plain(StatusCode::BAD_GATEWAY, "upstream unreachable")),
    };
    if let (Some((from, _)), true) = (range, caps.max_results > 0) {
        let parsed: Value = serde_json::from_slice(&answer).unwrap_or_default();
        if let Some(logs) = parsed.get("result").and_then(Value::as_array)
            && logs.len() as u64 > caps.max_results
        {
            shared.refused_results.fetch_add(1, Ordering::Relaxed);
            let ok_to = last_block_within(logs, caps.max_results).filter(|&b| b >= from);
            return Ok(json_reply(refusal(&call, &caps, Cap::Results, from, ok_to)));
        }
    }
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer)))
        .unwrap())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cap {
    Span,
    Results,
}

/// `fromBlock..=toBlock` of an `eth_getLogs` call, when both are block numbers.
fn block_range(call: &Value) -> Option<(u64, u64)> {
    let filter = call.get("params")?.get(0)?;
    let number = |k: &str| {
        let s = filter.get(k)?.as_str()?;
        u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
    };
    Some((number("fromBlock")?, number("toBlock")?))
}

/// The last block whose logs, with all before it, fit in `max` logs (logs in block order).
fn last_block_within(logs: &[Value], max: u64) -> Option<u64> {
    let block = |l: &Value| {
        let s = l.get("blockNumber")?.as_str()?;
        u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
    };
    // The block of log number `max` (0-based) is the first that does not fit whole.
    let first_over = block(logs.get(max as usize)?)?;
    first_over.checked_sub(1)
}

fn refusal(call: &Value, caps: &Caps, cap: Cap, from: u64, ok_to: Option<u64>) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let suggestion = ok_to.filter(|_| caps.suggest);
    let results = caps.max_results.max(10_000);
    let (code, message, data) = match (caps.style, cap) {
        (Style::Infura, _) => (
            -32005,
            format!("query returned more than {results} results"),
            suggestion.map(|to| json!({ "from": format!("{from:#x}"), "to": format!("{to:#x}") })),
        ),
        (Style::Alchemy, _) => {
            let span = if caps.max_span > 0 {
                caps.max_span
            } else {
                2000
            };
            let span = if span % 1000 == 0 {
                format!("{}K", span / 1000)
            } else {
                span.to_string()
            };
            let mut m = format!(
                "Log response size exceeded. You can make eth_getLogs requests with up to a {span} \
                 block range and no limit on the response size, or you can request any block \
                 range with a cap of {}K logs in the response.",
                results / 1000
            );
            if let Some(to) = suggestion {
                m.push_str(&format!(
                    " Based on your parameters, this block range should work: [{from:#x}, {to:#x}]"
                ));
            }
            (-32602, m, None)
        }
        (Style::QuickNode, Cap::Span) => (
            -32602,
            format!("eth_getLogs is limited to a {} range", caps.max_span),
            None,
        ),
        (Style::Node, Cap::Span) => (
            -32000,
            format!("exceed maximum block range: {}", caps.max_span),
            None,
        ),
        (Style::QuickNode | Style::Node, Cap::Results) => (
            if caps.style == Style::Node {
                -32000
            } else {
                -32602
            },
            format!("query returned more than {results} results"),
            None,
        ),
    };
    let mut error = json!({ "code": code, "message": message });
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

fn json_reply(v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap())))
        .unwrap()
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap()
}
