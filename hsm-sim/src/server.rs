//! The HTTP server: accepts loopback connections, routes `/admin/…` to the admin endpoint and
//! everything else to the KMS operations, through the fault layer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::faults::{FaultConfig, FaultKind, FaultState, FaultStatus};
use crate::keystore::{self, KeyStore};
use crate::protocol::{self, ErrorCode, KmsError, Operation};
use crate::{Config, Error, Stats, admin};

const MAX_BODY: usize = 1 << 20;

/// State shared by every connection and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) keys: Mutex<KeyStore>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) stats: Mutex<Stats>,
}

/// Locks, ignoring poisoning: every critical section leaves its data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulator. Dropping it stops the server and its connections.
#[derive(Debug)]
pub struct HsmSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl HsmSim {
    /// Binds (loopback only) and serves on the current tokio runtime.
    pub async fn start(config: Config) -> Result<HsmSim, Error> {
        if !config.listen.ip().is_loopback() {
            return Err(Error::NonLoopback(config.listen));
        }
        let faults = FaultState::new(config.faults).map_err(Error::InvalidFaults)?;
        let bind_err = |source| Error::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            keys: Mutex::new(KeyStore::new(&config.region, &config.account_id)),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::info!(%addr, "hsm-sim listening");
        Ok(HsmSim {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give aws-sdk-kms as `endpoint_url`, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault configuration (restarting bursts and outage windows from now).
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), Error> {
        lock(&self.shared.faults)
            .set(faults)
            .map_err(Error::InvalidFaults)
    }

    /// The faults in force now.
    pub fn faults(&self) -> FaultStatus {
        lock(&self.shared.faults).status()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// Creates a key out of band (not counted, no faults), optionally with an alias; returns
    /// its key id.
    pub fn create_key(&self, alias: Option<&str>) -> Result<String, Error> {
        create_key(&self.shared, alias)
    }

    /// Stops accepting, ends open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for HsmSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn create_key(shared: &Shared, alias: Option<&str>) -> Result<String, Error> {
    let mut keys = lock(&shared.keys);
    let id = keys.create("created by hsm-sim");
    if let Some(alias) = alias {
        keys.create_alias(alias, &id)?;
    }
    Ok(id)
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(shared.clone(), req));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc);
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    tracing::info!("hsm-sim stopped");
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let e = KmsError::new(
                ErrorCode::ValidationException,
                format!("cannot read the body: {e}"),
            );
            return Ok(kms_error(&e));
        }
    };
    let path = parts.uri.path();
    if path == "/admin" || path.starts_with("/admin/") {
        return Ok(admin::handle(&shared, &parts.method, path, &body));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    Ok(serve_kms(&shared, target, &body).await)
}

async fn serve_kms(shared: &Shared, target: Option<&str>, body: &[u8]) -> Response<Full<Bytes>> {
    let name = target
        .and_then(|t| t.strip_prefix(protocol::TARGET_PREFIX))
        .unwrap_or("");
    let label = if name.is_empty() { "(none)" } else { name };
    lock(&shared.stats).call(label);
    let op = match name.parse::<Operation>() {
        Ok(op) => op,
        Err(why) => {
            let e = KmsError::new(ErrorCode::UnknownOperationException, why);
            lock(&shared.stats).answer(label, Err(e.code));
            return kms_error(&e);
        }
    };
    let decision = lock(&shared.faults).decide(op);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let result = match &decision.error {
        Some((_, e)) => Err(e.clone()),
        None => execute(shared, op, body, &decision),
    };
    let mut stats = lock(&shared.stats);
    for kind in &decision.injected {
        if *kind != FaultKind::WrongSignature || result.is_ok() {
            stats.fault(label, *kind);
        }
    }
    if op == Operation::Sign && decision.high_s && result.is_ok() {
        stats.high_s_signatures += 1;
    }
    stats.answer(label, result.as_ref().map(|_| ()).map_err(|e| e.code));
    drop(stats);
    match result {
        Ok(value) => {
            tracing::debug!(%op, "ok");
            kms_ok(&value)
        }
        Err(e) => {
            tracing::debug!(%op, error = %e, "error");
            kms_error(&e)
        }
    }
}

/// Runs one operation. `Value::Null` means an empty success body (`CreateAlias`).
fn execute(
    shared: &Shared,
    op: Operation,
    body: &[u8],
    decision: &crate::faults::Decision,
) -> Result<Value, KmsError> {
    let invalid = |msg: String| KmsError::new(ErrorCode::ValidationException, msg);
    match op {
        Operation::CreateKey => {
            let r: protocol::CreateKeyRequest = protocol::parse(body)?;
            let spec = r.key_spec.or(r.customer_master_key_spec);
            let spec = spec.as_deref().unwrap_or("SYMMETRIC_DEFAULT");
            if spec != keystore::KEY_SPEC {
                return Err(KmsError::new(
                    ErrorCode::UnsupportedOperationException,
                    format!("hsm-sim makes {} keys only, not {spec}", keystore::KEY_SPEC),
                ));
            }
            let usage = r.key_usage.as_deref().unwrap_or("ENCRYPT_DECRYPT");
            if usage != keystore::KEY_USAGE {
                return Err(invalid(format!(
                    "KeyUsage {usage} is not valid for {spec}; use {}",
                    keystore::KEY_USAGE
                )));
            }
            let mut keys = lock(&shared.keys);
            let id = keys.create(r.description.as_deref().unwrap_or(""));
            Ok(json!({ "KeyMetadata": keys.metadata(&id)? }))
        }
        Operation::GetPublicKey => {
            let r: protocol::KeyIdRequest = protocol::parse(body)?;
            lock(&shared.keys).public_key(&r.key_id)
        }
        Operation::DescribeKey => {
            let r: protocol::KeyIdRequest = protocol::parse(body)?;
            Ok(json!({ "KeyMetadata": lock(&shared.keys).metadata(&r.key_id)? }))
        }
        Operation::Sign => {
            let r: protocol::SignRequest = protocol::parse(body)?;
            let keys = lock(&shared.keys);
            keys.key_id(&r.key_id)?;
            if r.signing_algorithm != keystore::SIGNING_ALGORITHM {
                return Err(KmsError::new(
                    ErrorCode::InvalidKeyUsageException,
                    format!(
                        "SigningAlgorithm {} is not supported by an {} key; use {}",
                        r.signing_algorithm,
                        keystore::KEY_SPEC,
                        keystore::SIGNING_ALGORITHM
                    ),
                ));
            }
            let message = B64.decode(&r.message).map_err(|e| {
                KmsError::new(
                    ErrorCode::SerializationException,
                    format!("Message is not base64: {e}"),
                )
            })?;
            let digest: [u8; 32] = match r.message_type.as_deref().unwrap_or("RAW") {
                "DIGEST" => message.as_slice().try_into().map_err(|_| {
                    invalid(format!(
                        "Digest is invalid length for algorithm ECDSA_SHA_256: {} bytes, expected 32",
                        message.len()
                    ))
                })?,
                "RAW" if (1..=4096).contains(&message.len()) => Sha256::digest(&message).into(),
                "RAW" => return Err(invalid("Message must be 1 to 4096 bytes".to_owned())),
                other => return Err(invalid(format!("MessageType {other} is not RAW or DIGEST"))),
            };
            keys.sign(&r.key_id, &digest, decision.sign_mode, decision.high_s)
        }
        Operation::ListKeys => {
            let r: protocol::ListRequest = protocol::parse(body)?;
            lock(&shared.keys).list_keys(r.limit, r.marker.as_deref())
        }
        Operation::CreateAlias => {
            let r: protocol::CreateAliasRequest = protocol::parse(body)?;
            lock(&shared.keys).create_alias(&r.alias_name, &r.target_key_id)?;
            Ok(Value::Null)
        }
        Operation::ListAliases => {
            let r: protocol::ListRequest = protocol::parse(body)?;
            lock(&shared.keys).list_aliases(r.key_id.as_deref(), r.limit, r.marker.as_deref())
        }
    }
}

fn kms_response(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(protocol::CONTENT_TYPE),
    );
    if let Ok(id) = HeaderValue::from_str(&keystore::uuid_v4()) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

fn kms_ok(value: &Value) -> Response<Full<Bytes>> {
    let body = if value.is_null() {
        Bytes::new()
    } else {
        Bytes::from(value.to_string())
    };
    kms_response(200, body)
}

fn kms_error(e: &KmsError) -> Response<Full<Bytes>> {
    kms_response(e.code.http_status(), Bytes::from(e.body().to_string()))
}

/// A plain JSON response (the admin endpoint).
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
